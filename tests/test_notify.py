"""Owner notifications with real parts: the outbox written with each change, a real webhook receiver on
127.0.0.1 (signatures checked with the standardwebhooks package), retries, 410, Retry-After, dead letters,
masking, SMTP through a real aiosmtpd server, the console script."""

from __future__ import annotations

import base64
import socket
import time
from email.header import decode_header, make_header
from pathlib import Path

import pandas as pd
import pytest
import yaml
from standardwebhooks import Webhook as StandardWebhook

from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.notify.config import NotifyConfigError, load_notify_config, parse_notify_config
from datafactory_pipelines.notify.delivery import deliver_due, due_batch, queue_status, requeue, sign
from datafactory_pipelines.notify.outbox import build_messages, message_id_for
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx
from tests.test_cli import run_cli
from tests.webhook_receiver import WebhookReceiver

pytestmark = both_backends

SECRET = "whsec_" + base64.b64encode(b"datafactory-test-secret-32-bytes").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-endpoint-secret-32-bytes").decode()
HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "负责人", "登记日期"]
FAST = {"schedule_seconds": [0, 0.3, 0.3], "jitter": 0}


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def _configure(home: Path, webhooks: list[dict], **more) -> None:
    (home / "notify.yaml").write_text(yaml.safe_dump({"webhooks": webhooks, "retry": FAST, **more},
                                                     allow_unicode=True), encoding="utf-8")


