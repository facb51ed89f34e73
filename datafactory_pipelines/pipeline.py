"""The import path shared by the Dagster assets, the CLI and the tests.

read_import -> standardize -> save (one transaction) -> link all records -> curate golden leads
(one transaction). Each step is a plain function; assets call them one per asset, the CLI in a row.

The steps live beside their concern and are put together here: reading many files in worker processes
(import_pool.py), the incremental change path of linkage (linkage/incremental.py), curation
(curation.py), moving the dropped files (file_moves.py), phase timings (phases.py). Their public names
are importable from here as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines import CANONICAL_FIELDS, duckdb_settings
from datafactory_pipelines.curation import (  # noqa: F401 - their old import path
    CURATE_COLUMNS,
    CURATE_READS,
    KNOWN_LEAD_READS,
    RECORD_FACTS,
    CurateOutcome,
    CurateRequest,
    _lead_causes,
    accepted_links,
    contributions_json,
    curate,
    curate_change,
)
from datafactory_pipelines.file_moves import (  # noqa: F401 - their old import path
    MAX_NAME_BYTES,
    archive_file,
    file_duplicate,
    fit_name,
    reason_file,
    reject_file,
)
from datafactory_pipelines.import_pool import _read_in_order, import_workers
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
    default_model,
    link_values,
)
from datafactory_pipelines.linkage.incremental import (  # noqa: F401 - their old import path
    BULK_SHARE,
    _choose_path,
    _nothing_linked,
    _outgrown,
    _value_counts,
    link_change,
)
from datafactory_pipelines.linkage.review import Recalibration, band_pairs
from datafactory_pipelines.linkage.sql import link_values_sql, value_columns
from datafactory_pipelines.phases import PhaseTimer, peak_rss_gb, release_memory, rss_gb  # noqa: F401
from datafactory_pipelines.standardize import standardize_frame
from datafactory_pipelines.store import DuplicateImportError, ImportMeta, LeadStore

_UNSAFE = re.compile(r"[^\w.-]+")
log = logging.getLogger(__name__)
# what the change path reads of its neighbourhood's records: linking's columns and curation's
NEIGHBOURHOOD_READS = list(dict.fromkeys([*LEAD_LINK_COLUMNS, *CURATE_READS]))


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
                     "extra_columns": s.extra_headers, "columns": s.columns, "warnings": s.warnings, "notes": s.notes,
                     "skipped_rows": s.skipped_rows, "merged_cells": s.merged_cells,
                     "contacts_outside_column": s.contacts_outside_column, "cells": s.cells}
                    for s in self.raw.sheets]
            + [{"name": name, "hidden": True, "rows": 0, "skipped": "hidden sheet"} for name in self.raw.hidden_sheets]
            + [{"name": name, "rows": 0, "skipped": why} for name, why in self.raw.skipped_reasons.items()],
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
    if std.attrs.get("house_numbers"):  # the file's own hotline: the report says which number was not a lead's
        for sheet in raw.sheets:
            sheet.notes.append(f"{', '.join(std.attrs['house_numbers'])} on most rows beside different people: "
                               "our own number, not a contact of theirs")
    for col in std.columns:
        records[col] = std[col].to_numpy()
    return PreparedImport(raw=raw, records=records)


def prepare_file(path: str | Path, home: str | Path | None = None) -> PreparedImport:
    """Read and standardize one file; `home` says whose pinned column mappings apply (default: the env's)."""
    return standardize_import(read_file(path, home=home))


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
    if outcome.path in ("full", "bulk"):
        settling = time.perf_counter()
        store.settle_after_full_pass()
        outcome.timings["settle"] = round(time.perf_counter() - settling, 3)
    log.info("commit took %.2fs", outcome.timings["commit"])
    return outcome


def _relink_and_curate(store: LeadStore, full: bool, retrain: bool, actor: str, cause: str, action: str | None,
                       curate_fresh: Collection[str], progress: Callable[[str], None] | None) -> CurateOutcome:
    timer = PhaseTimer(progress)
    timer.phase("plan")
    config = load_config()
    # what people's answers about possible matches taught (linkage/review.py): the same in every path
    config.recalibration = Recalibration.from_json(store.review_recalibration())
    state = store.change_path_state()
    queue = store.link_queue()
    saved = store.link_model()
    model = LinkModel.from_json(saved) if saved and not retrain else None
    path, reason = _choose_path(full, retrain, model, state, queue, _values_version(config))
    log.info("relink: %s path (%s)", path, reason)
    if progress:
        progress(f"linking: {path} path ({reason})")
    action = action or ("relink" if full else "import")
    queue_done = int(queue["seq"].max()) if len(queue) else None
    if path == "incremental":
        outcome = _relink_changes(store, config, model, state, queue, timer, actor=actor, cause=cause,
                                  action=action, curate_fresh=curate_fresh, queue_done=queue_done)
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
        # passed on without a name here, so that `curate_change` can let them go before its write
        outcome = curate_change(store, CurateRequest(
            store.records_for_linkage(columns=CURATE_READS), link, scope=None, actor=actor, cause=cause,
            action=action, timer=timer, curate_fresh=curate_fresh, match_links=accepted_links,
            change_fields={"link_values": values, "link_values_version": version, "queue_done": queue_done}))
    outcome.path, outcome.reason = path, reason
    _queue_possible_matches(store, outcome.link, config)
    log.info("relink done: %s path, %s", path, ", ".join(f"{k} {v:.2f}s" for k, v in outcome.timings.items()))
    return outcome


def _relink_changes(store: LeadStore, config: LinkageConfig, model: LinkModel, state: dict, queue: pd.DataFrame,
                    timer: PhaseTimer, actor: str, cause: str, action: str, curate_fresh: Collection[str],
                    queue_done: int | None) -> CurateOutcome:
    """Link a change's neighbourhood (linkage/incremental.py) and curate its leads."""
    found = link_change(store, config, model, state, queue, timer, NEIGHBOURHOOD_READS, curate_fresh)
    # the state the plan read: this change has written nothing since (one transaction)
    request = CurateRequest(found.records, found.link, scope=found.scope, actor=actor, cause=cause, action=action,
                            removed_mobiles=found.removed_mobiles, timer=timer, curate_fresh=curate_fresh,
                            state=state, counters=found.counters, match_links=accepted_links,
                            change_fields={"shared_values": found.shared_values, "queue_done": queue_done})
    del found
    return curate_change(store, request)


def _queue_possible_matches(store: LeadStore, link: LinkResult, config: LinkageConfig) -> None:
    """The change's pairs in the middle band, kept for people to decide (in the change's transaction)."""
    band = band_pairs(link.pairs, config.review_from, config.review_to)
    if band.empty:
        return
    band["contributions"] = contributions_json(band)
    store.save_match_reviews(band)


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
        link = link_table(table, config, model, con=con, apart=store.kept_apart_pairs(),
                          together=store.kept_together_pairs())
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
