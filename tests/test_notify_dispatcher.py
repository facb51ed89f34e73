"""The unattended deployment: `datafactory run-services` (serve with the notification dispatcher) posting
signed webhooks to a real receiver on 127.0.0.1; a kill -9 of the dispatcher midway loses nothing and
tells no owner anything twice (each webhook-id once, a re-send carrying the same id and body); Dagster
records what the dispatcher did through its journal sensor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from standardwebhooks import Webhook as StandardWebhook

from assets.resources import LeadStoreResource
from datafactory_pipelines.notify.journal import journal_path, read_journal
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from sensors.dispatch import dispatch_journal_sensor
from sensors.events import event_feed_sensor
from sensors.notify import outbox_sensor
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx
from tests.event_helpers import event, free_port, request, trust_the_app
from tests.test_cli import run_cli
from tests.test_notify import HEADER, SECRET, _configure
from tests.webhook_receiver import WebhookReceiver

pytestmark = both_backends

WAIT_SECONDS = 90  # generous: the machine is shared; speed is measured in benchmarks/notify_latency.py


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def owned_leads(home: Path, tmp_path: Path, count: int) -> list[tuple[str, str]]:
    """`count` leads owned by 李娜, each with its own mobile: (lead_id, mobile)."""
    store = store_in(home)
    rows = [HEADER] + [[f"王{'芳敏静丽强磊军洋勇艳'[i % 10]}{'一二三四五六七八九十'[i // 10 % 10]}",
                        f"137{i:08d}", f"p{i}@qq.com", "星海科技", "销售经理", "李娜", "2025-01-01"]
                       for i in range(count)]
    assert import_file(store, write_xlsx(tmp_path / "线索.xlsx", rows)).status == "imported"
    relink_and_curate(store)
    leads = store.leads()
    return sorted(zip(leads["lead_id"], leads["mobile"], strict=True), key=lambda pair: pair[1])


@contextmanager
def run_services(home: Path, dagster_home: Path, services: str = "serve",
                 ui_port: int = 0) -> Iterator[tuple[str, subprocess.Popen]]:
    """`datafactory run-services` in its own process; yields the events URL once /health answers."""
    port = free_port()
    env = {**os.environ, "DATAFACTORY_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env.pop("DATAFACTORY_API_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "datafactory_pipelines.cli", "run-services", "--services",
                                services, "--port", str(port), "--ui-port", str(ui_port or free_port())],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(base), "the event server to answer")
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = process.communicate(timeout=40)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
        print(output)


def healthy(base: str, path: str = "/health") -> bool:
    try:
        return request("GET", f"{base}{path}").status == 200
    except OSError:
        return False


def wait_for(condition, what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


def post(base: str, body: dict) -> None:
    """POST an event until the server accepts it (it may be restarting); a replay is acknowledged."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            answer = request("POST", f"{base}/events", body)
            assert answer.status == 202, answer.body
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def mobile_change(event_id: str, old: str, new: str) -> dict:
    return event(event_id, "lead.mobile_changed", {"old_mobile": old, "new_mobile": new,
                                                   "verified": ["old_sms", "new_sms"]})


def delivery_statuses(home: Path) -> list[tuple[str, int]]:
    time.sleep(0.5)  # the store is the server's between two looks
    with store_in(home).transaction() as con:
        return con.execute("SELECT status, count(*) FROM outbox_deliveries GROUP BY status").fetchall()


def ids_received(receiver: WebhookReceiver) -> set[str]:
    return {r.headers["webhook-id"] for r in list(receiver.requests)}