def _owned_leads(home: Path, tmp_path: Path):
    store = store_in(home)
    path = write_xlsx(tmp_path / "线索.xlsx", [
        HEADER,
        ["王芳", "13700137000", "wangfang@qq.com", "星海科技", "销售经理", "李娜", "2025-01-01"],
        ["赵敏", "13500135000", "zm@126.com", "云帆贸易", "采购经理", "", "2025-01-01"],
    ])
    assert import_file(store, path).status == "imported"
    relink_and_curate(store)
    leads = store.leads().set_index("name")
    return store, leads.loc["王芳", "lead_id"], leads.loc["赵敏", "lead_id"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _outbox(store) -> pd.DataFrame:
    with store.transaction() as con:
        return con.execute("SELECT * FROM outbox ORDER BY outbox_id").df()


def _message(store, outbox_row: pd.Series) -> dict:
    with store.transaction() as con:
        return build_messages(con, outbox_row.to_frame().T)[int(outbox_row["outbox_id"])]


def _deliveries(store) -> pd.DataFrame:
    with store.transaction() as con:
        return con.execute("SELECT * FROM outbox_deliveries ORDER BY outbox_id, endpoint").df()


def test_an_edit_to_an_owned_lead_is_one_message_listing_each_field(datafactory_home: Path, tmp_path: Path) -> None:
    store, owned, unowned = _owned_leads(datafactory_home, tmp_path)
    created = _outbox(store)
    assert created["lead_id"].tolist() == [owned]  # the new lead, told to its owner; 赵敏 has no owner
    assert _message(store, created.iloc[0])["changes"][0]["action"] == "create"

    edit_leads(store, pd.DataFrame({"lead_id": [owned, owned, unowned], "field": ["mobile", "title", "title"],
                                    "value": ["13900139000", "销售总监", "采购总监"]}), by="王经理", note="客户来电")
    messages = _outbox(store)
    assert len(messages) == 2
    message = _message(store, messages.iloc[1])
    assert message["lead_id"] == owned and message["owner"] == "李娜"
    assert [(c["field"], c["old"], c["new"]) for c in message["changes"]] == [
        ("mobile", "13700137000", "13900139000"), ("title", "销售经理", "销售总监")]
    assert message["causes"] == [{"action": "edit", "actor": "王经理", "cause": "客户来电"}]
    history = store.history(owned)
    assert message["changes"][-1]["seq"] == int(history["seq"].max())  # it points at the history rows
    first = history[history["seq"] == message["changes"][0]["seq"]].iloc[0]
    assert message["message_id"] == message_id_for(owned, first["hash"])  # SQL and Python agree


def test_changes_in_one_transaction_from_several_causes_are_one_message(datafactory_home: Path,
                                                                         tmp_path: Path) -> None:
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    history = store.history(owned)
    rows = pd.DataFrame({"lead_id": [owned], "field": ["title"], "old_value": ["销售经理"], "new_value": ["总监"]})
    more = pd.DataFrame({"lead_id": [owned], "field": ["company"], "old_value": ["星海科技"], "new_value": ["星海"]})
    with store.transaction() as con:  # two history appends (an event's rule, then a decision) in one transaction
        store._append_history(con, rows, "rule", "rules", "event e-1; rule profile_update")
        store._append_history(con, more, "conflict decision", "李娜", "conflict 7")
    messages = _outbox(store)
    assert len(messages) == 2
    message = _message(store, messages.iloc[-1])
    assert [c["field"] for c in message["changes"]] == ["title", "company"]
    assert [c["cause"] for c in message["causes"]] == ["event e-1; rule profile_update", "conflict 7"]
    assert messages.iloc[-1]["n_changes"] == 2 and messages.iloc[-1]["last_seq"] == store.history()["seq"].max()

    # and a transaction that fails leaves neither history nor message behind
    with pytest.raises(RuntimeError), store.transaction() as con:
        store._append_history(con, rows, "rule", "rules", "event e-2")
        raise RuntimeError("the rule's other write failed")
    assert len(_outbox(store)) == 2 and len(store.history(owned)) == len(history) + 2


def test_signed_webhook_arrives_and_verifies(datafactory_home: Path, tmp_path: Path, receiver) -> None:
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET, "owners": ["*"]}])
    report = deliver_due(store, load_notify_config(datafactory_home))
    assert (report.routed, report.delivered) == (1, 1)
    request = receiver.requests[0]
    body = StandardWebhook(SECRET).verify(request.body, request.headers)  # raises when the signature is wrong
    assert body["type"] == "lead.changed" and body["data"]["lead_id"] == owned
    assert request.headers["webhook-id"] == body["data"]["message_id"]
    with pytest.raises(Exception, match="signature"):
        StandardWebhook(OTHER_SECRET).verify(request.body, request.headers)
    # our signer and the reference implementation agree byte for byte
    stamp = int(request.headers["webhook-timestamp"])
    assert sign(base64.b64decode(SECRET[6:]), "msg_x", stamp, b'{"a":1}') == StandardWebhook(SECRET).sign(
        "msg_x", pd.Timestamp(stamp, unit="s").to_pydatetime(), '{"a":1}')
    assert deliver_due(store, load_notify_config(datafactory_home)).attempted == 0  # delivered once only


def test_500_then_200_is_two_attempts_one_delivery_same_webhook_id(datafactory_home: Path, tmp_path: Path,
                                                                    receiver) -> None:
    store, _, _ = _owned_leads(datafactory_home, tmp_path)
    receiver.answers = [(500, {})]
    # a retry 1.5 s later: long enough that "not due yet" holds on a loaded machine (recording an attempt
    # took ~0.3 s at load 16, the whole of FAST's delay)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET}],
               retry={"schedule_seconds": [0, 1.5, 1.5], "jitter": 0})
    config = load_notify_config(datafactory_home)
    first = deliver_due(store, config)
    assert (first.attempted, first.failed, first.delivered) == (1, 1, 0)
    assert deliver_due(store, config).attempted == 0  # not due yet: the schedule's next delay is 1.5 s
    time.sleep(1.6)
    second = deliver_due(store, config)
    assert (second.attempted, second.delivered) == (1, 1)
    assert [r.answered for r in receiver.requests] == [500, 200]
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1
    for request in receiver.requests:
        StandardWebhook(SECRET).verify(request.body, request.headers)
    time.sleep(0.4)
    assert deliver_due(store, config).attempted == 0  # no duplicate delivery
    row = _deliveries(store).iloc[0]
    assert (row["status"], row["attempts"], row["last_status"]) == ("delivered", 2, 200)


