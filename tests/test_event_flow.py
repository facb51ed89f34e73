"""End to end on real parts: POST over HTTP to `datafactory serve`, the event feed sensor and its run on a
real Dagster instance, the lead changed through the rules; tracking links made, clicked and attributed."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import LeadStoreResource
from datafactory_pipelines.cli import main
from datafactory_pipelines.definitions import defs
from datafactory_pipelines.links import TOKEN_CHARS, sign
from datafactory_pipelines.store import open_store
from sensors.events import event_feed_sensor
from tests.backends import both_backends
from tests.event_helpers import (
    event,
    lead_by_mobile,
    request,
    running_server,
    store_with_leads,
    trust_the_app,
)

pytestmark = both_backends


@pytest.fixture(autouse=True)
def _app_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what trusted events do; the shipped rules trust no source until configured."""
    trust_the_app(monkeypatch)

TOKEN = "flow-token"


def run_sensor_and_runs(instance: dg.DagsterInstance, cursor: str | None) -> tuple[dg.SensorResult, list]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"lead_store": LeadStoreResource()})
    result = event_feed_sensor(context)
    job = defs.resolve_job_def("apply_lead_events")
    runs = [job.execute_in_process(instance=instance, run_config=r.run_config, tags=r.tags)
            for r in result.run_requests or []]
    return result, runs


def test_posted_mobile_change_reaches_the_lead_through_the_sensor_run(datafactory_home: Path) -> None:
    store = store_with_leads(datafactory_home)
    lead = lead_by_mobile(store, "13800138000")
    change = event("evt-7f3a", "lead.mobile_changed", {
        "old_mobile": "13800138000", "new_mobile": "+86 136-0013-6000", "verified": ["old_sms", "new_sms"]})
    with running_server(store.path, TOKEN) as base, dg.instance_for_test() as instance:
        posted = request("POST", f"{base}/events", change, token=TOKEN)
        assert posted.status == 202 and posted.body["results"][0]["status"] == "accepted"
        seq = posted.body["results"][0]["seq"]

        result, runs = run_sensor_and_runs(instance, None)
        assert [r.run_key for r in result.run_requests] == [f"events-{seq}-{seq}"]
        assert result.cursor == str(seq)
        assert len(runs) == 1 and runs[0].success
        metadata = runs[0].asset_materializations_for_node("lead_events")[0].metadata
        assert metadata["events"].value == 1 and metadata["field_changes"].value == 2
        assert "mobile-change-verified" in metadata["by_rule"].value
        assert " ".join(metadata["by_type_and_outcome"].value.split()).endswith(
            "| lead.mobile_changed | applied | 1 |")
        assert not any("13600136000" in str(v.value) or "13800138000" in str(v.value) for v in metadata.values())

        after = open_store(store.location).leads().set_index("lead_id").loc[lead["lead_id"]]
        assert after["mobile"] == "13600136000"
        assert after["mobile_alternates"].split(";")[0] == "13800138000"
        history = open_store(store.location).history(lead["lead_id"])
        by_event = history[history["cause"].str.contains("event evt-7f3a", regex=False)]
        assert set(by_event["field"]) == {"mobile", "mobile_alternates"}
        assert (by_event["actor"] == "rule mobile-change-verified").all()
        assert (by_event["action"] == "event").all()

        # the same event again: acknowledged, nothing changes, no new run
        replay = request("POST", f"{base}/events", change, token=TOKEN)
        assert replay.status == 202 and replay.body["results"][0] == {
            "index": 0, "id": "evt-7f3a", "status": "duplicate", "seq": seq}
        result, runs = run_sensor_and_runs(instance, result.cursor)
        assert not result.run_requests and runs == []
        assert len(open_store(store.location).history(lead["lead_id"])) == len(history)
        # a new Dagster instance (the old one wiped) finds nothing left to apply: the store is the record
        with dg.instance_for_test() as fresh:
            result, runs = run_sensor_and_runs(fresh, None)
            assert not result.run_requests


