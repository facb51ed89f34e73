"""Curation: lead ids for the linked clusters, golden records (survivorship in the store's SQL), conflicts
and held values, provenance, and the one write of the result (LeadChanges) with its history."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Collection
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines import duckdb_settings
from datafactory_pipelines.conflicts import hold_and_detect, keep_held_mobiles_primary, release_held_values
from datafactory_pipelines.fields import LEAD_COLUMNS
from datafactory_pipelines.linkage import (
    LinkResult,
)
from datafactory_pipelines.linkage.engine import accepted as linkage_accepted
from datafactory_pipelines.phases import PhaseTimer
from datafactory_pipelines.returning_leads import give_back_ids
from datafactory_pipelines.store import LeadChanges, LeadStore
from datafactory_pipelines.survivorship import assign_lead_ids, content_hash, provenance_array
from datafactory_pipelines.survivorship_sql import CURATED_COLUMNS, RULE_FIELDS

log = logging.getLogger(__name__)


# what provenance and conflicts say about the record behind a golden value
RECORD_FACTS = ["import_time", "import_id", "source", "source_file", "source_row", "collected_at"]
CURATE_COLUMNS = ["mobile", "landline", *RECORD_FACTS]
# every record column curate_change reads (a full pass reads only these of the base)
CURATE_READS = ["record_id", "lead_id", "reachable", *CURATE_COLUMNS]
# what the change path reads of its leads as stored: not their provenance, the biggest column, which only
# a lead retired by the change carries over (read then for those few)
KNOWN_LEAD_READS = [c for c in LEAD_COLUMNS if c != "provenance"]


@dataclass
class CurateOutcome:
    link: LinkResult
    changes: LeadChanges
    records_linked: int
    duplicates_found: int  # records that joined another record's lead
    active_leads: int
    merges: dict[str, str] = field(default_factory=dict)
    path: str = "full"  # incremental (the change's neighbourhood) | full (asked for) | bulk (a big import)
    reason: str = ""  # why that path
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


def curate(store: LeadStore, records: pd.DataFrame, link: LinkResult, actor: str = "datafactory",
           cause: str = "", action: str = "import", curate_fresh: Collection[str] = ()) -> CurateOutcome:
    """Assign stable lead ids to clusters, build golden records, write what changed in one transaction.

    `records` and `link` cover the whole store (a full link); `relink_and_curate` is the way to bring
    leads up to date after a change, and curates only the leads the change touched.
    curate_fresh: leads rebuilt after an undo. Their stored values are not held against their records
    (see conflicts.release_held_values): only hand-set overrides and still-open conflicts hold.
    """
    return curate_change(store, CurateRequest(records, link, actor=actor, cause=cause, action=action,
                                              curate_fresh=curate_fresh))


@dataclass
class CurateRequest:
    """One curation: the records of the leads concerned, their link, and what the write says about it."""

    records: pd.DataFrame | None  # every record of the leads concerned, with its current lead_id (curate_change
    # takes it out of the request, so that a full pass's frame is let go before the write)
    link: LinkResult
    scope: set[str] | None = None  # None: every lead (a full pass); else these and the leads of `records`
    actor: str = "datafactory"
    cause: str = ""  # "": the imports whose records are linked for the first time
    action: str = "import"
    removed_mobiles: frozenset[str] = frozenset()  # mobiles the change took away (their leads are curated too)
    switchboards: set[str] | None = None  # landlines more than two surnames carry (looked up when None)
    timer: PhaseTimer | None = None
    curate_fresh: Collection[str] = ()  # leads rebuilt after an undo (see `curate`)
    state: dict | None = None  # the store's change_path_state() as this change found it (read when None)
    # (col, value, n_records, n_names) of values the records carry, as the store counts them now (the
    # neighbourhood's, already read to link it): the switchboards are found there before asking the store
    counters: pd.DataFrame | None = None
    change_fields: dict[str, Any] = field(default_factory=dict)  # more LeadChanges fields the write carries
    # the accepted pairs as match_links rows (the caller's `accepted_links`, which a test may watch)
    match_links: Callable[[LinkResult], pd.DataFrame] | None = None


def curate_change(store: LeadStore, request: CurateRequest) -> CurateOutcome:
    """Curate the leads of the request's records (all leads when its scope is None; else those and the leads
    in scope), and write the result in one change."""
    records, request.records = request.records, None
    link, scope, actor, cause, action = request.link, request.scope, request.actor, request.cause, request.action
    removed_mobiles, switchboards, curate_fresh = request.removed_mobiles, request.switchboards, request.curate_fresh
    counters, change_fields = request.counters, request.change_fields
    timer = request.timer or PhaseTimer()
    state = request.state
    timer.phase("lead ids")
    state = state or store.change_path_state()
    record_ids = records["record_id"].to_numpy()
    previous = pd.Series(records["lead_id"].to_numpy(), index=record_ids)
    fresh = records["lead_id"].isna().to_numpy() & records["reachable"].astype(bool).to_numpy()
    derived_cause = not cause
    if derived_cause:  # the imports whose records are linked for the first time
        cause = ",".join(sorted(set(records.loc[fresh, "import_id"])))
    next_number = int(state["max_lead_number"]) + 1
    # a cluster needs one record that reaches the person; contactless records only join such clusters
    reachable = link.clusters["record_id"].map(pd.Series(records["reachable"].to_numpy(), index=record_ids)).fillna(
        False)
    with_contact = reachable.groupby(link.clusters["cluster_id"]).transform("any").astype(bool)
    record_leads, merges = assign_lead_ids(link.clusters[with_contact], previous, next_number)
    record_leads = give_back_ids(store, record_leads, next_number)  # records back after an undo: their lead's id
    # what curating reads of each record besides its lead (survivorship reads the rest in the store)
    linked = records[["record_id", *CURATE_COLUMNS]].merge(record_leads, on="record_id")
    set_aside = link.clusters.loc[~with_contact, ["record_id"]].assign(lead_id=None)
    record_leads = pd.concat([record_leads, set_aside], ignore_index=True)
    if scope is None:
        existing = store.leads(include_retired=True)
        shared = link.shared_keys
        switchboards = set(shared.loc[shared["kind"] == "landline", "value"])
    else:
        # a mobile two leads share stays primary where it is most used: the leads carrying the same
        # mobiles are curated too, so that choice is made with all of them (their records as they are)
        scope = scope | set(record_leads["lead_id"].dropna())
        mobiles = set(linked["mobile"].dropna()) | set(removed_mobiles)
        mobiles.discard("")
        neighbours = set(store.leads_carrying_mobiles(sorted(mobiles))) - scope if mobiles else set()
        if neighbours:
            more = store.linkage_records_of([], sorted(neighbours))
            linked = pd.concat([linked, more[["record_id", *CURATE_COLUMNS, "lead_id"]]], ignore_index=True)
        scope |= neighbours
        existing = store.leads_by_id(sorted(scope | set(merges)), columns=KNOWN_LEAD_READS)
        if switchboards is None:
            switchboards = _switchboards(store, set(linked["landline"].dropna()) - {""}, counters)
    timer.phase("golden records", f"{linked['lead_id'].nunique()} leads")
    golden = store.golden_records(linked[["record_id", "lead_id"]], switchboards)
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    now = moment.isoformat(timespec="microseconds")

    # a full pass's curation frames are big: DuckDB's cached blocks are let go while Python holds them
    # (restored before the write; an error rolls the change back and closes its connection)
    frames_budget = ExitStack()
    if scope is None:
        frames_budget.enter_context(store.memory_budget(duckdb_settings.FRAMES_MEMORY_LIMIT))
    timer.phase("conflicts")
    known = existing.set_index("lead_id")
    facts = linked[["record_id", *RECORD_FACTS]].set_index("record_id")
    lead_list = sorted(golden["lead_id"])
    overrides = store.overrides() if scope is None else store.overrides_for(lead_list)
    open_conflicts = store.conflicts(status="open") if scope is None else store.conflicts_for(lead_list, "open")
    chosen_mobile = golden["mobile"].fillna("").to_numpy(copy=True)
    new_conflicts = hold_and_detect(
        golden, release_held_values(known, curate_fresh, open_conflicts) if curate_fresh else known,
        overrides, open_conflicts, facts, moment, int(state["max_conflict_id"]) + 1)
    keep_held_mobiles_primary(golden, chosen_mobile)
    golden["content_hash"] = content_hash(golden)
    old_hash = known["content_hash"].reindex(golden["lead_id"]).to_numpy()
    old_status = known["status"].reindex(golden["lead_id"]).to_numpy()
    changed = (old_hash != golden["content_hash"].to_numpy()) | (old_status != "active")
    # provenance, bookkeeping and (in the store) history only for the leads that changed
    upserts = golden.loc[changed, CURATED_COLUMNS + ["content_hash"]].reset_index(drop=True)
    chosen_records = golden.loc[changed, [f"{field}__record" for field in RULE_FIELDS]]  # all provenance reads
    # held as Arrow text (UTF-8 in one buffer), not Python strings: half the size (0.66 GB of str at 1M leads)
    upserts["provenance"] = pd.arrays.ArrowExtensionArray(provenance_array(chosen_records, facts, RULE_FIELDS))
    upserts["status"] = "active"
    upserts["merged_into"] = ""
    upserts["created_at"] = known["created_at"].reindex(upserts["lead_id"]).fillna(now).to_numpy()
    upserts["updated_at"] = now
    created = int(pd.isna(old_hash).sum())

    retired = known.loc[[lead for lead in merges if lead in known.index]].reset_index()
    if len(retired):
        retired["status"] = "merged"
        retired["merged_into"] = retired["lead_id"].map(merges)
        retired["updated_at"] = now
    # a lead none of whose records is left (its import was undone) is retired, never deleted
    orphaned = known[(known["status"] == "active") & ~known.index.isin(golden["lead_id"])
                     & ~known.index.isin(list(merges))].reset_index()
    if len(orphaned):
        orphaned["status"] = "retired"
        orphaned["updated_at"] = now
    if "provenance" not in known.columns and (len(retired) or len(orphaned)):  # read without it: theirs now
        stored = store.leads_by_id(sorted({*retired["lead_id"], *orphaned["lead_id"]}), columns=["lead_id", "provenance"])
        kept = stored.set_index("lead_id")["provenance"]
        retired["provenance"] = retired["lead_id"].map(kept)
        orphaned["provenance"] = orphaned["lead_id"].map(kept)
    if len(retired):
        upserts = pd.concat([upserts, retired[upserts.columns]], ignore_index=True)
    if len(orphaned):
        upserts = pd.concat([upserts, orphaned[upserts.columns]], ignore_index=True)
    active_now = len(golden)
    # the whole-base frames curating built are not needed by the write: freed before it allocates its own
    # (at 1M records they hold ~2 GB; the write phase set the base import's peak)
    # the records too (the caller of a full pass keeps no reference): the write needs only the new records' imports
    fresh_imports = records.loc[fresh, ["record_id", "import_id"]].astype({"import_id": "category"}) \
        if derived_cause else None
    del golden, linked, facts, known, existing, records, previous  # previous: a view of the records
    # the accepted pairs with their contributions: made from the linkage, a phase of its own before the write
    timer.phase("match links")
    match_links = (request.match_links or accepted_links)(link)
    frames_budget.close()
    timer.phase("write", f"{len(upserts)} leads changed")
    # each lead's history names the imports whose new records it took (a bulk import of 100 files
    # must not write all 100 ids into every row); a lead changed without new records: the change's imports
    lead_causes = _lead_causes(fresh_imports, record_leads) if fresh_imports is not None else None
    changes = LeadChanges(record_leads=record_leads, upserts=upserts,
                          shared_contacts=link.shared_keys, link_model=link.model.to_json(),
                          match_links=match_links,
                          relinked=None if link.relinked is None else [int(x) for x in link.relinked],
                          new_conflicts=new_conflicts, action=action, actor=actor, cause=cause, created=created,
                          updated=int(changed.sum()) - created, merged=len(merges), lead_causes=lead_causes,
                          **change_fields)
    # a full pass's write under a lower DuckDB cap too: the frames above are still resident beside it
    with store.memory_budget(duckdb_settings.WRITE_MEMORY_LIMIT) if scope is None else nullcontext():
        store.apply_lead_changes(changes)
    timer.stop()
    active = active_now if scope is None else store.active_lead_count()
    return CurateOutcome(
        link=link, changes=changes, records_linked=len(record_leads),
        duplicates_found=int(record_leads["lead_id"].notna().sum()) - record_leads["lead_id"].nunique(),
        active_leads=active, merges=merges, timings=timer.timings,
    )


def _lead_causes(fresh: pd.DataFrame, record_leads: pd.DataFrame) -> pd.Series:
    """lead_id -> the ids of the imports (comma-joined, sorted) whose newly linked records the lead holds.
    Done on integer codes (a 1M-record base import: 1M records, 100 imports, 400k leads), one join per lead."""
    linked = record_leads.dropna(subset=["lead_id"])
    position = pd.Index(linked["record_id"].to_numpy()).get_indexer(fresh["record_id"].to_numpy())
    found = position >= 0
    lead_codes, leads = pd.factorize(linked["lead_id"].to_numpy()[position[found]], sort=True)
    import_codes, imports = pd.factorize(fresh["import_id"].to_numpy()[found], sort=True)
    if not len(lead_codes):
        return pd.Series([], index=pd.Index([], name="lead_id"), name="import_id", dtype=object)
    # one key per (lead, import) pair, sorted: by lead id, then by import id (both coded in sorted order)
    pairs = np.unique(lead_codes.astype(np.int64) * len(imports) + import_codes)
    lead_of_pair, import_of_pair = np.divmod(pairs, len(imports))
    names = [str(name) for name in imports[import_of_pair]]
    bounds = [0, *(np.flatnonzero(np.diff(lead_of_pair)) + 1).tolist(), len(pairs)]
    causes = [names[start] if end - start == 1 else ",".join(names[start:end])
              for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
    return pd.Series(causes, index=pd.Index(leads[lead_of_pair[bounds[:-1]]], name="lead_id"), name="import_id",
                     dtype=object)


def accepted_links(link: LinkResult) -> pd.DataFrame:
    """The pairs that were linked, with each comparison's share of the match weight (as JSON)."""
    pairs = link.pairs[linkage_accepted(link.pairs, link.threshold)]
    return pd.DataFrame({"record_l": pairs["id_l"].astype("int64"), "record_r": pairs["id_r"].astype("int64"),
                         "match_weight": pairs["match_weight"].astype(float),
                         "match_probability": pairs["match_probability"].astype(float),
                         "contributions": contributions_json(pairs)})