def test_410_disables_the_endpoint_until_enabled(datafactory_home: Path, tmp_path: Path, receiver) -> None:
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    receiver.answers = [(410, {})]
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET}])
    config = load_notify_config(datafactory_home)
    report = deliver_due(store, config)
    assert report.endpoints_disabled == ["webhook:crm"] and report.dead == 1
    edit_leads(store, pd.DataFrame({"lead_id": [owned], "field": ["title"], "value": ["销售总监"]}), by="王经理")
    assert deliver_due(store, config).attempted == 0  # the endpoint is disabled: nothing is sent to it
    assert len(receiver.requests) == 1 and due_batch(store, config).empty
    status = run_cli(datafactory_home, "notify", "status")
    assert "disabled endpoint webhook:crm" in status.stdout and "dead letters" in status.stdout
    enabled = run_cli(datafactory_home, "notify", "enable", "crm")
    assert enabled.returncode == 0 and "enabled" in enabled.stdout
    assert deliver_due(store, config).delivered == 1  # the waiting message goes; the 410'd one stays dead
    assert len(receiver.requests) == 2


def test_retry_after_is_honoured(datafactory_home: Path, tmp_path: Path, receiver) -> None:
    store, _, _ = _owned_leads(datafactory_home, tmp_path)
    receiver.answers = [(503, {"Retry-After": "2"})]
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET}])
    config = load_notify_config(datafactory_home)
    assert deliver_due(store, config).failed == 1
    with store.transaction() as con:
        attempted_at, next_at = con.execute("SELECT attempted_at, next_attempt_at FROM delivery_attempts").fetchall()[0]
    assert (next_at - attempted_at).total_seconds() >= 2.0  # the schedule alone would say 0.3 s
    time.sleep(0.5)
    assert deliver_due(store, config).attempted == 0
    time.sleep(2.0)
    assert deliver_due(store, config).delivered == 1
    assert [r.answered for r in receiver.requests] == [503, 200]


def test_dead_letter_after_the_last_attempt_and_retry_requeues(datafactory_home: Path, tmp_path: Path,
                                                                receiver) -> None:
    store, _, _ = _owned_leads(datafactory_home, tmp_path)
    receiver.default = (500, {})
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET}])
    config = load_notify_config(datafactory_home)
    outcomes = []
    for _ in range(3):  # the schedule has three attempts
        outcomes.append(deliver_due(store, config))
        time.sleep(0.35)
    assert [(o.failed, o.dead) for o in outcomes] == [(1, 0), (1, 0), (0, 1)]
    assert deliver_due(store, config).attempted == 0
    status = queue_status(store)
    assert status.by_status == {"dead": 1} and status.dead.iloc[0]["attempts"] == 3
    shown = run_cli(datafactory_home, "notify", "status")
    assert "dead letters:" in shown.stdout and "3 attempt(s), last HTTP 500" in shown.stdout

    receiver.default = (200, {})
    message_id = status.dead.iloc[0]["message_id"]
    again = run_cli(datafactory_home, "notify", "retry", message_id)
    assert again.returncode == 0 and "re-queued 1" in again.stdout
    delivered = run_cli(datafactory_home, "notify", "deliver")
    assert delivered.returncode == 0 and "delivered 1" in delivered.stdout, delivered.stdout
    assert {r.headers["webhook-id"] for r in receiver.requests} == {message_id}
    assert [r.answered for r in receiver.requests] == [500, 500, 500, 200]
    with pytest.raises(ValueError, match="no outbox message"):
        requeue(store, "msg_unknown")


