"""The import path shared by the Dagster assets, the CLI and the tests.

read_import -> standardize -> save (one transaction) -> link all records -> curate golden leads
(one transaction). Each step is a plain function; assets call them one per asset, the CLI in a row.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from itertools import chain, islice
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines import CANONICAL_FIELDS, duckdb_settings
from datafactory_pipelines.conflicts import hold_and_detect, keep_held_mobiles_primary, release_held_values
from datafactory_pipelines.fields import LEAD_COLUMNS
from datafactory_pipelines.ingest import IngestError, RawImport, read_file
from datafactory_pipelines.linkage import (
    LinkageConfig,
    LinkModel,
    LinkResult,
    link_records,
    link_table,
    load_config,
)
from datafactory_pipelines.linkage.engine import (
    LEAD_LINK_COLUMNS,
    MIN_TRAINING_RECORDS,
    default_model,
    link_frame,
    link_neighbourhood,
    link_values,
)
from datafactory_pipelines.linkage.sql import link_values_sql, rule_name, tf_bucket, tf_columns, value_columns
from datafactory_pipelines.returning_leads import give_back_ids
from datafactory_pipelines.standardize import standardize_frame
from datafactory_pipelines.store import DuplicateImportError, ImportMeta, LeadChanges, LeadStore
from datafactory_pipelines.survivorship import assign_lead_ids, content_hash, provenance_array
from datafactory_pipelines.survivorship_sql import CURATED_COLUMNS, RULE_FIELDS

_UNSAFE = re.compile(r"[^\w.-]+")
log = logging.getLogger(__name__)
# An import adding at least this share of the records already linked is linked in one full pass:
# then the neighbourhood is most of the base, and one pass over everything is cheaper.
BULK_SHARE = 0.5
# what provenance and conflicts say about the record behind a golden value
RECORD_FACTS = ["import_time", "import_id", "source", "source_file", "source_row", "collected_at"]
CURATE_COLUMNS = ["mobile", "landline", *RECORD_FACTS]
# every record column _curate reads (a full pass reads only these of the base)
CURATE_READS = ["record_id", "lead_id", "reachable", *CURATE_COLUMNS]
# what the change path reads of its neighbourhood's records: linking's columns and curation's
NEIGHBOURHOOD_READS = list(dict.fromkeys([*LEAD_LINK_COLUMNS, *CURATE_READS]))
# what the change path reads of its leads as stored: not their provenance, the biggest column, which only
# a lead retired by the change carries over (read then for those few)
KNOWN_LEAD_READS = [c for c in LEAD_COLUMNS if c != "provenance"]


def import_id_for(file_name: str, sha256: str) -> str:
    """Stable id of one file's content: readable stem plus a short content hash."""
    stem = _UNSAFE.sub("_", Path(file_name).stem).strip("_.")[:40] or "file"
    return f"{stem}-{sha256[:10]}"


@dataclass
class PreparedImport:
    raw: RawImport
    records: pd.DataFrame  # raw (*_raw) + standardized columns, one row per data row

    @property
    def import_id(self) -> str:
        return import_id_for(self.raw.file_name, self.raw.sha256)

    @property
    def unreachable(self) -> pd.DataFrame:
        return self.records[~self.records["reachable"]]

    def meta(self, imported_by: str = "datafactory") -> ImportMeta:
        header_map: dict[str, str] = {}
        for sheet in self.raw.sheets:
            header_map.update(sheet.headers)
        return ImportMeta(
            import_id=self.import_id,
            file_name=self.raw.file_name,
            content_sha256=self.raw.sha256,
            sheets=[{"name": s.name, "header_row": s.header_row, "rows": s.rows_read,
                     "extra_columns": s.extra_headers, "columns": s.columns, "warnings": s.warnings, "notes": s.notes}
                    for s in self.raw.sheets]
            + [{"name": name, "hidden": True, "rows": 0, "skipped": "hidden sheet"} for name in self.raw.hidden_sheets],
            header_map=header_map,
            rows_read=self.raw.rows_read,
            rows_unreachable=int((~self.records["reachable"]).sum()),
            blank_rows=sum(s.blank_rows for s in self.raw.sheets),
            imported_by=imported_by,
        )


def standardize_import(raw: RawImport) -> PreparedImport:
    table = raw.table
    records = table[["sheet", "source_row", "extra"]].copy()
    for f in CANONICAL_FIELDS:
        records[f"{f}_raw"] = table[f].to_numpy()
    std = standardize_frame(table[list(CANONICAL_FIELDS)])
    for col in std.columns:
        records[col] = std[col].to_numpy()
    return PreparedImport(raw=raw, records=records)


