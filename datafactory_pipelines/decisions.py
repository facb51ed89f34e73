"""Applying operators' decisions on conflicts and their one-to-one edits, each in one transaction."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from datafactory_pipelines.conflicts import DECISION_OF_LABEL, EDITABLE_FIELDS, decided_value
from datafactory_pipelines.standardize.company import standardize_company
from datafactory_pipelines.standardize.email import standardize_email
from datafactory_pipelines.standardize.ids import (
    standardize_qq,
    standardize_short_video_id,
    standardize_wechat,
)
from datafactory_pipelines.standardize.name import standardize_name
from datafactory_pipelines.standardize.owner import standardize_owner
from datafactory_pipelines.standardize.phone import standardize_phone
from datafactory_pipelines.standardize.text import clean_text
from datafactory_pipelines.standardize.title import standardize_title
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.schema import OVERRIDE_COLUMNS


class DecisionError(ValueError):
    """A decision or an edit that cannot be applied; nothing was changed."""


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def decide(store: LeadStore, decisions: pd.DataFrame, by: str, note: str = "",
           expected_updated_at: dict[str, str] | None = None) -> int:
    """decisions: conflict_id, decision (current | incoming | both, or their Chinese labels).

    Every conflict must still be open, and (when given) every lead unchanged since the operator saw it;
    otherwise nothing is applied. Returns the number of conflicts decided.
    """
    with store.exclusive("conflict decisions", atomic=True):  # checked and applied with no writer between
        return _decide(store, decisions, by, note, expected_updated_at)


def _decide(store: LeadStore, decisions: pd.DataFrame, by: str, note: str,
            expected_updated_at: dict[str, str] | None) -> int:
    if decisions.empty:
        return 0
    all_conflicts = store.conflicts(status=None).set_index("conflict_id")
    wanted = decisions.assign(decision=decisions["decision"].map(DECISION_OF_LABEL))
    unknown = wanted.loc[wanted["decision"].isna() | (wanted["decision"] == "per_row"), "conflict_id"]
    if len(unknown):
        raise DecisionError(f"no usable decision for conflict(s) {', '.join(map(str, unknown.tolist()[:10]))}")
    missing = set(wanted["conflict_id"]) - set(all_conflicts.index)
    if missing:
        raise DecisionError(f"unknown conflict(s): {', '.join(map(str, sorted(missing)[:10]))}")
    rows = all_conflicts.loc[wanted["conflict_id"]]
    closed = rows.index[rows["status"] != "open"]
    if len(closed):
        raise DecisionError(f"stale: conflict(s) {', '.join(map(str, closed.tolist()[:10]))} were already decided "
                            "(export a fresh workbook)")
    if expected_updated_at:
        leads = store.leads().set_index("lead_id")["updated_at"]
        changed = [lead for lead, seen in expected_updated_at.items() if leads.get(lead) != seen]
        if changed:
            raise DecisionError(f"stale: lead(s) {', '.join(changed[:10])} changed since the workbook was exported "
                                "(export a fresh workbook)")
    moment = _now()
    values = [decided_value(d, c, i) for d, c, i in zip(wanted["decision"], rows["current_value"],
                                                         rows["incoming_value"], strict=True)]
    overrides = pd.DataFrame({
        "lead_id": rows["lead_id"].to_numpy(), "field": rows["field"].to_numpy(), "value": values,
        "decided_by": by, "note": note, "decided_at": moment, "origin": "conflict decision",
        "conflict_id": rows.index.to_numpy(),
    })[OVERRIDE_COLUMNS]
    decided = pd.DataFrame({"conflict_id": rows.index.to_numpy(), "decided_by": by, "decided_at": moment,
                            "decision": wanted["decision"].to_numpy()})
    updates = overrides[["lead_id", "field", "value"]].assign(
        updated_at=moment.isoformat(timespec="microseconds"), action="conflict decision", actor=by,
        cause=[f"conflict {c}" + (f"; {note}" if note else "") for c in rows.index])
    store.apply_decisions(overrides, decided, updates)
    return len(decided)


def decide_group(store: LeadStore, group_id: str, take: str, by: str, note: str = "") -> int:
    conflicts = store.conflicts()
    members = conflicts[conflicts["group_id"] == group_id]
    if members.empty:
        raise DecisionError(f"no open conflicts in group {group_id}")
    return decide(store, pd.DataFrame({"conflict_id": members["conflict_id"], "decision": take}), by, note)


def standardized_value(field: str, value: str) -> str:
    """An edited value, standardized like an imported one; an invalid contact is refused."""
    text = clean_text(value)
    if field == "mobile":
        result = standardize_phone(text)
        if not result.mobile:
            raise DecisionError(f"mobile {text!r} is not a valid CN mobile number")
        return result.mobile
    if field == "landline":
        result = standardize_phone(text)
        if not result.landline:
            raise DecisionError(f"landline {text!r} is not a valid landline")
        return result.landline
    checks = {"email": standardize_email, "wechat": standardize_wechat, "qq": standardize_qq,
              "douyin": standardize_short_video_id, "kuaishou": standardize_short_video_id}
    if field in checks:
        result = checks[field](text)
        if result.status == "invalid":
            raise DecisionError(f"{field} {text!r} is not valid: {result.reason}")
        return result[0]
    if field == "name":
        return standardize_name(text).name or text
    if field == "company":
        return standardize_company(text).company
    if field == "title":
        return standardize_title(text)
    if field == "owner":
        return standardize_owner(value)
    return text


def edit_leads(store: LeadStore, edits: pd.DataFrame, by: str, note: str = "", origin: str = "edit") -> int:
    """edits: lead_id, field, value. All are checked first; then all are applied in one transaction."""
    with store.exclusive(f"{origin} of {edits['lead_id'].nunique()} lead(s)", atomic=True):
        return _edit_leads(store, edits, by, note, origin)


def _edit_leads(store: LeadStore, edits: pd.DataFrame, by: str, note: str, origin: str) -> int:
    leads = store.leads_by_id(sorted(set(edits["lead_id"].astype(str))))  # only the leads edited
    leads = leads[leads["status"] == "active"].set_index("lead_id")
    problems = []
    values = []
    for row in edits.itertuples(index=False):
        where = getattr(row, "where", f"{row.lead_id} {row.field}")
        if row.lead_id not in leads.index:
            problems.append(f"{where}: no active lead {row.lead_id}")
        elif row.field not in EDITABLE_FIELDS:
            problems.append(f"{where}: {row.field!r} cannot be edited (editable: {', '.join(EDITABLE_FIELDS)})")
        try:
            if origin == "restore" or row.field not in EDITABLE_FIELDS:  # values from our own history
                values.append(str(row.value))
            else:
                values.append(standardized_value(row.field, str(row.value)))
        except DecisionError as err:
            problems.append(f"{where}: {err}")
    if problems:
        raise DecisionError("; ".join(problems[:20]))
    moment = _now()
    overrides = pd.DataFrame({"lead_id": edits["lead_id"].to_numpy(), "field": edits["field"].to_numpy(),
                              "value": values, "decided_by": by, "note": note, "decided_at": moment,
                              "origin": origin, "conflict_id": None})[OVERRIDE_COLUMNS]
    updates = overrides[["lead_id", "field", "value"]].assign(
        updated_at=moment.isoformat(timespec="microseconds"), action=origin, actor=by, cause=note)
    store.apply_decisions(overrides, pd.DataFrame(columns=["conflict_id"]), updates)
    return len(overrides)