def test_untrusted_endpoints_get_masked_values_trusted_ones_full(datafactory_home: Path, tmp_path: Path,
                                                                  receiver) -> None:
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    _configure(datafactory_home, [
        {"name": "crm", "url": receiver.url("/crm"), "secret": SECRET, "owners": ["*"], "trusted": True},
        {"name": "chat", "url": receiver.url("/chat"), "secret": OTHER_SECRET, "owners": ["李娜"]},
        {"name": "other-team", "url": receiver.url("/other"), "secret": OTHER_SECRET, "owners": ["张伟"]},
    ])
    deliver_due(store, load_notify_config(datafactory_home))
    edit_leads(store, pd.DataFrame({"lead_id": [owned], "field": ["mobile"], "value": ["13900139000"]}),
               by="王经理", note="客户来电，新号 13900139000")
    assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 2
    by_path = {}
    for request in receiver.requests:
        by_path.setdefault(request.path, []).append(request)
    assert set(by_path) == {"/crm", "/chat"}  # other-team serves another owner
    full = StandardWebhook(SECRET).verify(by_path["/crm"][-1].body, by_path["/crm"][-1].headers)["data"]
    masked = StandardWebhook(OTHER_SECRET).verify(by_path["/chat"][-1].body, by_path["/chat"][-1].headers)["data"]
    assert full["masked"] is False
    assert (full["changes"][0]["old"], full["changes"][0]["new"]) == ("13700137000", "13900139000")
    assert (masked["changes"][0]["old"], masked["changes"][0]["new"]) == ("137****7000", "139****9000")
    assert masked["masked"] is True and "13900139000" not in by_path["/chat"][-1].body.decode()
    assert masked["changes"][0]["cause"] == "客户来电，新号 139****9000"
    created = StandardWebhook(OTHER_SECRET).verify(by_path["/chat"][0].body, by_path["/chat"][0].headers)["data"]
    values = {c["field"]: c["new"] for c in created["changes"]}
    assert values["email"] == "w***@qq.com" and values["name"] == "王*" and values["owner"] == "李娜"
    assert values["company"] == "星海科技"  # not personal data
    assert "wangfang@qq.com" not in by_path["/chat"][0].body.decode()


def test_mail_goes_to_the_owner_through_smtp(datafactory_home: Path, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    port = _free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        store, owned, _ = _owned_leads(datafactory_home, tmp_path)
        _configure(datafactory_home, [], owners={"李娜": {"email": "lina@example.com"}},
                   smtp={"host": "127.0.0.1", "port": port, "from": "datafactory@example.com"})
        report = deliver_due(store, load_notify_config(datafactory_home))
        assert (report.routed, report.delivered) == (1, 1)
        edit_leads(store, pd.DataFrame({"lead_id": [owned, owned], "field": ["mobile", "title"],
                                        "value": ["13900139000", "销售总监"]}), by="王经理")
        assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 1
    finally:
        controller.stop()
    assert len(received) == 2
    mail = received[-1]
    assert mail["To"] == "lina@example.com" and mail["From"] == "datafactory@example.com"
    subject = str(make_header(decode_header(mail["Subject"])))
    assert owned in subject and "2 处变更" in subject
    text = mail.get_payload(decode=True).decode("utf-8")
    assert "mobile: 137****7000 → 139****9000" in text and "title: 销售经理 → 销售总监" in text
    assert "13900139000" not in text
    assert mail["Message-ID"].startswith("<msg_")


def test_a_refused_mail_address_is_a_dead_letter_at_once(datafactory_home: Path, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    class Refuse:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
            return "550 no such user"

    port = _free_port()
    controller = Controller(Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        store, _, _ = _owned_leads(datafactory_home, tmp_path)
        _configure(datafactory_home, [], owners={"李娜": {"email": "nobody@example.com"}},
                   smtp={"host": "127.0.0.1", "port": port, "from": "datafactory@example.com"})
        report = deliver_due(store, load_notify_config(datafactory_home))
    finally:
        controller.stop()
    assert (report.attempted, report.dead) == (1, 1)
    assert _deliveries(store).iloc[0]["last_status"] == 550


def test_without_notify_yaml_messages_wait_in_the_outbox(datafactory_home: Path, tmp_path: Path,
                                                          receiver) -> None:
    store, _, _ = _owned_leads(datafactory_home, tmp_path)
    config = load_notify_config(datafactory_home)
    assert deliver_due(store, config).routed == 0 and due_batch(store, config).empty
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET}])
    assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 1