def prepare_file(path: str | Path, home: str | Path | None = None) -> PreparedImport:
    """Read and standardize one file; `home` says whose pinned column mappings apply (default: the env's)."""
    return standardize_import(read_file(path, home=home))


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


class PhaseTimer:
    """Phase timings for the log (and the Dagster run, via the outcome); `progress` also tells a terminal."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._phase = ""
        self._started = time.perf_counter()

    def phase(self, name: str, detail: str = "") -> None:
        self.stop()
        self._phase, self._started = name, time.perf_counter()
        message = f"{name}{': ' + detail if detail else ''}"
        log.info(message)
        if self.progress:
            self.progress(message)

    def stop(self) -> None:
        if self._phase:
            took = time.perf_counter() - self._started
            self.timings[self._phase] = round(self.timings.get(self._phase, 0.0) + took, 3)
            if rss_gb() > RELEASE_ABOVE_GB:  # a big pass: worth a collection (it costs tenths of a second)
                release_memory()
            log.info("%s took %.2fs (RSS now %.2f GB, peak RSS so far %.2f GB)", self._phase, took, rss_gb(),
                     peak_rss_gb())
            self._phase = ""


#: above this resident size a phase's end gives freed memory back (a full pass); a change's phases skip it
RELEASE_ABOVE_GB = 2.0


def release_memory() -> None:
    """Give the frames a phase dropped back to the system before the next phase allocates its own: collect
    reference cycles, then ask glibc to return its free heap (freed pandas/Arrow buffers of a 1M-record pass
    otherwise stay in the process and add up to the next phase's peak)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def rss_gb() -> float:
    """This process's resident memory now (0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**3


def peak_rss_gb() -> float:
    """This process's peak resident memory so far (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


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


def curate(store: LeadStore, records: pd.DataFrame, link: LinkResult, actor: str = "datafactory",
           cause: str = "", action: str = "import", curate_fresh: Collection[str] = ()) -> CurateOutcome:
    """Assign stable lead ids to clusters, build golden records, write what changed in one transaction.

    `records` and `link` cover the whole store (a full link); `relink_and_curate` is the way to bring
    leads up to date after a change, and curates only the leads the change touched.
    curate_fresh: leads rebuilt after an undo. Their stored values are not held against their records
    (see conflicts.release_held_values): only hand-set overrides and still-open conflicts hold.
    """
    return _curate(store, records, link, scope=None, actor=actor, cause=cause, action=action,
                   curate_fresh=curate_fresh)


def _curate(store: LeadStore, records: pd.DataFrame, link: LinkResult, scope: set[str] | None,
            actor: str, cause: str, action: str, removed_mobiles: frozenset[str] = frozenset(),
            switchboards: set[str] | None = None, timer: PhaseTimer | None = None,
            curate_fresh: Collection[str] = (), state: dict | None = None, counters: pd.DataFrame | None = None,
            **change_fields: object) -> CurateOutcome:
    """Curate the leads of `records` (all leads when scope is None; else those and the leads in `scope`).

    records: every record of the leads concerned, with their current lead_id; link: their clusters.
    state: the store's `change_path_state()` as this change found it (read again when not given).
    counters: (col, value, n_records, n_names) of values the records carry, as the store counts them now
    (the neighbourhood's, already read to link it): the switchboards are found there before asking the store.
    """
    timer = timer or PhaseTimer()
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
    match_links = accepted_links(link)
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
    pairs = link.pairs[link.pairs["match_probability"] >= link.threshold]
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


@dataclass
class FileOutcome:
    path: Path
    import_id: str | None
    status: str  # imported | duplicate | rejected
    rows_read: int = 0
    rows_unreachable: int = 0
    error: str = ""
    unreachable_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class ReadyImport:
    """A file read and standardized, with its link values: everything saving it needs. From a worker
    process the tables come as Arrow (passed on cheaply, appended to the store as they are)."""

    path: Path
    meta: ImportMeta
    records: pd.DataFrame | pa.Table
    link_values: pd.DataFrame | pa.Table
    unreachable_reasons: dict[str, int]


def ready_import(prepared: PreparedImport, imported_by: str = "datafactory", arrow: bool = False) -> ReadyImport:
    # only the columns linking reads (a copy of all ~50 standardized columns took a third of this call)
    linkable = prepared.records[[c for c in LEAD_LINK_COLUMNS if c != "record_id"]]
    values = link_values(linkable.assign(record_id=np.arange(len(linkable), dtype=np.int64)),
                         _lead_config(), as_arrow=arrow, con=_scratch_connection())
    reasons = prepared.unreachable["reject_reason"].value_counts().to_dict()
    return ReadyImport(prepared.raw.path, prepared.meta(imported_by), prepared.records, values,
                       {str(k): int(v) for k, v in reasons.items()})


def save_ready(store: LeadStore, ready: ReadyImport) -> FileOutcome:
    meta = ready.meta
    try:
        store.save_import(meta, ready.records, link_values=ready.link_values, values_version=_values_version(_lead_config()))
    except DuplicateImportError as dup:
        return FileOutcome(ready.path, dup.import_id, "duplicate", meta.rows_read,
                           error=f"already imported as {dup.import_id}")
    # meta.import_id: the store gives content imported before and since undone a new id (…-r2)
    return FileOutcome(ready.path, meta.import_id, "imported", meta.rows_read, meta.rows_unreachable,
                       unreachable_reasons=ready.unreachable_reasons)


def save_import(store: LeadStore, prepared: PreparedImport, imported_by: str = "datafactory") -> FileOutcome:
    return save_ready(store, ready_import(prepared, imported_by))


def import_file(store: LeadStore, path: str | Path, imported_by: str = "datafactory") -> FileOutcome:
    """Read, standardize and save one file; a file that cannot be read leaves the store untouched."""
    ready = read_for_import(path, imported_by, arrow=False)
    return ready if isinstance(ready, FileOutcome) else save_ready(store, ready)


def read_for_import(path: str | Path, imported_by: str = "datafactory", arrow: bool = True) -> ReadyImport | FileOutcome:
    """Read and standardize one file (in a worker process, or here): ready to save, or rejected with
    the reason naming file, sheet, row and column."""
    try:
        prepared = prepare_file(path)
    except IngestError as err:
        return FileOutcome(Path(path), None, "rejected", error=err.describe())
    ready = ready_import(prepared, imported_by, arrow=arrow)
    if arrow:
        ready.records = pa.Table.from_pandas(ready.records, preserve_index=False)
    return ready


_scratch = threading.local()


def _scratch_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for computing link values, one per thread, kept for the next file."""
    if getattr(_scratch, "con", None) is None:
        _scratch.con = duckdb_settings.connect()
    return _scratch.con


@cache
def _lead_config() -> LinkageConfig:
    """The shipped lead linkage config, parsed once per process (a worker reads many files)."""
    return load_config()


def import_workers(files: int) -> int:
    """Worker processes for reading and standardizing `files` files: one per core, none for one file."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if files < 2 or cores < 2 else min(cores, files)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server that has imported the library once (a spawned worker imports it
    itself, a second or more each). Not forked from this process: a fork of a process that has used
    DuckDB can crash in the child."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def import_files(store: LeadStore, paths: Sequence[str | Path], imported_by: str = "datafactory",
                 workers: int | None = None, reader: Callable[..., ReadyImport | FileOutcome] = read_for_import,
                 ) -> Iterator[FileOutcome]:
    """Import many files, in order, one outcome per file as each is saved (save only: relink after).

    Files are read and standardized in `workers` processes side by side (default: one per core) while
    this process saves the ones before them; each file is saved in its own transaction, as
    `import_file` would, over one store connection. A file that cannot be read is rejected with its
    reason and the others go on, also when its reader process dies (`reader`: what a worker runs per
    file, `read_for_import`; a module-level function).
    """
    workers = import_workers(len(paths)) if workers is None else workers
    reading = _read_in_order(paths, imported_by, workers, reader)
    first = next(reading, None)
    if first is None:
        return
    with store.bulk_writes():
        for ready in chain([first], reading):
            yield ready if isinstance(ready, FileOutcome) else save_ready(store, ready)


