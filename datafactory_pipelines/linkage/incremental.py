"""The incremental change path of linkage: which path a relink takes (incremental, bulk, full), and a
change's neighbourhood found in the store by key and linked with the stored model (cost follows the change).

Curation of the neighbourhood's leads is the caller's (curation.py); this module only links."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from datafactory_pipelines.linkage import (
    LinkageConfig,
    LinkModel,
    LinkResult,
)
from datafactory_pipelines.linkage.engine import (
    MIN_TRAINING_RECORDS,
    link_frame,
    link_neighbourhood,
)
from datafactory_pipelines.linkage.sql import rule_name, tf_bucket, tf_columns
from datafactory_pipelines.store import LeadStore

if TYPE_CHECKING:
    from datafactory_pipelines.phases import PhaseTimer

log = logging.getLogger(__name__)

# An import adding at least this share of the records already linked is linked in one full pass:
# then the neighbourhood is most of the base, and one pass over everything is cheaper.
BULK_SHARE = 0.5


def _nothing_linked(model: LinkModel, relinked: np.ndarray | None) -> LinkResult:
    """The link of no records: every import undone (a full pass), or a change that only removed records."""
    return LinkResult(pd.DataFrame({"record_id": pd.Series(dtype="int64"), "cluster_id": pd.Series(dtype="int64")}),
                      pd.DataFrame(columns=["id_l", "id_r", "match_weight", "match_probability"]), model,
                      relinked=relinked, shared_keys=pd.DataFrame(columns=["kind", "value", "n_records", "n_names"]))


def _outgrown(model: LinkModel, records: int) -> bool:
    trained = int(model.trained_on.get("records", 0))
    if model.trained_on.get("source") == "sample":  # the shipped cold-start model
        return records >= MIN_TRAINING_RECORDS
    return records >= 2 * trained


def _choose_path(full: bool, retrain: bool, model: LinkModel | None, state: dict, queue: pd.DataFrame,
                 values_version: str) -> tuple[str, str]:
    """Which path a relink takes (incremental, bulk or full), and why. values_version: the version of the
    link values this code computes (pipeline._values_version), against the one the store's were made with."""
    added = int((queue["change"] == "added").sum()) if len(queue) else 0
    base = int(state["active_records"]) - added
    if full:
        return "full", "asked for"
    if retrain:
        return "full", "retraining the model"
    if model is None:
        return "full", "no model yet"
    if _outgrown(model, int(state["active_records"])):
        return "full", "the store has doubled since the model was trained"
    if state["link_values"] != values_version and int(state["any_linked"]):
        return "full", "the store's link values are from another linkage config (or an older version)"
    if added >= BULK_SHARE * max(base, 1):
        return "bulk", f"{added} new records against {base} linked ones"
    return "incremental", f"{added} new records, {len(queue) - added} other changes"


@dataclass
class LinkedNeighbourhood:
    """A change's neighbourhood, linked: what its curation needs (curation.CurateRequest takes these)."""

    records: pd.DataFrame  # every record of the neighbourhood (`record_columns`), with its lead as stored
    link: LinkResult
    scope: set[str]  # the leads the change may alter
    removed_mobiles: frozenset[str]
    counters: pd.DataFrame | None  # (col, value, n_records, n_names) of the values its records carry
    shared_values: pd.DataFrame  # kind, value: the shared_contacts rows the change replaces