def test_a_bad_notify_yaml_names_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(NotifyConfigError, match=r"webhooks\[0\]: the secret must start with whsec_"):
        parse_notify_config({"webhooks": [{"name": "crm", "url": "http://x", "secret": "plain"}]})
    with pytest.raises(NotifyConfigError, match=r"webhooks\[0\]: url is missing"):
        parse_notify_config({"webhooks": [{"name": "crm", "secret": SECRET}]})
    with pytest.raises(NotifyConfigError, match="smtp.from is missing"):
        parse_notify_config({"smtp": {"host": "127.0.0.1"}})
    (tmp_path / "notify.yaml").write_text("webhooks: [", encoding="utf-8")
    with pytest.raises(NotifyConfigError, match="notify.yaml: not valid YAML"):
        load_notify_config(tmp_path)


def test_a_rules_notice_joins_the_message_of_its_transaction(datafactory_home: Path, tmp_path: Path,
                                                              receiver) -> None:
    from datafactory_pipelines.notify.outbox import append_notice

    store, owned, unowned = _owned_leads(datafactory_home, tmp_path)
    change = pd.DataFrame({"lead_id": [owned], "field": ["title"], "old_value": ["销售经理"], "new_value": ["总监"]})
    with store.transaction() as con:
        store._append_history(con, change, "rule", "rules", "event e-9; rule profile_update")
        assert append_notice(con, owned, "客户换了新号 13900139000，请尽快联系", cause="event e-9; rule notify") == 1
        assert append_notice(con, unowned, "nobody owns this lead") == 0
    with store.transaction() as con:
        assert append_notice(con, owned, "退信：请核实邮箱", cause="event e-10; rule bounce") == 1
    messages = _outbox(store)
    assert len(messages) == 3
    combined = _message(store, messages.iloc[1])
    assert [c["field"] for c in combined["changes"]] == ["title"] and len(combined["notes"]) == 1
    alone = _message(store, messages.iloc[2])
    assert alone["changes"] == [] and alone["notes"][0]["text"] == "退信：请核实邮箱"
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": OTHER_SECRET}])
    assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 3
    sent = StandardWebhook(OTHER_SECRET).verify(receiver.requests[1].body, receiver.requests[1].headers)["data"]
    assert sent["notes"][0]["text"] == "客户换了新号 139****9000，请尽快联系"


def test_a_rule_applying_an_event_notifies_the_owner_once_with_the_event_and_rule(
        datafactory_home: Path, tmp_path: Path, receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from datafactory_pipelines.events.apply import apply_events
    from datafactory_pipelines.events.feed import store_events
    from datafactory_pipelines.events.types import validate_event
    from datafactory_pipelines.rules import load_rules
    from tests.event_helpers import event, trust_the_app

    trust_the_app(monkeypatch)  # the shipped rules trust no source until configured
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET}])
    assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 1  # the lead's creation
    store_events(store, [validate_event(event("m-7", "lead.mobile_changed", {
        "old_mobile": "13700137000", "new_mobile": "13600136000", "verified": ["old_sms", "new_sms"]}))], via="test")
    report = apply_events(store, load_rules(datafactory_home))
    assert report.by_status == {"applied": 1}
    assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 1
    last = receiver.requests[-1]
    data = StandardWebhook(SECRET).verify(last.body, last.headers)["data"]
    assert data["lead_id"] == owned and data["owner"] == "李娜"
    changes = {c["field"]: (c["old"], c["new"]) for c in data["changes"]}
    assert changes["mobile"] == ("137****7000", "136****6000")
    assert changes["mobile_alternates"] == ("", "137****7000")
    assert all("event m-7" in c["cause"] and c["actor"].startswith("rule ") for c in data["changes"])
    assert [n["text"] for n in data["notes"]] == ["mobile changed (verified by SMS on both numbers)"]
    assert len(receiver.requests) == 2  # one message for the event's changes and its note