def contributions_json(pairs: pd.DataFrame) -> np.ndarray:
    """Per pair, the JSON object json.dumps writes for {comparison: round(weight, 2), …} (zero weights
    left out), from the `w_<comparison>` columns.

    Built a column at a time in Arrow: a comparison's weights take a few distinct values (one per level
    and term-frequency bucket), so each distinct weight is written once and its text taken per pair."""
    parts = []
    for column in [c for c in pairs.columns if c.startswith("w_")]:
        key = json.dumps(column[2:], ensure_ascii=False) + ": "
        distinct, where = np.unique(pairs[column].to_numpy(dtype=float), return_inverse=True)
        # each part carries its ", " in front (the first one is cut off below); a zero weight is ""
        texts = pa.array([", " + key + _json_number(round(v, 2)) if v else "" for v in distinct.tolist()], pa.string())
        parts.append(texts.take(pa.array(where.reshape(-1), pa.int64())))
    if not parts:
        return np.full(len(pairs), "{}", dtype=object)
    body = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*parts, ""), 2)
    return np.asarray(pc.binary_join_element_wise("{", body, "}", "").to_numpy(zero_copy_only=False), dtype=object)


def _json_number(value: float) -> str:
    return repr(value) if math.isfinite(value) else json.dumps(value)  # json.dumps writes a float's repr


def _switchboards(store: LeadStore, landlines: set[str], counters: pd.DataFrame | None) -> set[str]:
    """The landlines among these that more than two surnames carry (the store's counters): taken from
    `counters` where they are there, the rest looked up in the store."""
    counted = pd.DataFrame({"value": pd.Series(dtype=object), "n_names": pd.Series(dtype="int64")})
    if counters is not None and len(counters):
        counted = counters.loc[(counters["col"] == "landline") & counters["value"].isin(landlines), ["value", "n_names"]]
    missing = sorted(landlines - set(counted["value"]))
    if missing:
        looked_up = store.value_stats(pd.DataFrame({"col": "landline", "value": missing}))
        counted = pd.concat([counted, looked_up[["value", "n_names"]]], ignore_index=True)
    return set(counted.loc[counted["n_names"] > 2, "value"])