def _read_in_order(paths: Sequence[str | Path], imported_by: str, workers: int,
                   reader: Callable[..., ReadyImport | FileOutcome] = read_for_import,
                   ) -> Iterator[ReadyImport | FileOutcome]:
    """Each file read, in the order given. A reader process that dies (killed for memory, a crash in a
    parser) breaks its pool: the first file not yet read is read again in a process of its own, and
    rejected if it kills that one too; a new pool goes on with the files after it."""
    if workers < 1:
        for path in paths:
            yield reader(path, imported_by, arrow=False)
        return
    paths = list(paths)
    done = 0
    while done < len(paths):
        try:
            for ready in _read_in_pool(paths[done:], imported_by, workers, reader):
                done += 1
                yield ready
        except BrokenProcessPool:
            log.warning("a reader process died while %s or a file after it was read; reading it alone",
                        Path(paths[done]).name)
            done += 1
            yield _read_alone(paths[done - 1], imported_by, reader)


def _read_in_pool(paths: Sequence[str | Path], imported_by: str, workers: int,
                  reader: Callable[..., ReadyImport | FileOutcome]) -> Iterator[ReadyImport | FileOutcome]:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context())
    try:
        waiting = iter(paths)
        # a few files ahead of the saving, not all of them: memory stays at a few files' worth
        pending = deque(pool.submit(reader, path, imported_by) for path in islice(waiting, 2 * workers))
        while pending:
            ready = pending.popleft().result()
            following = next(waiting, None)
            if following is not None:
                pending.append(pool.submit(reader, following, imported_by))
            yield ready
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _read_alone(path: str | Path, imported_by: str,
                reader: Callable[..., ReadyImport | FileOutcome]) -> ReadyImport | FileOutcome:
    """One file read in a process of its own: a file that kills its reader is rejected, not retried forever."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=_worker_context())
    try:
        return pool.submit(reader, path, imported_by).result()
    except BrokenProcessPool:
        name = Path(path).name
        log.error("%s killed its reader process; rejected", name)
        return FileOutcome(Path(path), None, "rejected",
                           error=f"{name}: the process reading this file died (out of memory, or a crash while "
                                 "parsing it); nothing of it was saved. Check the file, then drop it again.")
    finally:
        pool.shutdown(wait=True)


def relink_and_curate(store: LeadStore, full: bool = False, retrain: bool = False, actor: str = "datafactory",
                      cause: str = "", action: str | None = None,
                      curate_fresh: Collection[str] = (),
                      progress: Callable[[str], None] | None = None) -> CurateOutcome:
    """Bring the leads up to date after records changed: THE way to do it.

    A change (records imported, an import undone, a lead split) is linked and curated in its
    neighbourhood only: the changed records, the records sharing a counted value with them, their
    leads and the leads their earlier links reach. A full pass (every record linked and curated) runs
    when asked (`full`, the nightly job), when the model is (re)trained, and when an import is large
    compared with the base (bulk). Both make the same decisions with the same model.
    curate_fresh: leads rebuilt after an undo, curated from their records alone (see `curate`).
    """
    # one transaction: every lookup reads one snapshot on one connection (no reconnect per query) and the
    # leads are written with it; re-entrant: a caller may already hold the whole change
    with store.exclusive("link and curate", atomic=True):
        outcome = _relink_and_curate(store, full, retrain, actor, cause, action, curate_fresh, progress)
        committing = time.perf_counter()
    # (when a caller holds the whole change, its own commit comes later and this is ~0)
    outcome.timings["commit"] = round(time.perf_counter() - committing, 3)
    log.info("commit took %.2fs", outcome.timings["commit"])
    return outcome


def _relink_and_curate(store: LeadStore, full: bool, retrain: bool, actor: str, cause: str, action: str | None,
                       curate_fresh: Collection[str], progress: Callable[[str], None] | None) -> CurateOutcome:
    timer = PhaseTimer(progress)
    timer.phase("plan")
    config = load_config()
    state = store.change_path_state()
    queue = store.link_queue()
    saved = store.link_model()
    model = LinkModel.from_json(saved) if saved and not retrain else None
    path, reason = _choose_path(full, retrain, model, state, queue, config)
    log.info("relink: %s path (%s)", path, reason)
    if progress:
        progress(f"linking: {path} path ({reason})")
    action = action or ("relink" if full else "import")
    queue_done = int(queue["seq"].max()) if len(queue) else None
    if path == "incremental":
        outcome = _relink_changes(store, config, model, state, queue, timer, actor=actor, cause=cause,
                                  action=action, queue_done=queue_done, curate_fresh=curate_fresh)
    else:
        del queue  # a full pass reads every record: the queue (a row per queued value, 0.17 GB at 1M) goes now
        version = _values_version(config)
        # the link values saved with the records are kept when they all come from this config (a nightly
        # full pass or a retraining computes them again, as a repair)
        keep_values = not (full or retrain) and version in (state["link_values"], store.saved_link_values())
        link, values = _link_everything(store, config, model, timer, values=not keep_values)
        if link is None:
            link = _nothing_linked(model or default_model(), relinked=None)
        timer.phase("read records for curation")
        # passed on without a name here, so that `_curate` can let them go before its write
        outcome = _curate(store, store.records_for_linkage(columns=CURATE_READS), link, scope=None, actor=actor,
                          cause=cause, action=action, timer=timer,
                          curate_fresh=curate_fresh, link_values=values, link_values_version=version,
                          queue_done=queue_done)
    outcome.path, outcome.reason = path, reason
    log.info("relink done: %s path, %s", path, ", ".join(f"{k} {v:.2f}s" for k, v in outcome.timings.items()))
    return outcome


def _link_everything(store: LeadStore, config: LinkageConfig, model: LinkModel | None, timer: PhaseTimer,
                     values: bool = True) -> tuple[LinkResult | None, pa.Table | None]:
    """The full pass's linking: the active records' linkage columns read once as Arrow and linked in
    DuckDB (no pandas copy of the base), the records kept apart found by join, and (`values`) every
    record's link values computed from the same prepared table."""
    timer.phase("read records")
    table = store.active_records_arrow(LEAD_LINK_COLUMNS)
    at = table.schema.get_field_index("name_partial")
    table = table.set_column(at, "name_partial", pc.fill_null(table.column(at).cast(pa.bool_()), False))
    timer.phase("link", f"{table.num_rows} records, full pass")
    if model is not None and _outgrown(model, table.num_rows):
        model = None
    if table.num_rows == 0:  # nothing to link (every import undone): see _nothing_linked
        return None, pa.Table.from_pandas(_no_values(), preserve_index=False) if values else None
    con = duckdb_settings.connect()
    try:
        link = link_table(table, config, model, con=con, apart=store.kept_apart_pairs())
        computed = con.sql(link_values_sql(config)).to_arrow_table() if values else None
    finally:
        con.close()
    return link, computed