def test_a_handed_over_lead_tells_the_new_owner_and_names_the_previous_one(datafactory_home: Path,
                                                                            tmp_path: Path, receiver) -> None:
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    _configure(datafactory_home, [
        {"name": "lina", "url": receiver.url("/lina"), "secret": SECRET, "owners": ["李娜"]},
        {"name": "zhang", "url": receiver.url("/zhang"), "secret": SECRET, "owners": ["张伟"]}])
    deliver_due(store, load_notify_config(datafactory_home))
    done = run_cli(datafactory_home, "lead", "set", owned, "owner=张伟", "--by", "王经理")
    assert done.returncode == 0, done.stderr
    assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 1
    assert [r.path for r in receiver.requests] == ["/lina", "/zhang"]
    data = StandardWebhook(SECRET).verify(receiver.requests[-1].body, receiver.requests[-1].headers)["data"]
    assert (data["owner"], data["previous_owner"]) == ("张伟", "李娜")
    assert [(c["field"], c["old"], c["new"], c["actor"]) for c in data["changes"]] == [
        ("owner", "李娜", "张伟", "王经理")]


def test_an_endpoint_that_does_not_answer_is_retried(datafactory_home: Path, tmp_path: Path) -> None:
    store, _, _ = _owned_leads(datafactory_home, tmp_path)
    _configure(datafactory_home, [{"name": "down", "url": f"http://127.0.0.1:{_free_port()}/hook",
                                   "secret": SECRET, "timeout_seconds": 2}])
    report = deliver_due(store, load_notify_config(datafactory_home))
    assert (report.attempted, report.failed) == (1, 1)
    row = _deliveries(store).iloc[0]
    assert row["status"] == "pending" and row["attempts"] == 1 and pd.isna(row["last_status"])
    assert "refused" in row["last_error"].lower()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, made here (no network)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_mail_over_starttls_with_login_verifies_the_server(datafactory_home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message
    from aiosmtpd.smtp import AuthResult, LoginPassword

    received, logins = [], []

    class Keep(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"df", b"s3cret")
        logins.append((mechanism, ok, session.ssl is not None))
        return AuthResult(success=ok)

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = _free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    monkeypatch.setenv("SMTP_TEST_PASSWORD", "s3cret")
    smtp = {"host": "127.0.0.1", "port": port, "from": "datafactory@example.com", "starttls": True,
            "username": "df", "password_env": "SMTP_TEST_PASSWORD"}
    try:
        store, _, _ = _owned_leads(datafactory_home, tmp_path)
        # without our CA the server's certificate is refused: nothing is sent, the delivery waits
        _configure(datafactory_home, [], owners={"李娜": {"email": "lina@example.com"}}, smtp=smtp)
        first = deliver_due(store, load_notify_config(datafactory_home))
        assert (first.failed, first.delivered) == (1, 0) and not received
        assert "CERTIFICATE_VERIFY_FAILED" in _deliveries(store).iloc[0]["last_error"]
        _configure(datafactory_home, [], owners={"李娜": {"email": "lina@example.com"}},
                   smtp={**smtp, "cafile": str(cert)})
        time.sleep(0.35)
        assert deliver_due(store, load_notify_config(datafactory_home)).delivered == 1
    finally:
        controller.stop()
    assert len(received) == 1 and received[0]["To"] == "lina@example.com"
    assert logins and all(ok and tls for _, ok, tls in logins)


def test_notify_deliver_goes_on_past_its_limit_and_says_when_it_stops(datafactory_home: Path, tmp_path: Path,
                                                                       receiver) -> None:
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    for title in ("销售总监", "总经理"):  # two more messages: three due in all
        edit_leads(store, [{"lead_id": owned, "field": "title", "value": title}], by="王经理")
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET, "owners": ["*"]}])
    stopped = run_cli(datafactory_home, "notify", "deliver", "--limit", "1", "--passes", "2")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped after 2 pass(es) of at most 1 attempts" in stopped.stdout
    assert len(receiver.requests) == 2
    done = run_cli(datafactory_home, "notify", "deliver", "--limit", "1")
    assert done.returncode == 0 and "stopped after" not in done.stdout
    assert len(receiver.requests) == 3  # one pass a message, then a pass with nothing left
