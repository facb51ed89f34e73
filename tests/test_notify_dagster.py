"""The outbox sensor and the deliver_notifications job on a real Dagster instance, to a real receiver."""

import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from standardwebhooks import Webhook as StandardWebhook

from assets.resources import LeadStoreResource
from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.definitions import defs
from sensors.notify import outbox_sensor
from tests.test_notify import SECRET, _configure, _owned_leads
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def _tick(instance: dg.DagsterInstance) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()})
    return outbox_sensor(context)


def _run(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("deliver_notifications").execute_in_process(
        instance=instance, tags=request.tags, run_config=request.run_config or {})


def test_sensor_requests_a_delivery_run_keyed_by_id_range_and_attempt(
        datafactory_home: Path, tmp_path: Path, instance: dg.DagsterInstance, receiver) -> None:
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    assert _tick(instance).skip_reason is not None  # no notify.yaml: nothing to deliver to
    receiver.answers = [(500, {})]
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET}])

    first = _tick(instance).run_requests
    assert len(first) == 1 and first[0].run_key.startswith("outbox:1-1:attempt0:")
    assert first[0].tags["datafactory/lead_store"] == "write"
    result = _run(instance, first[0])
    assert result.success
    meta = result.asset_materializations_for_node("notification_deliveries")[0].metadata
    assert (meta["attempted"].value, meta["failed"].value, meta["delivered"].value) == (1, 1, 0)

    time.sleep(0.4)  # the compressed schedule's second delay
    second = _tick(instance).run_requests
    assert len(second) == 1 and second[0].run_key.startswith("outbox:1-1:attempt1:")
    meta = _run(instance, second[0]).asset_materializations_for_node("notification_deliveries")[0].metadata
    assert (meta["delivered"].value, meta["dead_letters"].value) == (1, 0)
    assert _tick(instance).skip_reason.skip_message == "nothing due in the outbox"

    # an edit to the owned lead: one more message, a new run key, a signed webhook listing old and new values
    edit_leads(store, pd.DataFrame({"lead_id": [owned, owned], "field": ["title", "company"],
                                    "value": ["销售总监", "星海科技集团"]}), by="王经理")
    third = _tick(instance).run_requests
    assert third[0].run_key.startswith("outbox:2-2:attempt0:")
    assert _run(instance, third[0]).success
    last = receiver.requests[-1]
    data = StandardWebhook(SECRET).verify(last.body, last.headers)["data"]
    assert sorted((c["field"], c["old"], c["new"]) for c in data["changes"]) == [
        ("company", "星海科技", "星海科技集团"), ("title", "销售经理", "销售总监")]
    assert [r.answered for r in receiver.requests] == [500, 200, 200]
    # no personal data in the run's metadata
    text = str(instance.get_latest_materialization_event(dg.AssetKey("notification_deliveries")))
    assert "13700137000" not in text and "wangfang" not in text


def test_full_flow_event_over_http_to_a_signed_webhook(datafactory_home: Path, tmp_path: Path,
                                                       instance: dg.DagsterInstance, receiver,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """POST lead.mobile_changed to `datafactory serve` -> event_feed_sensor's run -> the lead's primary mobile
    changes, the old one is an alternate, history names the event and rule -> outbox_sensor's run -> a signed
    webhook arrives whose signature the test verifies."""
    from sensors.events import process_event_feed
    from tests.event_helpers import event, request, running_server, trust_the_app

    trust_the_app(monkeypatch)  # the shipped rules trust no source until configured
    store, owned, _ = _owned_leads(datafactory_home, tmp_path)
    _configure(datafactory_home, [{"name": "crm", "url": receiver.url(), "secret": SECRET, "trusted": True}])
    created = _tick(instance).run_requests  # the lead's creation message goes first
    assert _run(instance, created[0]).success and len(receiver.requests) == 1

    with running_server(store.path, "t0ken") as base:
        answer = request("POST", f"{base}/events", event("mc-1", "lead.mobile_changed", {
            "old_mobile": "13700137000", "new_mobile": "13600136000", "verified": ["old_sms", "new_sms"]}),
            token="t0ken")
    assert answer.status == 202, answer.body
    runs = process_event_feed(instance, progress=lambda _: None)
    assert len(runs) == 1 and runs[0].success
    lead = store.leads().set_index("lead_id").loc[owned]
    assert lead["mobile"] == "13600136000" and "13700137000" in lead["mobile_alternates"]
    history = store.history(owned)
    assert history[history["field"] == "mobile"]["cause"].str.contains("event mc-1").any()

    requested = _tick(instance).run_requests
    assert len(requested) == 1 and requested[0].run_key.startswith("outbox:2-2:attempt0:")
    assert _run(instance, requested[0]).success
    last = receiver.requests[-1]
    data = StandardWebhook(SECRET).verify(last.body, last.headers)["data"]  # raises on a bad signature
    changes = {c["field"]: (c["old"], c["new"]) for c in data["changes"]}
    assert changes["mobile"] == ("13700137000", "13600136000")  # a trusted endpoint: full values
    assert {c["actor"] for c in data["changes"]} == {"rule mobile-change-verified"}
    assert len(receiver.requests) == 2