#: the format of link_values and their counters; a store with another one is linked in a full pass once
LINK_VALUES_FORMAT = 3  # 2: surnames on key-stat values only, counters kept on write; 3: term frequencies
# round to the nearest power of two (tf_bucket), so links a store decided with 2's rounding up are decided again


def _values_version(config: LinkageConfig) -> str:
    described = {"columns": value_columns(config), "key_stats": sorted(config.key_stats),
                 "format": LINK_VALUES_FORMAT}
    return hashlib.sha1(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def _no_values() -> pd.DataFrame:
    return pd.DataFrame({"col": pd.Series(dtype=object), "value": pd.Series(dtype=object),
                         "record_id": pd.Series(dtype="int64"), "surname": pd.Series(dtype=object)})


def _choose_path(full: bool, retrain: bool, model: LinkModel | None, state: dict, queue: pd.DataFrame,
                 config: LinkageConfig) -> tuple[str, str]:
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
    if state["link_values"] != _values_version(config) and int(state["linked_records"]):
        return "full", "the store's link values are from another linkage config (or an older version)"
    if added >= BULK_SHARE * max(base, 1):
        return "bulk", f"{added} new records against {base} linked ones"
    return "incremental", f"{added} new records, {len(queue) - added} other changes"


def _relink_changes(store: LeadStore, config: LinkageConfig, model: LinkModel, state: dict, queue: pd.DataFrame,
                    timer: PhaseTimer, **curate_args: object) -> CurateOutcome:
    """Link and curate a change's neighbourhood, looked up in the store by key.

    The neighbourhood is found with narrow lookups (record ids, lead ids, the counters of the values
    the change touches); only its records come out of the store whole, once.
    """
    timer.phase("neighbourhood")
    removed = queue[queue["change"] == "removed"]
    dirty = set(queue["lead_id"].dropna()) | set(curate_args.get("curate_fresh", ()))
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
    records = store.linkage_records_of(sorted(ids), [], columns=NEIGHBOURHOOD_READS)
    stats = None
    if records.empty:  # nothing left to link: the change only removed records
        link = _nothing_linked(model, relinked=np.zeros(0, dtype=np.int64))
    else:
        timer.phase("link", f"{len(added)} new records, {len(records)} in their neighbourhood")
        stats = store.neighbourhood_stats(records["record_id"].astype("int64").tolist())
        apart = store.kept_apart_pairs(sorted(leads))  # the same lookup as the full pass's, by lead
        link = link_neighbourhood(link_frame(records), config, model, stats, _population(model, state), apart)
        link.relinked = np.union1d(link.relinked, removed["record_id"].dropna().astype("int64").unique())
    # the shared contacts of every value the change touched, as the store's counters have them now
    touched = counts.loc[counts["col"].isin(config.key_stats)]
    shared = touched[(touched["now"] > 0) & (touched["names_now"] > 2)].rename(
        columns={"col": "kind", "now": "n_records", "names_now": "n_names"})[["kind", "value", "n_records", "n_names"]]
    link.shared_keys = shared.sort_values(["n_records", "kind", "value"], ascending=[False, True, True],
                                          ignore_index=True)
    removed_mobiles = frozenset(removed.loc[removed["col"] == "mobile", "value"].dropna())
    # the state the plan read: this change has written nothing since (one transaction)
    return _curate(store, records, link, scope=set(leads), removed_mobiles=removed_mobiles, timer=timer, state=state,
                   counters=stats, shared_values=touched.rename(columns={"col": "kind"})[["kind", "value"]], **curate_args)


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


#: the longest file name (in bytes) most file systems allow
MAX_NAME_BYTES = 255


def fit_name(name: str, suffix: str = "", limit: int = MAX_NAME_BYTES) -> str:
    """`name + suffix`, shortened when it would pass the file system's limit: the stem is cut at a character
    boundary and given a short hash of the whole name, so the same name always gets the same short name."""
    if len((name + suffix).encode("utf-8")) <= limit:
        return name + suffix
    stem, ext = Path(name).stem, Path(name).suffix
    tag = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    room = max(0, limit - len((tag + ext + suffix).encode("utf-8")))
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore") + tag + ext + suffix


def reject_file(path: Path, rejected_dir: Path, error: str) -> Path:
    """Move a file that cannot be imported aside, with NAME.error.txt saying why (a shortened name when
    NAME.error.txt would be too long for the file system; the text names the file in full)."""
    rejected_dir.mkdir(parents=True, exist_ok=True)
    target = _free_name(rejected_dir / path.name)
    shutil.move(str(path), target)
    reason_file(target).write_text(
        f"{path.name} was not imported.\n\n{error}\n\nFix the file and drop it into the inbox again.\n",
        encoding="utf-8",
    )
    return target


def reason_file(rejected: Path) -> Path:
    """Where the reason for a rejected file is written: NAME.error.txt, shortened if need be."""
    return rejected.with_name(fit_name(rejected.name, ".error.txt"))


def archive_file(path: Path, processed_dir: Path, import_id: str) -> Path:
    """Move an imported file to processed/, named by its import id so the same name never collides."""
    processed_dir.mkdir(parents=True, exist_ok=True)
    target = processed_dir / f"{import_id}{path.suffix.lower()}"
    if target.exists():
        path.unlink()
        return target
    shutil.move(str(path), target)
    return target


def file_duplicate(path: Path, processed_dir: Path) -> Path:
    """Move a file whose content was imported before to processed/duplicates/, keeping its name."""
    folder = processed_dir / "duplicates"
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder / path.name)
    shutil.move(str(path), target)
    return target


