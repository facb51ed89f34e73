"""Issue 19, defects 5 and 6: key fields hold before commit; a contact decision keeps the alternates right.

5: `lead set L… mobile=…` (and a decision) could give one lead another active lead's primary mobile;
6: taking the incoming value of an event-raised mobile conflict left the new number as primary *and* as the
   only alternate, the old primary gone, and no history row for the alternates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from datafactory_pipelines.decisions import decide, edit_leads
from datafactory_pipelines.events.apply import apply_events
from datafactory_pipelines.events.feed import store_events
from datafactory_pipelines.events.types import validate_event
from datafactory_pipelines.history import verify_chain
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.restore import undo_import
from datafactory_pipelines.rules import load_rules
from datafactory_pipelines.store import open_store
from tests.conftest import write_xlsx
from tests.event_helpers import event, lead_by_mobile, store_with_leads, trust_the_app
from tests.test_cli import run_cli


def _lead(store, lead_id: str) -> pd.Series:
    return store.leads(include_retired=True).set_index("lead_id").loc[lead_id]


def test_defect_5_lead_set_cannot_give_a_lead_another_leads_primary_mobile(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    zhang, li = lead_by_mobile(store, "13800138000"), lead_by_mobile(store, "13900139000")
    history = len(store.history())
    done = run_cli(tmp_path, "lead", "set", li["lead_id"], "mobile=13800138000")
    assert done.returncode != 0 and "cannot share a primary mobile or email" in done.stderr, done.stderr
    assert "13800138000" not in done.stderr  # the value is masked in the message
    assert _lead(store, li["lead_id"])["mobile"] == "13900139000" and len(store.history()) == history
    with pytest.raises(ValueError, match="would both have primary email"):
        edit_leads(store, [{"lead_id": zhang["lead_id"], "field": "email", "value": "lina@example.com"}], by="x")
    # two leads swapping numbers in one change is no conflict
    edit_leads(store, [{"lead_id": zhang["lead_id"], "field": "mobile", "value": "13900139000"},
                       {"lead_id": li["lead_id"], "field": "mobile", "value": "13800138000"}], by="x")
    assert _lead(store, li["lead_id"])["mobile"] == "13800138000"


def _decide_incoming(store, lead_id: str, field: str) -> None:
    conflicts = store.conflicts()
    mine = conflicts[(conflicts["lead_id"] == lead_id) & (conflicts["field"] == field)]
    assert len(mine) == 1, conflicts
    decide(store, pd.DataFrame({"conflict_id": mine["conflict_id"], "decision": "incoming"}), by="operator")


def _assert_alternates_right(store, lead_id: str, old: str, new: str) -> None:
    lead = _lead(store, lead_id)
    alternates = [a for a in str(lead["mobile_alternates"] or "").split(";") if a]
    assert lead["mobile"] == new
    assert old in alternates and new not in alternates and len(alternates) == len(set(alternates))
    rows = store.history(lead_id)
    decided = rows[rows["action"] == "conflict decision"]
    assert set(decided["field"]) == {"mobile", "mobile_alternates"}
    assert verify_chain(store.history()).ok


def test_defect_6_taking_an_event_raised_mobile_keeps_the_old_primary_as_an_alternate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trust_the_app(monkeypatch)  # the conflict comes from a trusted source's unverified change
    store = store_with_leads(tmp_path)
    lead = lead_by_mobile(store, "13900139000")["lead_id"]
    store_events(store, [validate_event(event("u-1", "lead.mobile_changed", {
        "old_mobile": "13900139000", "new_mobile": "13100131000", "verified": ["new_sms"]}))], via="test")
    apply_events(store, load_rules(tmp_path))
    _decide_incoming(store, lead, "mobile")
    _assert_alternates_right(store, lead, "13900139000", "13100131000")


HEADER = ["姓名", "手机", "公司"]


def test_taking_an_import_raised_mobile_keeps_the_old_primary_as_an_alternate(tmp_path: Path) -> None:
    store = open_store(tmp_path / "leads.duckdb")
    import_file(store, write_xlsx(tmp_path / "a.xlsx", [HEADER, ["王芳", "13700137000", "星海科技"]]))
    relink_and_curate(store)
    lead = store.leads()["lead_id"].iloc[0]
    edit_leads(store, [{"lead_id": lead, "field": "mobile", "value": "13600136000"}], by="sales")
    import_file(store, write_xlsx(tmp_path / "b.xlsx", [HEADER, ["王芳", "13500135000", "星海科技"],
                                                        ["王芳", "13700137000", "星海科技"]]))
    relink_and_curate(store)
    conflicts = store.conflicts()
    if conflicts[(conflicts["lead_id"] == lead) & (conflicts["field"] == "mobile")].empty:
        pytest.skip("this import raised no mobile conflict")  # pragma: no cover - guards the scenario
    before = str(_lead(store, lead)["mobile"])
    incoming = conflicts[(conflicts["lead_id"] == lead) & (conflicts["field"] == "mobile")]["incoming_value"].iloc[0]
    _decide_incoming(store, lead, "mobile")
    _assert_alternates_right(store, lead, before, incoming)


def test_deciding_an_undo_raised_email_conflict_keeps_the_alternates_right(tmp_path: Path) -> None:
    store = open_store(tmp_path / "leads.duckdb")
    import_file(store, write_xlsx(tmp_path / "a.xlsx", [HEADER, ["王芳", "13700137000", "星海科技"]]))
    relink_and_curate(store)
    lead = store.leads()["lead_id"].iloc[0]
    second = import_file(store, write_xlsx(tmp_path / "b.xlsx", [["姓名", "手机", "邮箱", "公司"],
                                                                 ["王芳", "13700137000", "wf@qq.com", "星海科技"]]))
    relink_and_curate(store)
    edit_leads(store, [{"lead_id": lead, "field": "email", "value": "fang@163.com"}], by="sales")
    undo_import(store, second.import_id or "", by="admin")  # the hand-set value stays; an "undo import" conflict
    conflicts = store.conflicts()
    mine = conflicts[(conflicts["lead_id"] == lead) & (conflicts["field"] == "email")]
    assert len(mine) == 1 and mine["kind"].iloc[0] == "undo import", conflicts
    decide(store, pd.DataFrame({"conflict_id": mine["conflict_id"], "decision": "both"}), by="operator")
    after = _lead(store, lead)
    alternates = [a for a in str(after["email_alternates"] or "").split(";") if a]
    assert after["email"] == "fang@163.com" and after["email"] not in alternates
    assert len(alternates) == len(set(alternates))
    assert verify_chain(store.history()).ok


def test_defect_5_a_verified_event_cannot_give_a_lead_another_leads_primary_mobile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event is not applied (status failed, reason masked); the other events of the batch are."""
    trust_the_app(monkeypatch)  # a verified change from a trusted source: the shipped rules trust none
    store = store_with_leads(tmp_path)
    li = lead_by_mobile(store, "13900139000")["lead_id"]
    store_events(store, [validate_event(e) for e in (
        event("steal", "lead.mobile_changed", {"old_mobile": "13900139000", "new_mobile": "13800138000",
                                                "verified": ["old_sms", "new_sms"]}),
        event("fine", "lead.mobile_changed", {"old_mobile": "13700137000", "new_mobile": "13600136000",
                                               "verified": ["old_sms", "new_sms"]}))], via="test")
    report = apply_events(store, load_rules(tmp_path))
    assert report.by_status == {"failed": 1, "applied": 1}
    assert _lead(store, li)["mobile"] == "13900139000"
    rows = store._query("SELECT event_id, status, outcome FROM events ORDER BY seq").set_index("event_id")
    assert rows.at["steal", "status"] == "failed" and "cannot share a primary mobile" in rows.at["steal", "outcome"]
    assert "13800138000" not in rows.at["steal", "outcome"]
    actives = store.leads()
    assert not actives["mobile"].duplicated().any()