def test_tracking_link_click_records_the_event_redirects_and_feeds_latest_source(
        datafactory_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DATAFACTORY_LINK_HOSTS", "shop.example.com,*.example.org")
    monkeypatch.setenv("DAGSTER_HOME", str(datafactory_home / "dagster_home"))
    store = store_with_leads(datafactory_home)
    lead = lead_by_mobile(store, "13900139000")
    home = ["--home", str(datafactory_home)]

    # a target off the allowlist cannot be made into a link
    assert main([*home, "link", "make", "--channel", "wechat", "--to", "https://evil.example.net/x"]) == 2
    assert "not on the allowlist" in capsys.readouterr().err
    assert store._query("SELECT * FROM tracking_links").empty

    with running_server(store.path, TOKEN) as base:
        assert main([*home, "link", "make", "--channel", "wechat-moments", "--to", "https://shop.example.com/p/42",
                     "--lead", lead["lead_id"], "--utm-source", "wechat", "--utm-medium", "social",
                     "--utm-campaign", "double11", "--base-url", base]) == 0
        url = capsys.readouterr().out.strip().splitlines()[-1]
        code = url.rsplit("/", 1)[1]
        assert url.startswith(f"{base}/t/") and "shop.example.com" not in url

        # link checkers and chat previews send HEAD: the same redirect, and no click recorded
        checked = request("HEAD", url, headers={"User-Agent": "LinkChecker/2.0"})
        assert checked.status == 302 and checked.headers["location"].startswith("https://shop.example.com/p/42")
        assert request("HEAD", f"{base}/t/short").status == 404
        clicked = request("GET", f"{url}?to=https://evil.example.net/", headers={"User-Agent": "TestPhone/1.0"})
        assert clicked.status == 302
        assert clicked.headers["location"] == ("https://shop.example.com/p/42?utm_source=wechat&utm_medium=social"
                                               "&utm_campaign=double11")
        # altered codes: a changed signature, a changed token; and a well-signed token that names no link
        flipped = code[:-1] + ("A" if code[-1] != "A" else "B")
        assert request("GET", f"{base}/t/{flipped}").status == 404
        changed_token = ("y" if code[0] == "x" else "x") + code[1:]  # a code may already start with x
        assert request("GET", f"{base}/t/{changed_token}").status == 404
        secret = store._query("SELECT value FROM store_meta WHERE key = 'link_secret'").iloc[0, 0].encode()
        assert request("GET", f"{base}/t/{sign('Q' * TOKEN_CHARS, secret)}").status == 404
        assert request("GET", f"{base}/t/short").status == 404

    clicks = store._query("SELECT * FROM events WHERE type = 'link.clicked'")
    assert len(clicks) == 1  # the refused codes stored nothing
    data = json.loads(clicks.iloc[0]["data"])
    assert data["channel"] == "wechat-moments" and data["utm_campaign"] == "double11"
    assert data["lead_id"] == lead["lead_id"] and data["user_agent"] == "TestPhone/1.0"
    assert "ip" not in data and clicks.iloc[0]["subject"] == lead["lead_id"]

    assert main([*home, "apply-events"]) == 0
    out = capsys.readouterr().out
    assert "1 batch(es) applied, 0 failed" in out
    after = open_store(store.location).leads().set_index("lead_id").loc[lead["lead_id"]]
    assert after["first_source"] == "官网"  # set by the import, never overwritten
    assert after["latest_source"] == "wechat-moments"
    touch = open_store(store.location).history(lead["lead_id"]).query("field == 'latest_source' and action == 'event'")
    assert touch.iloc[0]["actor"] == "rule link-click-source"


def test_events_left_behind_by_a_failed_run_are_requested_again(datafactory_home: Path) -> None:
    from datafactory_pipelines.events.feed import store_events
    from datafactory_pipelines.events.types import validate_event

    store = store_with_leads(datafactory_home)
    store_events(store, [validate_event(event(f"r-{i}", "lead.owner_assigned", {
        "mobile": "13800138000", "owner": "王强"})) for i in range(3)], via="test")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()})
        first = event_feed_sensor(context)
        assert [r.run_key for r in first.run_requests] == ["events-1-3"] and first.cursor == "3"
        # that run never applied them (it failed): the next tick asks again, under a key of its own
        context = dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                          resources={"lead_store": LeadStoreResource()})
        again = event_feed_sensor(context)
        assert [r.run_key for r in again.run_requests] == ["events-1-3-retry-at-3"]
        run = defs.resolve_job_def("apply_lead_events").execute_in_process(
            instance=instance, run_config=again.run_requests[0].run_config)
        assert run.success
        context = dg.build_sensor_context(instance=instance, cursor=again.cursor,
                                          resources={"lead_store": LeadStoreResource()})
        assert not event_feed_sensor(context).run_requests
    assert store._query("SELECT status FROM events ORDER BY seq")["status"].tolist() == ["applied", "unchanged", "unchanged"]