def test_events_and_lead_set_reach_the_owner_and_dagster_records_the_batches(
        datafactory_home: Path, tmp_path: Path, receiver, instance: dg.DagsterInstance,
        monkeypatch: pytest.MonkeyPatch) -> None:
    trust_the_app(monkeypatch)  # the shipped rules trust no source (issue 19)
    (lead, mobile), = owned_leads(datafactory_home, tmp_path, 1)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET, "timeout_seconds": 2}])
    with run_services(datafactory_home, tmp_path / "dagster_home") as (base, _):
        wait_for(lambda: len(receiver.requests) == 1, "the lead's creation message")
        post(base, mobile_change("m-1", mobile, "13600136000"))
        wait_for(lambda: len(receiver.requests) == 2, "the event's message")
        sent = StandardWebhook(SECRET).verify(receiver.requests[1].body, receiver.requests[1].headers)["data"]
        assert sent["lead_id"] == lead and sent["owner"] == "李娜"
        assert {c["field"] for c in sent["changes"]} == {"mobile", "mobile_alternates"}
        assert all("event m-1" in c["cause"] for c in sent["changes"])

        # a change committed by another process: the dispatcher sees the store's change marker
        done = run_cli(datafactory_home, "lead", "set", lead, "title=采购总监", "--by", "王经理")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: len(receiver.requests) == 3, "the edit's message")
        sent = StandardWebhook(SECRET).verify(receiver.requests[2].body, receiver.requests[2].headers)["data"]
        assert [(c["field"], c["new"], c["actor"]) for c in sent["changes"]] == [("title", "采购总监", "王经理")]

        journal = journal_path(store_in(datafactory_home).path)
        wait_for(lambda: sum(e.counts.get("delivered", 0) for e in read_journal(journal, 0)) == 3,
                 "the journal to say so (written after the results are)")
        # while the dispatcher lives, the run-per-batch sensors hand over to it without opening the store
        with dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()}) as context:
            assert "handed over to the notification" in event_feed_sensor(context).skip_reason.skip_message
            assert "handed over to the notification" in outbox_sensor(context).skip_reason.skip_message
            recorded = dispatch_journal_sensor(context)
    by_asset: dict[str, list[dict]] = {}
    for materialization in recorded.asset_events:
        by_asset.setdefault(materialization.asset_key.to_user_string(), []).append(
            {k: v.value for k, v in materialization.metadata.items()})
    assert [(m["events"], m["field_changes"]) for m in by_asset["lead_events"]] == [(1, 2)]
    outcomes = " ".join(by_asset["lead_events"][0]["by_type_and_outcome"].split())
    assert "| lead.mobile_changed | applied | 1 |" in outcomes
    assert sum(m["delivered"] for m in by_asset["notification_deliveries"]) == 3
    assert recorded.cursor == f"{journal.stat().st_ino}:{journal.stat().st_size}"
    with store_in(datafactory_home).transaction() as con:
        assert con.execute("SELECT status FROM events").fetchall() == [("applied",)]
        assert con.execute("SELECT status, count(*) FROM outbox_deliveries GROUP BY status").fetchall() == [
            ("delivered", 3)]


def test_a_kill_9_of_the_dispatcher_midway_loses_nothing_and_tells_each_message_once(
        datafactory_home: Path, tmp_path: Path, receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    trust_the_app(monkeypatch)  # the shipped rules trust no source (issue 19)
    leads = owned_leads(datafactory_home, tmp_path, 24)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET, "timeout_seconds": 2}])
    with run_services(datafactory_home, tmp_path / "dagster_home") as (base, _):
        pid_file = datafactory_home / "services" / "serve.pid"
        first_pid = int(pid_file.read_text())
        for i, (_, mobile) in enumerate(leads):
            post(base, mobile_change(f"m-{i}", mobile, f"136{i:08d}"))
            if i == len(leads) // 2:  # midway: the dispatcher is applying and delivering
                os.kill(first_pid, signal.SIGKILL)
            time.sleep(0.05)
        wait_for(lambda: pid_file.exists() and int(pid_file.read_text()) != first_pid, "serve to start again")
        with store_in(datafactory_home).transaction() as con:
            expected = {row[0] for row in con.execute("SELECT message_id FROM outbox").fetchall()}
        wait_for(lambda: ids_received(receiver) >= expected and len(expected) == 2 * len(leads),
                 "every message (one per lead's creation, one per event)")
        # a pass killed between its POSTs and writing their results left them leased: they are sent again
        # (same id) when the lease runs out, and then recorded
        wait_for(lambda: delivery_statuses(datafactory_home) == [("delivered", 2 * len(leads))],
                 "every delivery recorded as delivered")
    store = store_in(datafactory_home)
    with store.transaction() as con:
        outbox = {row[0] for row in con.execute("SELECT message_id FROM outbox").fetchall()}
        statuses = con.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall()
        deliveries = con.execute("SELECT status, count(*) FROM outbox_deliveries GROUP BY status").fetchall()
    assert statuses == [("applied", len(leads))]
    assert deliveries == [("delivered", 2 * len(leads))]
    assert ids_received(receiver) == outbox and len(outbox) == 2 * len(leads)
    bodies: dict[str, bytes] = {}
    for received in receiver.requests:  # a re-send after the kill carries the same id and the same message
        StandardWebhook(SECRET).verify(received.body, received.headers)
        assert bodies.setdefault(received.headers["webhook-id"], received.body) == received.body
    print(f"{len(receiver.requests)} requests for {len(outbox)} messages "
          f"({len(receiver.requests) - len(outbox)} re-sent with their webhook-id after the kill)")