def _free_name(target: Path) -> Path:
    if not target.exists():
        return target
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return target.with_name(fit_name(f"{target.stem}.{stamp}{target.suffix}"))


def dedupe_frame(table: pd.DataFrame, config: LinkageConfig | None = None) -> pd.DataFrame:
    """Engine only: a table with an id column (config.unique_id) -> record_id, cluster_id.

    With the lead config the canonical columns are standardized first, and records that reach
    nobody stay clusters of their own; any other config links the columns it names as they are.
    """
    config = config or load_config()
    if config.unique_id not in table.columns:
        raise ValueError(f"the input needs a {config.unique_id} column")
    table = table.reset_index(drop=True)
    ids = table[config.unique_id].astype(str)
    if not config.standardize_leads:
        link = link_table(table.assign(**{config.unique_id: ids}), config)
        clusters = link.clusters
    else:
        raw = pd.DataFrame({f: table[f].fillna("").astype(str) if f in table.columns else ""
                            for f in CANONICAL_FIELDS})
        std = standardize_frame(raw)
        std["record_id"] = range(len(std))
        labels = link_records(std, config).clusters
        reachable = std["reachable"].to_numpy()
        cluster = labels["cluster_id"].to_numpy()
        has_contact = pd.Series(reachable).groupby(cluster).transform("any").to_numpy()
        cluster = np.where(has_contact, cluster, np.arange(len(std)))
        clusters = pd.DataFrame({config.unique_id: ids, "cluster_id": ids.iloc[cluster].to_numpy()})
    return clusters.rename(columns={config.unique_id: "record_id"})[["record_id", "cluster_id"]]
