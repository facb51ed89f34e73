"""POST /events on a real uvicorn server: auth, validation, batches, replays, size limit, event files."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from datafactory_pipelines.cli import main
from datafactory_pipelines.events.feed import ingest_event_file
from datafactory_pipelines.server import MAX_BODY_BYTES, ServerConfigError, check_bind
from tests.backends import both_backends
from tests.conftest import write_xlsx
from tests.event_helpers import event, request, running_server, store_with_leads

pytestmark = both_backends

TOKEN = "s3cret-token"


def stored(store) -> list[tuple[str, str, str]]:
    rows = store._query("SELECT source, event_id, status FROM events ORDER BY seq")
    return list(rows.itertuples(index=False, name=None))


def test_missing_or_wrong_token_gets_401_and_stores_nothing(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    one = event("e-1", "lead.mobile_changed", {"old_mobile": "13800138000", "new_mobile": "13600136000"})
    with running_server(store.path, TOKEN) as base:
        assert request("POST", f"{base}/events", one).status == 401
        wrong = request("POST", f"{base}/events", one, token="guess")
        assert wrong.status == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert stored(store) == []


def test_single_event_is_stored_before_the_answer_and_a_replay_changes_nothing(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    one = event("e-1", "lead.mobile_changed",
                {"old_mobile": "+86 138-0013-8000", "new_mobile": "136 0013 6000", "verified": ["old_sms"]},
                subject="L00000001")
    with running_server(store.path, TOKEN) as base:
        first = request("POST", f"{base}/events", one, token=TOKEN)
        assert first.status == 202
        assert first.body["accepted"] == 1 and first.body["results"][0]["status"] == "accepted"
        # durable before the answer: a second process reading the file right now sees it
        rows = store._query("SELECT * FROM events")
        assert len(rows) == 1
        assert rows.iloc[0]["status"] == "received" and rows.iloc[0]["subject"] == "L00000001"
        assert '"new_mobile": "13600136000"' in rows.iloc[0]["data"]  # standardized on the way in
        again = request("POST", f"{base}/events", one, token=TOKEN)
        assert again.status == 202
        assert again.body["results"][0] == {"index": 0, "id": "e-1", "status": "duplicate",
                                            "seq": first.body["results"][0]["seq"]}
        assert again.body["accepted"] == 0 and again.body["duplicates"] == 1
    assert len(stored(store)) == 1


def test_batch_with_a_bad_event_names_it_and_keeps_the_others(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    batch = [
        event("b-1", "lead.contact_bounced", {"channel": "email", "value": "lina@example.com", "reason": "no mailbox"}),
        event("b-2", "lead.mobile_changed", {"old_mobile": "13800138000", "new_mobile": "12345"}),
        event("b-3", "lead.profile_updated", {"mobile": "13700137000", "title": "CTO"}),
        {"specversion": "1.0", "id": "b-4", "source": "x", "type": "lead.unknown", "data": {}},
        {"specversion": "1.0", "id": "b-5", "type": "lead.owner_assigned", "data": {"owner": "李娜"}},
    ]
    with running_server(store.path, TOKEN) as base:
        answer = request("POST", f"{base}/events", batch, token=TOKEN,
                         content_type="application/cloudevents-batch+json")
    assert answer.status == 400
    results = {r["id"]: r for r in answer.body["results"]}
    assert results["b-1"]["status"] == "accepted" and results["b-3"]["status"] == "accepted"
    assert results["b-2"]["status"] == "rejected" and results["b-2"]["field"] == "data.new_mobile"
    assert "event 1 (id b-2)" in results["b-2"]["error"] and "mobile" in results["b-2"]["error"]
    assert results["b-4"]["field"] == "type"
    assert results["b-5"]["field"] == "source"
    assert [e for _, e, _ in stored(store)] == ["b-1", "b-3"]


def test_a_json_array_is_a_batch_and_a_bad_single_event_stores_nothing(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    with running_server(store.path, TOKEN) as base:
        answer = request("POST", f"{base}/events", [
            event("a-1", "lead.owner_assigned", {"lead_id": "L00000001", "owner": "李娜"}),
            event("a-2", "lead.email_changed", {"old_email": "lina@example.com", "new_email": "LiNa@Example.com "}),
        ], token=TOKEN, content_type="application/json")
        assert answer.status == 202 and answer.body["accepted"] == 2
        bad = request("POST", f"{base}/events", event("a-3", "lead.profile_updated", {"mobile": "13700137000"}),
                      token=TOKEN)
        assert bad.status == 400
        assert bad.body["results"][0]["field"] == "data"
        assert "at least one of name, company, title, address, wechat" in bad.body["error"]
        not_json = request("POST", f"{base}/events", raw=b"{nope", token=TOKEN)
        assert not_json.status == 400 and "not JSON" in not_json.body["error"]
    assert [e for _, e, _ in stored(store)] == ["a-1", "a-2"]


def test_body_above_the_limit_gets_413(tmp_path: Path) -> None:
    """The server answers from the declared length, before a byte of the body: the client sends its headers
    only and reads the answer (had it sent the body, the server closing first could reset the connection
    under the answer, an intermittent broken pipe rather than a 413)."""
    store = store_with_leads(tmp_path)
    with running_server(store.path, TOKEN) as base:
        url = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.putrequest("POST", "/events")
            conn.putheader("Content-Type", "application/cloudevents+json")
            conn.putheader("Authorization", f"Bearer {TOKEN}")
            conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
            conn.endheaders()
            answer = conn.getresponse()
            status, body = answer.status, json.loads(answer.read())
        finally:
            conn.close()
    assert status == 413 and str(MAX_BODY_BYTES) in body["error"]
    assert stored(store) == []


def test_schema_is_published_per_event_type(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    with running_server(store.path, TOKEN) as base:
        answer = request("GET", f"{base}/events/schema")
    assert answer.status == 200
    types = answer.body["types"]
    assert set(types) == {"lead.mobile_changed", "lead.email_changed", "lead.profile_updated",
                          "lead.contact_bounced", "lead.owner_assigned", "link.clicked"}
    assert "new_mobile" in types["lead.mobile_changed"]["required"]
    assert set(answer.body["envelope"]["required"]) >= {"id", "source", "specversion", "type", "data"}


def test_no_token_refuses_a_non_loopback_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("DATAFACTORY_API_TOKEN", raising=False)
    with pytest.raises(ServerConfigError):
        check_bind("0.0.0.0", None)
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "a-token")
    assert main(["--home", str(tmp_path / "home"), "serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to listen on 0.0.0.0 without DATAFACTORY_API_TOKEN" in capsys.readouterr().err


def test_event_files_are_accepted_the_same_way(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    inbox = tmp_path / "inbox" / "events"
    inbox.mkdir(parents=True)
    path = inbox / "app-export.jsonl"
    import json
    path.write_text("\n".join([
        json.dumps(event("f-1", "lead.owner_assigned", {"mobile": "13800138000", "owner": "王强"})),
        '{"specversion": "1.0", "id": "f-2", ',
        json.dumps(event("f-3", "lead.contact_bounced", {"channel": "mobile", "value": "1380013800"})),
        "",
        json.dumps(event("f-4", "lead.profile_updated", {"email": "lina@example.com", "company": "新公司"})),
    ]) + "\n", encoding="utf-8")
    outcome = ingest_event_file(store, path, tmp_path / "processed" / "events", tmp_path / "rejected" / "events")
    assert (outcome.accepted, outcome.duplicates) == (2, 0)
    assert outcome.errors[0].startswith("app-export.jsonl line 2: not JSON")
    assert outcome.errors[1].startswith("app-export.jsonl line 3 (id f-3): data.value")
    assert [e for _, e, _ in stored(store)] == ["f-1", "f-4"]
    assert not path.exists() and len(list((tmp_path / "processed" / "events").glob("*.jsonl"))) == 1
    report = next((tmp_path / "rejected" / "events").glob("*.error.txt")).read_text(encoding="utf-8")
    assert "line 2" in report and "line 3" in report
    bad_lines = next((tmp_path / "rejected" / "events").glob("*.bad.jsonl")).read_text(encoding="utf-8")
    assert '"f-2"' in bad_lines and '"f-3"' in bad_lines  # nothing lost


def test_the_server_lets_an_import_have_the_store_while_events_keep_coming(tmp_path: Path) -> None:
    """One writer per DuckDB file: a busy server must not starve an import of the lock."""
    from datafactory_pipelines.pipeline import import_file
    from datafactory_pipelines.store import open_store

    store = store_with_leads(tmp_path)
    stop = threading.Event()
    answers: list[int] = []

    def keep_posting(base: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            answers.append(request("POST", f"{base}/events", event(f"p-{n}", "lead.owner_assigned", {
                "mobile": "13800138000", "owner": "王强"}), token=TOKEN).status)

    with running_server(store.path, TOKEN) as base:
        poster = threading.Thread(target=keep_posting, args=(base,))
        poster.start()
        time.sleep(0.5)
        started = time.monotonic()
        outcome = import_file(open_store(store.location), write_xlsx(tmp_path / "more.xlsx", [
            ["姓名", "手机"], ["赵六", "13500135000"]]))
        waited = time.monotonic() - started
        stop.set()
        poster.join()
    assert outcome.status == "imported"
    assert waited < 15, f"the import waited {waited:.1f}s for the store"
    assert answers and set(answers) == {202}
    assert len(stored(store)) == len(answers)