def test_the_whole_deployment_records_every_batch_in_dagster_and_restarts_a_killed_daemon(
        datafactory_home: Path, tmp_path: Path, receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """serve, dagster-daemon and dagster-webserver from one command: the daemon (started directly, its
    dagster.yaml from DAGSTER_HOME) runs dispatch_journal_sensor, which records the dispatcher's batches as
    materializations; a killed daemon is started again."""
    trust_the_app(monkeypatch)  # the shipped rules trust no source (issue 19)
    leads = owned_leads(datafactory_home, tmp_path, 3)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET, "timeout_seconds": 2}])
    dagster_home, ui_port = tmp_path / "dagster_home", free_port()
    with run_services(datafactory_home, dagster_home, "serve,daemon,webserver", ui_port) as (base, _):
        assert "tag_concurrency_limits" in (dagster_home / "dagster.yaml").read_text()
        for i, (_, mobile) in enumerate(leads):
            post(base, mobile_change(f"m-{i}", mobile, f"136{i:08d}"))
        wait_for(lambda: len(ids_received(receiver)) == 6, "the creations' and the events' messages")
        daemon_pid = int((datafactory_home / "services" / "daemon.pid").read_text())
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            def recorded(asset: str, count: str) -> int:
                records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
                return sum(int(r.asset_materialization.metadata[count].value) for r in records)

            wait_for(lambda: recorded("lead_events", "events") == 3 and recorded(
                "notification_deliveries", "delivered") == 6, "the daemon's sensor to record the batches", 180)
            assert instance.get_runs() == []  # recorded, not a run per batch
        os.kill(daemon_pid, signal.SIGKILL)
        wait_for(lambda: int((datafactory_home / "services" / "daemon.pid").read_text()) != daemon_pid,
                 "the daemon to start again")
        wait_for(lambda: healthy(f"http://127.0.0.1:{ui_port}", "/server_info"), "the Dagster webserver", 180)


def test_one_dispatcher_per_store_the_other_stands_by_and_takes_over(
        datafactory_home: Path, tmp_path: Path, receiver) -> None:
    """Two dispatchers on one store (two servers): one serves, the other stands by; when the first stops, the
    second serves. A change committed without waking either is seen through the store's change marker."""
    from datafactory_pipelines.decisions import edit_leads
    from datafactory_pipelines.notify.dispatcher import Dispatcher, dispatcher_alive

    (lead, _), = owned_leads(datafactory_home, tmp_path, 1)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET, "timeout_seconds": 2}])
    store = store_in(datafactory_home)
    first, second = Dispatcher(store, datafactory_home), Dispatcher(store, datafactory_home)
    first.start()
    wait_for(lambda: first.active and len(receiver.requests) == 1, "the first to serve (the creation message)")
    second.start()
    try:
        edit_leads(store, [{"lead_id": lead, "field": "title", "value": "采购总监"}], by="王经理")
        wait_for(lambda: len(receiver.requests) == 2, "the edit's message, through the change marker")
        assert not second.active and dispatcher_alive(store.path) == f"pid {os.getpid()}"
        first.stop()
        wait_for(lambda: second.active, "the second to take over")
        edit_leads(store, [{"lead_id": lead, "field": "title", "value": "总经理"}], by="王经理")
        wait_for(lambda: len(receiver.requests) == 3, "the second edit's message, from the second dispatcher")
    finally:
        first.stop()
        second.stop()
    assert dispatcher_alive(store.path) is None  # a stopped dispatcher leaves no heartbeat behind
    assert (first.stats.delivered, second.stats.delivered) == (2, 1)
