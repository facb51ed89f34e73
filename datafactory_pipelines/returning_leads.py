"""A lead retired by an undo comes back with its own id when its records come back.

After linking, each cluster that would get a brand-new lead id is checked: when its new records are copies
of records that first made a lead now retired (the same rows of the same file, imported again after the
undo: `LeadStore.returning_leads`), the cluster takes that lead's id back instead. A cluster already
holding a live lead keeps that lead, and each retired id is given back once.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.survivorship import lead_number


def give_back_ids(store: LeadStore, record_leads: pd.DataFrame, next_number: int) -> pd.DataFrame:
    """record_leads: record_id, lead_id as assigned; ids numbered from next_number are new. Returns the same
    frame with new ids replaced by the retired ids their records bring back."""
    if record_leads.empty:
        return record_leads
    numbers = pd.Series([lead_number(str(lead)) if isinstance(lead, str) else -1 for lead in record_leads["lead_id"]],
                        index=record_leads.index)
    fresh = record_leads[numbers >= next_number]
    if fresh.empty:
        return record_leads
    hints = store.returning_leads(sorted(fresh["record_id"].astype(int)))
    if not hints:
        return record_leads
    taken: set[str] = set()
    back: dict[str, str] = {}
    for new_id, group in fresh.groupby("lead_id", sort=True):
        votes = Counter(hints[r] for r in group["record_id"].astype(int) if r in hints)
        for old_id, _ in votes.most_common():
            if old_id not in taken:
                back[str(new_id)] = old_id
                taken.add(old_id)
                break
    if not back:
        return record_leads
    return record_leads.assign(lead_id=record_leads["lead_id"].map(lambda lead: back.get(lead, lead)))
