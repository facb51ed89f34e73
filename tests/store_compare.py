"""Comparing two lead stores by what they say about people, not by their ids.

Lead ids depend on the order leads were made, so a lead is named by its records: the set of
(source file, sheet, source row) it holds.
"""

from __future__ import annotations

import pandas as pd

from datafactory_pipelines.conflicts import EDITABLE_FIELDS

GOLDEN_FIELDS = [*EDITABLE_FIELDS, "mobile_alternates", "mobile_suspected_typos", "email_alternates", "landline_type",
                 "province", "city", "district", "source", "first_seen", "last_seen", "record_count"]


def lead_keys(store) -> pd.Series:
    """lead_id -> the sorted tuple of (file, sheet, row) of its live records."""
    links = store.links()
    records = store.records_for_linkage()[["record_id"]]
    live = links[links["record_id"].isin(records["record_id"]) & links["lead_id"].notna()]
    return live.groupby("lead_id").apply(
        lambda g: tuple(sorted(zip(g["source_file"], g["sheet"].astype(str), g["source_row"].astype(int),
                                   strict=True))), include_groups=False)


def leads_by_records(store) -> pd.DataFrame:
    """Active leads indexed by their records, with every golden field."""
    leads = store.leads().set_index("lead_id")
    keys = lead_keys(store)
    table = leads[GOLDEN_FIELDS].astype(str).assign(records=keys.reindex(leads.index))
    return table.set_index("records").sort_index()


def differing_leads(a, b) -> pd.DataFrame:
    """Rows (one per person) where the two stores disagree: a missing lead or a different field."""
    left, right = leads_by_records(a), leads_by_records(b)
    joined = left.join(right, how="outer", lsuffix="_a", rsuffix="_b")
    differs = pd.Series(False, index=joined.index)
    for field in GOLDEN_FIELDS:
        differs |= joined[f"{field}_a"].fillna("<none>") != joined[f"{field}_b"].fillna("<none>")
    return joined[differs]


def open_conflicts_by_records(store) -> set[tuple]:
    keys = lead_keys(store)
    conflicts = store.conflicts()
    return {(keys.get(c.lead_id), c.field, c.kind, c.current_value, c.incoming_value)
            for c in conflicts.itertuples()}