def link_change(store: LeadStore, config: LinkageConfig, model: LinkModel, state: dict, queue: pd.DataFrame,
                timer: PhaseTimer, record_columns: list[str], curate_fresh: Collection[str] = ()
                ) -> LinkedNeighbourhood:
    """Find and link a change's neighbourhood, looked up in the store by key.

    The neighbourhood is found with narrow lookups (record ids, lead ids, the counters of the values
    the change touches); only its records come out of the store whole, once (`record_columns` of them).
    curate_fresh: leads rebuilt after an undo, in the neighbourhood whatever they share.
    """
    timer.phase("neighbourhood")
    removed = queue[queue["change"] == "removed"]
    dirty = set(queue["lead_id"].dropna()) | set(curate_fresh)
    added = queue.loc[queue["change"] == "added", "record_id"].astype("int64").tolist()
    counts = _value_counts(store, config, removed, added)
    # the new records' candidates: every record in one of their blocks (a block too big to compare gives none)
    blocks = counts[counts["col"].isin(_rule_names(config)) & counts["carried_by_new"]
                    & (counts["now"] <= config.max_block_size)]
    keys = pd.concat([blocks[["col", "value"]], counts.loc[counts["moved"], ["col", "value"]]],
                     ignore_index=True).drop_duplicates()
    sharing = store.records_sharing(keys) if len(keys) else pd.DataFrame(columns=["record_id", "lead_id"])
    leads = set(sharing["lead_id"].dropna()) | dirty
    loose = set(sharing.loc[sharing["lead_id"].isna(), "record_id"].astype("int64")) | set(added)
    gone = removed["record_id"].dropna().astype("int64").unique().tolist()
    if gone:  # components the removed records held together are decided again as a whole
        via = store.links_touching(gone)
        ends = (set(via["id_l"].astype("int64")) | set(via["id_r"].astype("int64"))) - set(gone)
        reached = store.record_leads_of(sorted(ends), []) if ends else pd.DataFrame(columns=["lead_id"])
        leads |= set(reached["lead_id"].dropna())
    # clusters split earlier come back whole: follow the stored links to every cluster they reach (each
    # round looks up only the leads and records it added, and the links of their records)
    ids: set[int] = set()
    more_loose, more_leads = set(loose), set(leads)
    while more_loose or more_leads:
        members = store.record_leads_of(sorted(more_loose), sorted(more_leads))
        found = set(members["record_id"].astype("int64")) - ids
        ids |= found
        links = store.links_touching(sorted(found)) if found else pd.DataFrame(columns=["id_l", "id_r"])
        beyond = (set(links["id_l"].astype("int64")) | set(links["id_r"].astype("int64"))) - ids
        if not beyond:
            break
        reached = store.record_leads_of(sorted(beyond), [])
        more_leads = set(reached["lead_id"].dropna()) - leads
        more_loose = set(reached.loc[reached["lead_id"].isna(), "record_id"].astype("int64")) - loose
        leads |= more_leads
        loose |= more_loose
    records = store.linkage_records_of(sorted(ids), [], columns=record_columns)
    stats = None
    if records.empty:  # nothing left to link: the change only removed records
        link = _nothing_linked(model, relinked=np.zeros(0, dtype=np.int64))
    else:
        timer.phase("link", f"{len(added)} new records, {len(records)} in their neighbourhood")
        stats = store.neighbourhood_stats(records["record_id"].astype("int64").tolist())
        apart = store.kept_apart_pairs(sorted(leads))  # the same lookup as the full pass's, by lead
        together = store.kept_together_pairs(sorted(leads))  # pairs people said are one person
        link = link_neighbourhood(link_frame(records), config, model, stats, _population(model, state), apart,
                                  together)
        link.relinked = np.union1d(link.relinked, removed["record_id"].dropna().astype("int64").unique())
    # the shared contacts of every value the change touched, as the store's counters have them now
    touched = counts.loc[counts["col"].isin(config.key_stats)]
    shared = touched[(touched["now"] > 0) & (touched["names_now"] > 2)].rename(
        columns={"col": "kind", "now": "n_records", "names_now": "n_names"})[["kind", "value", "n_records", "n_names"]]
    link.shared_keys = shared.sort_values(["n_records", "kind", "value"], ascending=[False, True, True],
                                          ignore_index=True)
    removed_mobiles = frozenset(removed.loc[removed["col"] == "mobile", "value"].dropna())
    # the state the plan read: this change has written nothing since (one transaction)
    return LinkedNeighbourhood(records, link, set(leads), removed_mobiles, stats,
                               touched.rename(columns={"col": "kind"})[["kind", "value"]])


def _rule_names(config: LinkageConfig) -> set[str]:
    return {rule_name(rule) for rule in config.blocking}


def _value_counts(store: LeadStore, config: LinkageConfig, removed: pd.DataFrame, added: list[int]) -> pd.DataFrame:
    """Every value the change adds or removes, counted before and after it: col, value, now, before,
    names_now, carried_by_new, and `moved` where the change alters what linking makes of the value (its
    term frequency bucket, how many names carry it, or whether its block is too big to compare).

    `now` comes from the store's counters (kept on write); `before` is now minus what the change added
    plus what it removed, per value and per surname, so nothing is counted over the base.
    """
    # a record added and removed again before it was linked was never counted "before"
    removed = removed[~removed["record_id"].isin(added)]
    out = store.change_counts(added, removed)  # per value, the surnames' counts taken into account in SQL
    if out.empty:
        return pd.DataFrame({"col": pd.Series(dtype=object), "value": pd.Series(dtype=object),
                             "now": pd.Series(dtype="int64"), "before": pd.Series(dtype="int64"),
                             "names_now": pd.Series(dtype="int64"), "carried_by_new": pd.Series(dtype=bool),
                             "moved": pd.Series(dtype=bool)})
    out = out.rename(columns={"n_records": "now", "n_names": "names_now"})
    out["before"] = out["now"] - out["n_added"] + out["n_removed"]
    names_before = out["names_now"] - out["appeared"] + out["vanished"]
    out["carried_by_new"] = out["n_added"] > 0
    tf = out["col"].isin(tf_columns(config))
    moved = tf & (tf_bucket(out["now"].to_numpy()) != tf_bucket(out["before"].to_numpy()))
    moved |= out["col"].isin(config.key_stats) & (out["names_now"] != names_before)
    big = config.max_block_size
    moved |= out["col"].isin(_rule_names(config)) & ((out["now"] > big) != (out["before"] > big))
    out["moved"] = moved.to_numpy()
    return out[["col", "value", "now", "before", "names_now", "carried_by_new", "moved"]]


def _population(model: LinkModel, state: dict) -> int:
    trained = int(model.trained_on.get("records", 0))
    return max(trained, 1) if trained else max(int(state["active_records"]), 1)
