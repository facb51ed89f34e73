"""Applying operators' decisions on conflicts and their one-to-one edits, each in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from datafactory_pipelines.fields import EDITABLE_FIELDS
from datafactory_pipelines.store import LeadStore

if TYPE_CHECKING:  # an edit of one lead loads neither pandas nor the standardizers it does not use
    import pandas as pd


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
    import pandas as pd

    from datafactory_pipelines.conflicts import DECISION_OF_LABEL, decided_value
    from datafactory_pipelines.store.schema import OVERRIDE_COLUMNS

    if decisions.empty:
        return 0
    # only the conflicts decided and their leads are read, whatever the size of the store
    all_conflicts = store.conflicts_by_id(sorted({int(c) for c in decisions["conflict_id"]})).set_index("conflict_id")
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
        leads = store.leads_by_id(sorted(expected_updated_at)).set_index("lead_id")["updated_at"]
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
    causes = [f"conflict {c}" + (f"; {note}" if note else "") for c in rows.index]
    updates = overrides[["lead_id", "field", "value"]].assign(
        updated_at=moment.isoformat(timespec="microseconds"), action="conflict decision", actor=by, cause=causes)
    updates = pd.concat([updates, _alternates_updates(store, rows, wanted, values, causes, updates)],
                        ignore_index=True)
    store.apply_decisions(overrides, decided, updates)
    return len(decided)


def _alternates_updates(store: LeadStore, rows: pd.DataFrame, wanted: pd.DataFrame, values: list[str],
                        causes: list[str], updates: pd.DataFrame) -> pd.DataFrame:
    """The alternates each contact decision leaves (the old primary kept as one, the new primary not among
    them), as more lead updates: whatever raised the conflict (import, event, undo), the golden record stays
    whole and the history shows the alternates change."""
    import pandas as pd

    from datafactory_pipelines.decision_alternates import ALTERNATES_OF, alternates_after

    contact = [i for i, name in enumerate(rows["field"]) if name in ALTERNATES_OF]
    if not contact:
        return updates.iloc[0:0]
    leads = store.leads_by_id(sorted({rows["lead_id"].iloc[i] for i in contact})).set_index("lead_id")
    as_dicts = {lead: row.to_dict() for lead, row in leads.iterrows()}
    after = alternates_after(as_dicts, [(rows["lead_id"].iloc[i], rows["field"].iloc[i], wanted["decision"].iloc[i],
                                         str(rows["incoming_value"].iloc[i] or ""), values[i]) for i in contact])
    cause_of = {}
    for i in contact:
        cause_of[(rows["lead_id"].iloc[i], ALTERNATES_OF[rows["field"].iloc[i]])] = causes[i]
    return pd.DataFrame([{"lead_id": lead, "field": column, "value": value, "updated_at": updates["updated_at"].iloc[0],
                          "action": "conflict decision", "actor": updates["actor"].iloc[0],
                          "cause": cause_of[(lead, column)]} for (lead, column), value in after.items()],
                        columns=updates.columns)


def decide_group(store: LeadStore, group_id: str, take: str, by: str, note: str = "") -> int:
    import pandas as pd

    members = store.conflicts_in_group(group_id)
    if members.empty:
        raise DecisionError(f"no open conflicts in group {group_id}")
    return decide(store, pd.DataFrame({"conflict_id": members["conflict_id"], "decision": take}), by, note)


def standardized_value(field: str, value: str) -> str:
    """An edited value, standardized like an imported one; an invalid contact is refused.

    Each field's standardizer is imported when that field is edited (a company's pulls in pinyin tables)."""
    from datafactory_pipelines.standardize.text import clean_text

    text = clean_text(value)
    if field in ("mobile", "landline"):
        from datafactory_pipelines.standardize.phone import standardize_phone

        number = getattr(standardize_phone(text), field)
        if not number:
            raise DecisionError(f"{field} {text!r} is not a valid " + ("CN mobile number" if field == "mobile"
                                                                      else "landline"))
        return number
    if field in ("email", "wechat", "qq", "douyin", "kuaishou"):
        from datafactory_pipelines.standardize.email import standardize_email
        from datafactory_pipelines.standardize.ids import (
            standardize_qq,
            standardize_short_video_id,
            standardize_wechat,
        )

        checks = {"email": standardize_email, "wechat": standardize_wechat, "qq": standardize_qq,
                  "douyin": standardize_short_video_id, "kuaishou": standardize_short_video_id}
        result = checks[field](text)
        if result.status == "invalid":
            raise DecisionError(f"{field} {text!r} is not valid: {result.reason}")
        return result[0]
    if field == "name":
        from datafactory_pipelines.standardize.name import standardize_name

        return standardize_name(text).name or text
    if field == "company":
        from datafactory_pipelines.standardize.company import standardize_company

        return standardize_company(text).company
    if field == "title":
        from datafactory_pipelines.standardize.title import standardize_title

        return standardize_title(text)
    if field == "owner":
        from datafactory_pipelines.standardize.owner import standardize_owner

        return standardize_owner(value)
    return text


def edit_leads(store: LeadStore, edits: pd.DataFrame | Sequence[Mapping[str, object]], by: str, note: str = "",
               origin: str = "edit") -> int:
    """edits: lead_id, field, value (and optionally `where`, how a message names the row), as a frame or as
    dicts. All are checked first; then all are applied in one transaction that reads and writes only the
    edited leads (their rows, overrides, history and outbox)."""
    rows = edits.to_dict("records") if hasattr(edits, "to_dict") else [dict(e) for e in edits]
    with store.exclusive(f"{origin} of {len({str(r['lead_id']) for r in rows})} lead(s)", atomic=True):
        return _edit_leads(store, rows, by, note, origin)


def _edit_leads(store: LeadStore, edits: list[dict], by: str, note: str, origin: str) -> int:
    active = {row["lead_id"] for row in store.lead_rows(sorted({str(e["lead_id"]) for e in edits}))
              if row["status"] == "active"}
    problems = []
    checked = []
    for edit in edits:
        lead, field = str(edit["lead_id"]), str(edit["field"])
        where = edit.get("where") or f"{lead} {field}"
        if lead not in active:
            problems.append(f"{where}: no active lead {lead}")
        elif field not in EDITABLE_FIELDS:
            problems.append(f"{where}: {field!r} cannot be edited (editable: {', '.join(EDITABLE_FIELDS)})")
        try:
            if origin == "restore" or field not in EDITABLE_FIELDS:  # values from our own history
                checked.append((lead, field, str(edit["value"])))
            else:
                checked.append((lead, field, standardized_value(field, str(edit["value"]))))
        except DecisionError as err:
            problems.append(f"{where}: {err}")
    if problems:
        raise DecisionError("; ".join(problems[:20]))
    return store.edit_fields(checked, by=by, note=note, origin=origin, moment=_now())
