"""Conflicts between an import and the golden record, and the operators' decisions on them.

When survivorship would change a field the policy (`survivorship.yaml: conflicts`) says an operator
must decide, the lead keeps its current value and a conflict is recorded. Conflicts are grouped by
field, kind of difference, source and import, so an operator decides once per group. Decisions and
one-to-one edits are kept as overrides (who, when, why); an override holds until newer data brings a
different value, which raises a new conflict (or, for fields without a policy, simply wins).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime

import numpy as np
import pandas as pd

from datafactory_pipelines.fields import CONTACT_COLUMNS, EDITABLE_FIELDS
from datafactory_pipelines.standardize.company import (
    CompanyResult,
    standardize_companies,
    standardize_company,
)
from datafactory_pipelines.store.schema import CONFLICT_COLUMNS
from datafactory_pipelines.survivorship import survivorship_rules

__all__ = ["EDITABLE_FIELDS"]
DECISIONS = {"current": "保留现有", "incoming": "采用新值", "both": "两者都保留", "per_row": "逐条决定"}
DECISION_OF_LABEL = {label: key for key, label in DECISIONS.items()} | {key: key for key in DECISIONS}


def conflict_policy() -> dict[str, str]:
    return survivorship_rules().get("conflicts", {})


def group_id(field: str, kind: str, source: str, import_id: str) -> str:
    digest = hashlib.sha1(f"{field}|{kind}|{source}|{import_id}".encode()).hexdigest()[:8]
    return f"G-{digest}"


def kind_of(field: str) -> str:
    return "both valid" if field in CONTACT_COLUMNS else "value differs"


def hold_and_detect(golden: pd.DataFrame, known: pd.DataFrame, overrides: pd.DataFrame, open_conflicts: pd.DataFrame,
                    facts: pd.DataFrame, now: datetime, next_conflict_id: int) -> pd.DataFrame:
    """Apply overrides and the conflict policy to freshly computed golden records, in place.

    golden: survivorship's values, with `<field>__record` naming the record behind each value.
    known: the stored leads, indexed by lead_id. overrides: the latest override per (lead_id, field).
    facts: import_time, import_id and source of those records, indexed by record_id.
    Only leads whose stored value differs from the new one (or that carry an override) are looked at.
    Returns the new conflicts.
    """
    policy = conflict_policy()
    override = overrides.set_index(["lead_id", "field"]) if len(overrides) else None
    pinned_leads = {field: set(group["lead_id"]) for field, group in overrides.groupby("field")} \
        if len(overrides) else {}
    waiting = set(zip(open_conflicts["lead_id"], open_conflicts["field"], open_conflicts["incoming_value"],
                      strict=True)) if len(open_conflicts) else set()
    held = {(lead, field) for lead, field in zip(open_conflicts["lead_id"], open_conflicts["field"], strict=True)} \
        if len(open_conflicts) else set()
    new = []
    active = known[known["status"] == "active"] if len(known) else known
    keys: dict[str, str] = {}
    if len(active) and "company" in active:  # the spellings that may be compared below, keyed in one call
        stored_company = active["company"].reindex(golden["lead_id"]).fillna("").to_numpy()
        new_company = golden["company"].fillna("").to_numpy()
        differ = stored_company != new_company
        keys = company_keys(stored_company[differ], new_company[differ])
    for field in EDITABLE_FIELDS:
        # only leads whose stored value differs, or that carry an override, need a look
        stored = active[field].reindex(golden["lead_id"]).fillna("").to_numpy() if len(active) else \
            np.full(len(golden), "", dtype=object)
        values = golden[field].fillna("").to_numpy()
        differs = (stored != values) & (stored != "") & (values != "")
        if field in pinned_leads:
            differs |= golden["lead_id"].isin(pinned_leads[field]).to_numpy()
        records = golden[field + "__record"].to_numpy() if field + "__record" in golden else \
            np.full(len(golden), None, dtype=object)
        for i in np.flatnonzero(differs):
            lead = golden.at[i, "lead_id"]
            incoming = golden.at[i, field]
            record = None if pd.isna(records[i]) else int(records[i])
            pinned = override is not None and (lead, field) in override.index
            if pinned:
                row = override.loc[(lead, field)]
                base = row["value"]
                newer = record is not None and record in facts.index \
                    and pd.Timestamp(facts.at[record, "import_time"]) > pd.Timestamp(row["decided_at"])
                if not newer or incoming == base or incoming == "":
                    golden.at[i, field] = base
                    continue
            elif lead in active.index:
                base = active.at[lead, field]
            else:
                continue
            if policy.get(field) != "ask" or base in ("", None) or incoming in ("", None) or incoming == base:
                continue
            if same_entity(field, base, incoming, keys):  # "星海科技" -> "深圳星海科技有限公司": fuller
                continue
            golden.at[i, field] = base  # the lead keeps its value until an operator decides
            if (lead, field, incoming) in waiting or (lead, field) in held:
                continue
            known_record = record is not None and record in facts.index
            source = (facts.at[record, "source"] or "") if known_record else ""
            import_id = facts.at[record, "import_id"] if known_record else ""
            kind = kind_of(field)
            new.append({"group_id": group_id(field, kind, source, import_id), "lead_id": lead, "field": field,
                        "kind": kind, "current_value": base, "incoming_value": incoming,
                        "incoming_record": record, "source": source, "import_id": import_id, "status": "open",
                        "created_at": now, "decided_by": None, "decided_at": None, "decision": None})
    conflicts = pd.DataFrame(new, columns=[c for c in CONFLICT_COLUMNS if c != "conflict_id"])
    conflicts.insert(0, "conflict_id", range(next_conflict_id, next_conflict_id + len(conflicts)))
    return conflicts


def keep_held_mobiles_primary(golden: pd.DataFrame, chosen_mobile: np.ndarray) -> None:
    """A primary mobile names one lead, also when a conflict holds it: in place on `golden`.

    chosen_mobile: survivorship's mobile per row, before `hold_and_detect`. When a lead's records moved
    to another lead (a split, an undo) and its stored mobile is held for an operator to decide, the
    other lead may have chosen the same mobile; until the decision the held lead keeps it as primary
    and the other keeps it as its first alternate (nothing is lost, one lead per primary mobile).
    """
    mobile = golden["mobile"].fillna("").to_numpy()
    held = (mobile != np.asarray(chosen_mobile, dtype=object)) & (mobile != "")
    if not held.any():
        return
    demote = np.isin(mobile, mobile[held]) & ~held
    for i in np.flatnonzero(demote):
        alternates = [m for m in str(golden.at[i, "mobile_alternates"] or "").split(";") if m and m != mobile[i]]
        golden.at[i, "mobile_alternates"] = ";".join([mobile[i], *alternates])
        golden.at[i, "mobile"] = ""


def release_held_values(known: pd.DataFrame, lead_ids: Collection[str], open_conflicts: pd.DataFrame) -> pd.DataFrame:
    """The stored leads as `hold_and_detect` should see them when `lead_ids` are rebuilt after an undo.

    A stored value of those leads is what the undone import helped choose, so it is not held against
    their records: the lead is curated fresh. Only a value a still-open conflict holds stays held
    (hand-set overrides hold anyway, in hold_and_detect).
    """
    rebuilt = known.index.intersection(pd.Index(list(lead_ids)))
    if rebuilt.empty:
        return known
    known = known.copy()
    known.loc[rebuilt, EDITABLE_FIELDS] = ""
    still_held = open_conflicts[open_conflicts["lead_id"].isin(rebuilt)] if len(open_conflicts) else open_conflicts
    for lead, field, current in zip(still_held.get("lead_id", []), still_held.get("field", []),
                                    still_held.get("current_value", []), strict=True):
        if field in EDITABLE_FIELDS:
            known.at[lead, field] = current
    return known


def same_entity(field: str, current: str, incoming: str, company_keys: dict[str, str] | None = None) -> bool:
    """Two spellings of one company are not a conflict (广州光正机械有限公司 / 光正 / its English name); a branch
    is not its parent. company_keys: keys known already (by spelling)."""
    if field == "company":
        keys = company_keys or {}
        current_key = keys[current] if current in keys else _entity(standardize_company(current))
        incoming_key = keys[incoming] if incoming in keys else _entity(standardize_company(incoming))
        return current_key == incoming_key
    return False


def company_keys(*columns: object) -> dict[str, str]:
    """Each distinct company spelling -> its entity key, standardized in one call."""
    spellings = sorted({str(v) for column in columns for v in column if isinstance(v, str) and v})
    if not spellings:
        return {}
    frame = standardize_companies(spellings)
    # the company a spelling names (short, brand, city in brackets, English are one; a branch is its own)
    entity = frame["company_entity"].where(frame["company_entity"] != "", frame["company_key"])
    return dict(zip(spellings, entity, strict=True))


def _entity(company: CompanyResult) -> str:
    return company.entity or company.key


def conflict_groups(conflicts: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Open conflicts per group: count, oldest, and a few examples."""
    if conflicts.empty:
        return pd.DataFrame(columns=["group_id", "field", "kind", "source", "import_id", "count", "oldest",
                                     "examples"])
    grouped = conflicts.groupby(["group_id", "field", "kind", "source", "import_id"], dropna=False)
    table = grouped.agg(count=("conflict_id", "size"), oldest=("created_at", "min")).reset_index()
    examples = grouped.apply(lambda g: "; ".join(f"{c} → {i}" for c, i in zip(
        g["current_value"].head(3), g["incoming_value"].head(3), strict=True)), include_groups=False)
    table["examples"] = examples.to_numpy()
    return table.sort_values(["count", "group_id"], ascending=[False, True], ignore_index=True)


def decided_value(decision: str, current: str, incoming: str) -> str:
    """The value a decision keeps. 'both' keeps the current value; for contacts the incoming one stays
    among the lead's alternates, for other fields it stays in the source records."""
    return incoming if decision == "incoming" else current
