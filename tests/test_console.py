"""The console over real HTTP (`datafactory serve` in its own process): sign-in, roles, CSRF, stale forms,
search, edits, conflict groups, upload -> preview -> import -> undo; the store and history checked after each."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from datafactory_pipelines.console.users import UserBook
from datafactory_pipelines.server import ServerConfigError, check_console_bind
from datafactory_pipelines.store import open_store
from tests.conftest import write_xlsx
from tests.console_helpers import HEADER, PASSWORDS, Client, console_home
from tests.event_helpers import running_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    store_path = console_home(tmp_path_factory.mktemp("console"))
    with running_server(store_path, None) as base:
        yield base, store_path


def _lead_id(store_path: Path, name: str) -> str:
    leads = open_store(store_path).leads()
    return str(leads.loc[leads["name"] == name, "lead_id"].iloc[0])


def test_pages_need_sign_in_and_cookies_are_strict(served) -> None:
    base, _ = served
    client = Client(base)
    assert client.get("/console/").url.endswith("/console/login")
    signed = client.sign_in("li")
    assert signed.status == 200 and signed.url.endswith("/console/") and 'id="whoami">li<' in signed.body
    cookie = next(c for c in client.jar if c.name == "df_console")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "strict"
    assert cookie.path == "/console"
    assert "script-src" not in signed.headers["content-security-policy"]  # default-src 'none': no script at all
    english = client.get("/console/?lang=en")
    assert "Overview" in english.body and "Active leads" in english.body
    assert "Overview" in client.get("/console/").body  # remembered


def test_wrong_passwords_are_rate_limited(served) -> None:
    base, _ = served
    client = Client(base)
    for _ in range(5):
        assert client.sign_in("guessed", "not the password").status == 401
    refused = client.sign_in("guessed")  # the right password, but too soon
    assert refused.status == 429 and int(refused.headers["retry-after"]) > 0
    assert not any(c.name == "df_console" for c in client.jar)
    assert Client(base).sign_in("li").url.endswith("/console/")  # others at the same address still may


def test_login_without_its_csrf_cookie_is_refused(served) -> None:
    base, _ = served
    assert Client(base).post("/console/login", {"csrf": "x", "user": "li", "password": PASSWORDS["li"]}).status == 403


def test_search_by_name_pinyin_phone_email_and_company(served) -> None:
    base, store_path = served
    client = Client(base)
    client.sign_in("li")
    wang = _lead_id(store_path, "王芳")
    for query in ("王芳", "wangfang", "Wang Fang", "137 0013 7000", "+86 186 1234 5678", "WF@qq.com", "星海科技"):
        page = client.get("/console/search?" + urllib.parse.urlencode({"q": query}))
        assert f"/console/leads/{wang}" in page.body, query
    assert 'id="result-count">0<' in client.get("/console/search?q=nobody-like-this").body


def test_viewer_sees_masked_contacts_and_may_not_edit(served) -> None:
    base, store_path = served
    viewer = Client(base)
    viewer.sign_in("kan")
    lead = _lead_id(store_path, "赵敏")
    page = viewer.get(f"/console/leads/{lead}")
    assert "13500135000" not in page.body and "135****5000" in page.body and "z***@126.com" in page.body
    assert 'id="edit-form"' not in page.body
    refused = viewer.post(f"/console/leads/{lead}/edit", {"csrf": page.csrf(), "version": "x", "action": "set",
                                                          "field": "title", "value": "老板"})
    assert refused.status == 403
    assert viewer.get("/console/imports/x/undo").status == 403
    assert open_store(store_path).lead_rows([lead])[0]["title"] == "采购经理"
    operator = Client(base)
    operator.sign_in("li")
    assert "13500135000" in operator.get(f"/console/leads/{lead}").body


def test_edit_names_the_person_and_a_stale_or_forged_form_is_refused(served) -> None:
    base, store_path = served
    client = Client(base)
    client.sign_in("li")
    lead = _lead_id(store_path, "赵敏")
    page = client.get(f"/console/leads/{lead}")
    form = {"csrf": page.csrf(), "version": page.field("version"), "action": "set", "field": "company",
            "value": "深圳绿地建材有限公司", "note": "客户电话确认"}
    forged = client.post(f"/console/leads/{lead}/edit", {**form, "csrf": "forged"})
    assert forged.status == 403
    assert open_store(store_path).lead_rows([lead])[0]["company"] == "绿地建材"
    done = client.post(f"/console/leads/{lead}/edit", form)
    assert done.status == 200 and 'id="done"' in done.body
    store = open_store(store_path)
    assert store.lead_rows([lead])[0]["company"] == "深圳绿地建材有限公司"
    last = store.history(lead).iloc[-1]
    assert (last["field"], last["actor"], last["action"], last["cause"]) == ("company", "li", "edit", "客户电话确认")
    again = client.post(f"/console/leads/{lead}/edit", {**form, "value": "别的公司"})  # the page before the edit
    assert again.status == 409 and "stale" in again.body
    assert open_store(store_path).lead_rows([lead])[0]["company"] == "深圳绿地建材有限公司"
    bad = client.get(f"/console/leads/{lead}")
    refused = client.post(f"/console/leads/{lead}/edit", {"csrf": bad.csrf(), "version": bad.field("version"),
                                                          "action": "set", "field": "mobile", "value": "12345"})
    assert refused.status == 400 and "not a valid" in refused.body  # the same checks as `lead set`


def test_make_an_alternate_primary_then_mark_it_invalid(served) -> None:
    base, store_path = served
    client = Client(base)
    client.sign_in("li")
    lead = _lead_id(store_path, "王芳")
    row = open_store(store_path).lead_rows([lead])[0]
    primary, alternate = row["mobile"], row["mobile_alternates"]
    assert (primary, alternate) == ("13700137000", "18612345678")
    page = client.get(f"/console/leads/{lead}")
    client.post(f"/console/leads/{lead}/edit", {"csrf": page.csrf(), "version": page.field("version"),
                                                "action": "primary", "field": "mobile", "value": alternate})
    row = open_store(store_path).lead_rows([lead])[0]
    assert (row["mobile"], row["mobile_alternates"]) == (alternate, primary)
    page = client.get(f"/console/leads/{lead}")
    client.post(f"/console/leads/{lead}/edit", {"csrf": page.csrf(), "version": page.field("version"),
                                                "action": "invalid", "field": "mobile", "value": alternate,
                                                "status": "unreachable", "note": "空号"})
    store = open_store(store_path)
    row = store.lead_rows([lead])[0]
    assert (row["mobile"], row["mobile_alternates"]) == (primary, "")
    flags = store.lead_contact_flags(lead)
    assert [(f["value"], f["status"], f["rule"]) for f in flags] == [(alternate, "unreachable", "console: li")]
    assert "空号" in client.get(f"/console/leads/{lead}").body


def test_unmerge_from_the_lead_page(served) -> None:
    base, store_path = served
    client = Client(base)
    client.sign_in("li")
    leads = open_store(store_path).leads(include_retired=True)
    merged = leads[leads["status"] == "merged"]
    survivor, other = str(merged["merged_into"].iloc[0]), str(merged["lead_id"].iloc[0])
    page = client.get(f"/console/leads/{survivor}")
    assert f"/console/leads/{other}" in page.body and 'id="unmerge"' in page.body
    done = client.post(f"/console/leads/{survivor}/edit", {"csrf": page.csrf(), "version": page.field("version"),
                                                           "action": "unmerge", "note": "两个人"})
    assert done.status == 200 and other in done.body
    store = open_store(store_path)
    assert store.lead_rows([other])[0]["status"] == "active"
    assert store.history(other).iloc[-1]["actor"] == "li"
    assert {(a, b) for a, b in zip(store.lead_splits()["lead_a"], store.lead_splits()["lead_b"], strict=True)} \
        & {(survivor, other), (other, survivor)}


def test_a_change_tells_the_owner_who_made_it(served) -> None:
    from datafactory_pipelines.notify.outbox import build_messages

    base, store_path = served
    client = Client(base)
    client.sign_in("li")
    lead = _lead_id(store_path, "李娜")
    for field, value in (("owner", "销售王五"), ("company", "云帆国际贸易有限公司")):
        page = client.get(f"/console/leads/{lead}")
        assert client.post(f"/console/leads/{lead}/edit", {
            "csrf": page.csrf(), "version": page.field("version"), "action": "set", "field": field, "value": value,
            "note": "回访"}).status == 200
    store = open_store(store_path)
    outbox = store.table_snapshot(["outbox"])["outbox"]
    outbox = outbox[outbox["lead_id"] == lead]
    with store.transaction() as con:
        messages = build_messages(con, outbox)
    company = [c for m in messages.values() for c in m["changes"] if c["field"] == "company"]
    assert company and company[-1]["actor"] == "li" and company[-1]["cause"] == "回访"
    page = client.get(f"/console/leads/{lead}")
    assert "销售王五" in page.body.split('id="outbox"')[1]  # the notifications, on the lead's page


def test_restore_is_for_admins(served) -> None:
    from datafactory_pipelines.decisions import edit_leads

    base, store_path = served
    lead = _lead_id(store_path, "赵敏")
    before = open_store(store_path).lead_rows([lead])[0]["address"]
    moment = str(open_store(store_path).history(lead).iloc[-1]["changed_at"])
    edit_leads(open_store(store_path), [{"lead_id": lead, "field": "address", "value": "北京市朝阳区某路1号"}],
               by="someone")
    operator = Client(base)
    operator.sign_in("li")
    page = operator.get(f"/console/leads/{lead}")
    assert 'id="restore"' not in page.body
    assert operator.post(f"/console/leads/{lead}/restore", {"csrf": page.csrf(), "as_of": moment}).status == 403
    admin = Client(base)
    admin.sign_in("boss")
    page = admin.get(f"/console/leads/{lead}")
    done = admin.post(f"/console/leads/{lead}/restore", {"csrf": page.csrf(), "as_of": moment})
    assert done.status == 200 and "restored" in done.body
    store = open_store(store_path)
    assert store.lead_rows([lead])[0]["address"] == before
    assert store.history(lead).iloc[-1]["actor"] == "boss"


def test_a_conflict_group_decided_at_once(served) -> None:
    base, store_path = served
    client = Client(base)
    client.sign_in("li")
    groups = open_store(store_path).conflicts()
    title_group = groups.loc[groups["field"] == "title", "group_id"].iloc[0]
    assert f"/console/conflicts/{title_group}" in client.get("/console/conflicts").body
    page = client.get(f"/console/conflicts/{title_group}")
    ids = page.field("conflict_ids")
    done = client.post(f"/console/conflicts/{title_group}/decide",
                       {"csrf": page.csrf(), "conflict_ids": ids, "take": "incoming", "note": "新名片"})
    assert done.status == 200 and 'id="done"' in done.body
    store = open_store(store_path)
    decided = store.conflicts(status=None).set_index("conflict_id").loc[[int(i) for i in ids.split(",")]]
    assert set(decided["status"]) != {"open"} and set(decided["decided_by"]) == {"li"}
    assert store.lead_rows([_lead_id(store_path, "李娜")])[0]["title"] == "技术总监"
    history = store.history(_lead_id(store_path, "李娜"))
    assert history.iloc[-1]["actor"] == "li" and history.iloc[-1]["action"] == "conflict decision"
    # the same form again: those conflicts are decided now
    assert client.post(f"/console/conflicts/{title_group}/decide",
                       {"csrf": page.csrf(), "conflict_ids": ids, "take": "current"}).status == 409


def test_upload_preview_import_and_admin_undo(served, tmp_path: Path) -> None:
    base, store_path = served
    operator = Client(base)
    operator.sign_in("li")
    upload = write_xlsx(tmp_path / "新展会.xlsx", [
        HEADER, ["周杰", "13300133000", "zj@qq.com", "蓝鲸科技", "经理", "新展会", "2026-05-01"],
        ["孙丽", "", "", "无联系公司", "助理", "新展会", "2026-05-01"],
        ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售总监", "新展会", "2026-05-01"],
    ])
    imports_page = operator.get("/console/imports")
    preview = operator.upload("/console/upload", {"csrf": imports_page.csrf()}, upload)
    assert preview.status == 200 and 'id="preview-rows">3<' in preview.body
    assert 'id="preview-reachable">2<' in preview.body and 'id="preview-quarantined">1<' in preview.body
    assert "13300133000" not in preview.body and "133****3000" in preview.body  # first rows masked
    before = len(open_store(store_path).imports())
    assert len(open_store(store_path).imports()) == before  # a preview saves nothing
    token = preview.body.split("/console/upload/")[1].split("/import")[0]
    imported = operator.post(f"/console/upload/{token}/import", {"csrf": preview.csrf()})
    assert imported.status == 200 and "/console/imports/" in imported.url
    store = open_store(store_path)
    new = store.imports().iloc[-1]
    assert new["imported_by"] == "li" and len(store.imports()) == before + 1
    zhou = _lead_id(store_path, "周杰")
    assert store.history(zhou).iloc[0]["actor"] == "li"
    assert 'id="effect-created">1<' in imported.body and "无联系公司" in imported.body  # quarantined row shown

    assert operator.get(f"/console/imports/{new['import_id']}/undo").status == 403  # operators may not undo
    admin = Client(base)
    admin.sign_in("boss")
    undo_page = admin.get(f"/console/imports/{new['import_id']}/undo")
    assert undo_page.status == 200 and 'id="undo-records">3<' in undo_page.body and zhou in undo_page.body
    assert open_store(store_path).lead_rows([zhou])[0]["status"] == "active"  # the preview rolled back
    done = admin.post(f"/console/imports/{new['import_id']}/undo", {"csrf": undo_page.csrf()})
    assert done.status == 200 and 'class="undone"' in done.body
    store = open_store(store_path)
    assert store.lead_rows([zhou])[0]["status"] != "active"
    assert store.import_row(new["import_id"])["undone_by"] == "boss"
    assert store.history(zhou).iloc[-1]["actor"] == "boss"


def test_the_console_never_listens_beyond_loopback_in_clear() -> None:
    check_console_bind("127.0.0.1", None, None, False)
    check_console_bind("0.0.0.0", "cert.pem", "key.pem", False)
    check_console_bind("0.0.0.0", None, None, True)
    with pytest.raises(ServerConfigError, match="plain HTTP"):
        check_console_bind("0.0.0.0", None, None, False)
    with pytest.raises(ServerConfigError, match="go together"):
        check_console_bind("127.0.0.1", "cert.pem", None, False)


def test_users_add_keeps_only_an_argon2id_hash(tmp_path: Path) -> None:
    env = {**os.environ, "DATAFACTORY_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "datafactory_pipelines.cli", "users", "add", "ops", "--role",
                           "operator", "--password-stdin"], input="a long secret 42\n", capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "a long secret 42" not in done.stdout + done.stderr
    path = tmp_path / "console_users.json"
    text = path.read_text(encoding="utf-8")
    assert "a long secret 42" not in text and "$argon2id$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    book = UserBook(tmp_path)
    assert book.check("ops", "a long secret 42").role == "operator"
    assert book.check("ops", "a long secret 43") is None and book.check("nobody", "a long secret 42") is None
    short = subprocess.run([sys.executable, "-m", "datafactory_pipelines.cli", "users", "add", "x", "--role", "admin",
                            "--password-stdin"], input="short\n", capture_output=True, text=True, env=env, timeout=60)
    assert short.returncode == 2 and "at least" in short.stderr


def test_served_over_tls_the_session_cookie_is_secure(tmp_path: Path) -> None:
    import datetime
    import signal
    import ssl
    import time
    import urllib.request

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tests.event_helpers import free_port

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    home = tmp_path / "home"
    UserBook(home).add("tls", "viewer", "tls password 12")
    port = free_port()
    env = {**os.environ, "DATAFACTORY_HOME": str(home)}
    env.pop("DATAFACTORY_API_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "datafactory_pipelines.cli", "serve", "--port", str(port),
                                "--ssl-certfile", str(tmp_path / "cert.pem"), "--ssl-keyfile",
                                str(tmp_path / "key.pem")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a throw-away self-signed certificate: what is tested is the server
    client = Client(f"https://127.0.0.1:{port}")
    client.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(client.jar),
                                                urllib.request.HTTPSHandler(context=context))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/health").status == 200:
                    break
            except OSError as err:
                assert process.poll() is None and time.monotonic() < deadline, f"the TLS server did not start: {err}"
                time.sleep(0.2)
        assert client.sign_in("tls", "tls password 12").url.endswith("/console/")
        cookie = next(c for c in client.jar if c.name == "df_console")
        assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
