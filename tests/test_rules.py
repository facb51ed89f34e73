"""Rules (YAML + CEL) applied to stored events through the edit path: golden record, history, conflicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datafactory_pipelines.cli import main
from datafactory_pipelines.events.apply import apply_events
from datafactory_pipelines.events.feed import store_events
from datafactory_pipelines.events.types import validate_event
from datafactory_pipelines.history import verify_chain
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.rules import RuleError, check_rule_files, load_rules, parse_rules
from tests.backends import both_backends
from tests.conftest import write_xlsx
from tests.event_helpers import event, lead_by_mobile, store_with_leads, trust_the_app

pytestmark = both_backends


@pytest.fixture(autouse=True)
def _app_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what trusted events do; the shipped rules trust no source until configured."""
    trust_the_app(monkeypatch)


def post(store, *events: dict) -> None:
    checked = [validate_event(e) for e in events]
    store_events(store, checked, via="test")


def event_rows(store):
    return store._query("SELECT * FROM events ORDER BY seq").set_index("event_id")


def test_verified_mobile_change_replaces_primary_keeps_old_as_alternate_and_survives_a_reimport(
        tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    lead = lead_by_mobile(store, "13800138000")
    post(store, event("m-1", "lead.mobile_changed", {"old_mobile": "13800138000", "new_mobile": "13600136000",
                                                     "verified": ["old_sms", "new_sms"]}))
    report = apply_events(store, load_rules(tmp_path))
    assert report.by_status == {"applied": 1} and report.by_rule == {"mobile-change-verified": 1}
    after = store.leads().set_index("lead_id").loc[lead["lead_id"]]
    assert after["mobile"] == "13600136000" and after["mobile_alternates"] == "13800138000"
    history = store.history(lead["lead_id"])
    rows = history[history["action"] == "event"]
    assert set(rows["field"]) == {"mobile", "mobile_alternates"}
    assert (rows["actor"] == "rule mobile-change-verified").all() and rows["cause"].str.contains("event m-1").all()
    assert verify_chain(store.history()).ok
    assert event_rows(store).loc["m-1", "status"] == "applied"
    # a later import of the old list does not undo what the event did: the rule's value holds like an edit
    import_file(store, write_xlsx(tmp_path / "again.xlsx", [["姓名", "手机", "公司"],
                                                            ["张伟", "13800138000", "深圳星海科技有限公司"]]))
    relink_and_curate(store)
    assert store.leads().set_index("lead_id").at[lead["lead_id"], "mobile"] == "13600136000"


def test_unverified_change_adds_an_alternate_and_queues_one_conflict(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    lead = lead_by_mobile(store, "13900139000")
    post(store, event("u-1", "lead.mobile_changed", {"old_mobile": "13900139000", "new_mobile": "13100131000",
                                                     "verified": ["new_sms"]}),
         event("u-2", "lead.mobile_changed", {"mobile": "13900139000", "new_mobile": "13100131000"}))
    apply_events(store, load_rules(tmp_path))
    after = store.leads().set_index("lead_id").loc[lead["lead_id"]]
    assert after["mobile"] == "13900139000" and after["mobile_alternates"] == "13100131000"
    conflicts = store.conflicts()
    assert len(conflicts) == 1  # the second, identical change waits on the same open conflict
    row = conflicts.iloc[0]
    assert (row["lead_id"], row["field"], row["current_value"], row["incoming_value"]) == (
        lead["lead_id"], "mobile", "13900139000", "13100131000")
    assert row["source"] == "https://app.example.com" and row["import_id"] == "event u-1"
    # an alternate contact identifies the lead too
    post(store, event("u-3", "lead.profile_updated", {"mobile": "13100131000", "address": "杭州市西湖区文三路1号"}))
    report = apply_events(store, load_rules(tmp_path))
    assert report.by_status == {"applied": 1}
    assert event_rows(store).loc["u-3", "lead_id"] == lead["lead_id"]


def test_bounce_demotes_the_contact_and_a_lead_left_unreachable_is_flagged_not_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFACTORY_TRUSTED_SOURCES", "https://app.example.com,mailer,call-center")
    store = store_with_leads(tmp_path)
    lead = lead_by_mobile(store, "13700137000")
    post(store,
         event("x-1", "lead.email_changed", {"email": "wangfang@example.com", "new_email": "fang@example.org"}),
         event("x-2", "lead.contact_bounced", {"channel": "email", "value": "wangfang@example.com",
                                               "reason": "mailbox does not exist"}, source="mailer"))
    apply_events(store, load_rules(tmp_path))
    after = store.leads().set_index("lead_id").loc[lead["lead_id"]]
    assert after["email"] == "fang@example.org" and after["email_alternates"] == ""
    emails = store.history(lead["lead_id"]).query("field == 'email' and action == 'event'")
    assert emails.iloc[-1]["old_value"] == "wangfang@example.com"  # it stays in the history
    flags = store._query("SELECT * FROM contact_flags")
    assert flags.iloc[0][["channel", "value", "status", "reason"]].tolist() == [
        "email", "wangfang@example.com", "bounced", "mailbox does not exist"]
    post(store,
         event("x-3", "lead.contact_bounced", {"channel": "email", "value": "fang@example.org"}, source="mailer"),
         event("x-4", "lead.contact_bounced", {"channel": "mobile", "value": "13700137000",
                                               "reason": "number not in service"}, source="call-center"))
    apply_events(store, load_rules(tmp_path))
    gone = store.leads().set_index("lead_id").loc[lead["lead_id"]]
    assert gone["status"] == "active" and gone["mobile"] == "" and gone["email"] == ""
    assert gone["contact_status"] == "no reachable contact"
    assert len(store._query("SELECT * FROM contact_flags")) == 3


def test_profile_update_trusted_source_updates_fields_untrusted_asks_for_company(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFACTORY_TRUSTED_SOURCES", "https://crm.example.com")
    store = store_with_leads(tmp_path)
    zhang = lead_by_mobile(store, "13800138000")
    li = lead_by_mobile(store, "13900139000")
    post(store,
         event("p-1", "lead.profile_updated", {"mobile": "13800138000", "company": "北京新海科技有限公司",
                                               "title": "CTO", "wechat": "zhangwei_88"},
               source="https://crm.example.com"),
         event("p-2", "lead.profile_updated", {"email": "lina@example.com", "company": "红星机械有限公司",
                                               "address": "上海市浦东新区世纪大道100号"}, source="https://forms.example.com"))
    report = apply_events(store, load_rules(tmp_path))
    assert report.by_rule == {"profile-update-trusted": 1, "profile-update-untrusted": 1}
    leads = store.leads().set_index("lead_id")
    assert leads.at[zhang["lead_id"], "company"] == "北京新海科技有限公司"
    assert leads.at[zhang["lead_id"], "wechat"] == "zhangwei_88"
    assert leads.at[zhang["lead_id"], "title"] != zhang["title"]
    assert leads.at[li["lead_id"], "company"] == li["company"]  # the policy says ask: it waits
    assert leads.at[li["lead_id"], "address"].startswith("上海市浦东新区")
    conflicts = store.conflicts()
    assert conflicts[["lead_id", "field", "incoming_value"]].values.tolist() == [
        [li["lead_id"], "company", "红星机械有限公司"]]
    overrides = store.overrides()
    assert set(overrides.loc[overrides["lead_id"] == zhang["lead_id"], "origin"]) == {"event"}


def test_events_matching_no_lead_or_several_are_kept_and_counted(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    post(store,
         event("n-1", "lead.owner_assigned", {"mobile": "13000130000", "owner": "王强"}),
         event("n-2", "lead.profile_updated", {"mobile": "13800138000", "email": "lina@example.com", "title": "CEO"}),
         event("n-3", "lead.profile_updated", {"lead_id": "L09999999", "title": "CEO"}))
    report = apply_events(store, load_rules(tmp_path))
    assert report.by_status == {"no_match": 2, "ambiguous": 1}
    rows = event_rows(store)
    assert rows.loc[["n-1", "n-2", "n-3"], "status"].tolist() == ["no_match", "ambiguous", "no_match"]
    assert store.history().query("action == 'event'").empty


def test_a_rule_that_cannot_act_fails_its_event_and_changes_nothing(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.yaml").write_text("""
rules:
  - name: owner-assigned            # replaces the shipped rule of that name
    on: [lead.owner_assigned]
    when: lead.mobile.startsWith("138")
    actions:
      - set: {field: title, value: '"客户经理"'}
      - set: {field: mobile, value: event.data.owner}
""", encoding="utf-8")
    post(store, event("o-1", "lead.owner_assigned", {"mobile": "13800138000", "owner": "not a phone"}),
         event("o-2", "lead.owner_assigned", {"mobile": "13900139000", "owner": "李娜"}))
    report = apply_events(store, load_rules(tmp_path))
    assert report.by_status == {"failed": 1, "no_rule": 1}
    rows = event_rows(store)
    assert "not a valid CN mobile" in json.loads(rows.loc["o-1", "outcome"])["error"]
    assert store.history().query("action == 'event'").empty  # not even the title of the first action


def test_rules_check_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    (home / "rules").mkdir(parents=True)
    (home / "rules" / "broken.yaml").write_text("""rules:
  - name: fine
    on: [link.clicked]
    actions:
      - touch_source: {source: event.data.channel}
  - name: bad-cel
    on: [lead.mobile_changed]
    when: 'event.data.verified.size( > 1'
    actions:
      - notify: {}
""", encoding="utf-8")
    (home / "rules" / "unknown.yaml").write_text("""rules:
  - name: typo
    on: [lead.mobile_changed]
    actions:
      - notify: {}
      - delete_lead: {}
""", encoding="utf-8")
    problems = check_rule_files(home)
    assert len(problems) == 2
    assert problems[0].startswith(f"{home / 'rules' / 'broken.yaml'}:8: rule 'bad-cel': when: CEL syntax error")
    assert problems[1].startswith(f"{home / 'rules' / 'unknown.yaml'}:6: unknown action 'delete_lead'")
    assert main(["--home", str(home), "rules", "check"]) == 1
    assert "broken.yaml:8" in capsys.readouterr().out
    with pytest.raises(RuleError, match=r"x.yaml:3: rule 'r': `on` must name event types"):
        parse_rules("rules:\n  - name: r\n    on: [lead.nothing]\n    actions: [{notify: {}}]\n", "x.yaml")


def test_rules_list_and_a_dry_run_that_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = store_with_leads(tmp_path)
    assert main(["--home", str(tmp_path), "rules", "list"]) == 0
    listed = capsys.readouterr().out
    assert "mobile-change-verified  on lead.mobile_changed" in listed and "default_rules.yaml" in listed
    lead = lead_by_mobile(store, "13800138000")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event("t-1", "lead.mobile_changed", {
        "old_mobile": "13800138000", "new_mobile": "13600136000", "verified": ["old_sms", "new_sms"]})))
    before = store.history()
    assert main(["--home", str(tmp_path), "rules", "test", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"event t-1 (lead.mobile_changed from https://app.example.com): applied lead {lead['lead_id']}" in out
    assert "rule mobile-change-verified fires" in out
    assert f"{lead['lead_id']} mobile: 13800138000 → 13600136000" in out
    assert len(store.history()) == len(before) and store._query("SELECT * FROM events").empty


def test_owner_assigned_sets_the_owner_through_the_edit_path(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    lead = lead_by_mobile(store, "13800138000")
    post(store, event("w-1", "lead.owner_assigned", {"owner": "王强"}, subject=lead["lead_id"]))
    report = apply_events(store, load_rules(tmp_path))
    assert report.by_rule == {"owner-assigned": 1}
    assert store.leads().set_index("lead_id").at[lead["lead_id"], "owner"] == "王强"
    change = store.history(lead["lead_id"]).query("field == 'owner'").iloc[-1]
    assert (change["new_value"], change["actor"]) == ("王强", "rule owner-assigned")
    pinned = store.overrides().query("field == 'owner'").iloc[0]
    assert (pinned["lead_id"], pinned["value"], pinned["origin"]) == (lead["lead_id"], "王强", "event")
