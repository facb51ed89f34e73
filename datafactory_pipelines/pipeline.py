"""The import path shared by the Dagster assets, the CLI and the tests.

read_import -> standardize -> save (one transaction) -> link all records -> curate golden leads
(one transaction). Each step is a plain function; assets call them one per asset, the CLI in a row.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from datafactory_pipelines import CANONICAL_FIELDS
from datafactory_pipelines.conflicts import hold_and_detect, release_held_values
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
    link_increment,
)
from datafactory_pipelines.standardize import standardize_frame
from datafactory_pipelines.store import DuplicateImportError, ImportMeta, LeadChanges, LeadStore
from datafactory_pipelines.survivorship import assign_lead_ids, golden_records, lead_number

_UNSAFE = re.compile(r"[^\w.-]+")


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
                     "extra_columns": s.extra_headers, "columns": s.columns, "warnings": s.warnings}
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


def link_all(store: LeadStore, full: bool = False, retrain: bool = False) -> tuple[pd.DataFrame, LinkResult]:
    """Link the store's records: new ones incrementally against the leads, or everything (`full`).

    The model is learned once the store is big enough, kept in the store so every run scores with the
    same numbers, and learned again when the store has doubled (or when `retrain`).
    """
    records = store.records_for_linkage()
    saved = store.link_model()
    model = LinkModel.from_json(saved) if saved and not retrain else None
    if records.empty:  # nothing left to link (every import undone)
        empty = pd.DataFrame({"record_id": pd.Series(dtype="int64"), "cluster_id": pd.Series(dtype="int64")})
        return records, LinkResult(empty, pd.DataFrame(columns=["id_l", "id_r", "match_weight", "match_probability"]),
                                   model or default_model(), relinked=None,
                                   shared_keys=pd.DataFrame(columns=["kind", "value", "n_records", "n_names"]))
    if model is not None and _outgrown(model, len(records)):
        model = None
    apart = kept_apart(records, store.lead_splits())
    if model is None or full or records["lead_id"].isna().all():
        return records, link_records(records, model=model, apart=apart)
    table = records[LEAD_LINK_COLUMNS].assign(record_id=records["record_id"].astype("int64"),
                                              name_partial=records["name_partial"].fillna(False).astype(bool))
    return records, link_increment(table, records["lead_id"].to_numpy(dtype=object), load_config(), model,
                                   apart=apart, old_links=store.accepted_links())


def kept_apart(records: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Record pairs that must not share a cluster: every record of one split lead against the other's."""
    parts = [pd.DataFrame({"id_l": pd.Series(dtype="int64"), "id_r": pd.Series(dtype="int64")})]
    by_lead = records.groupby("lead_id")["record_id"].apply(list)
    for a, b in zip(splits.get("lead_a", []), splits.get("lead_b", []), strict=True):
        left, right = by_lead.get(a, []), by_lead.get(b, [])
        if left and right:
            grid = np.array(np.meshgrid(left, right)).reshape(2, -1)
            parts.append(pd.DataFrame({"id_l": grid[0], "id_r": grid[1]}))
    return pd.concat(parts, ignore_index=True)


def _outgrown(model: LinkModel, records: int) -> bool:
    trained = int(model.trained_on.get("records", 0))
    if model.trained_on.get("source") == "sample":  # the shipped cold-start model
        return records >= MIN_TRAINING_RECORDS
    return records >= 2 * trained


def curate(store: LeadStore, records: pd.DataFrame, link: LinkResult, actor: str = "datafactory",
           cause: str = "", action: str = "import", curate_fresh: Collection[str] = ()) -> CurateOutcome:
    """Assign stable lead ids to clusters, build golden records, write what changed in one transaction.

    curate_fresh: leads rebuilt after an undo. Their stored values are not held against their records
    (see conflicts.release_held_values): only hand-set overrides and still-open conflicts hold.
    """
    existing = store.leads(include_retired=True)
    previous = records.set_index("record_id")["lead_id"]
    if not cause:  # the imports whose records are linked for the first time
        cause = ",".join(sorted(set(records.loc[records["lead_id"].isna() & records["reachable"], "import_id"])))
    next_number = max((lead_number(x) for x in existing["lead_id"]), default=0) + 1
    # a cluster needs one record that reaches the person; contactless records only join such clusters
    reachable = link.clusters["record_id"].map(records.set_index("record_id")["reachable"]).fillna(False)
    with_contact = reachable.groupby(link.clusters["cluster_id"]).transform("any").astype(bool)
    record_leads, merges = assign_lead_ids(link.clusters[with_contact], previous, next_number)
    linked = records.drop(columns=["lead_id"]).merge(record_leads, on="record_id")
    set_aside = link.clusters.loc[~with_contact, ["record_id"]].assign(lead_id=None)
    record_leads = pd.concat([record_leads, set_aside], ignore_index=True)
    shared = link.shared_keys
    golden = golden_records(linked, set(shared.loc[shared["kind"] == "landline", "value"]))
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    now = moment.isoformat(timespec="microseconds")

    known = existing.set_index("lead_id")
    by_record = linked.set_index("record_id")
    all_conflicts = store.conflicts(status=None)
    open_conflicts = all_conflicts[all_conflicts["status"] == "open"]
    golden, new_conflicts = hold_and_detect(
        golden, release_held_values(known, curate_fresh, open_conflicts) if curate_fresh else known,
        store.overrides(), open_conflicts,
        by_record["import_time"], by_record["import_id"], moment,
        int(all_conflicts["conflict_id"].max()) + 1 if len(all_conflicts) else 1)
    golden["status"] = "active"
    golden["merged_into"] = ""
    golden["created_at"] = known["created_at"].reindex(golden["lead_id"]).fillna(now).to_numpy()
    golden["updated_at"] = now
    old_hash = known["content_hash"].reindex(golden["lead_id"])
    old_status = known["status"].reindex(golden["lead_id"])
    changed = (old_hash.to_numpy() != golden["content_hash"].to_numpy()) | (old_status.to_numpy() != "active")
    upserts = golden[changed]
    created = int(old_hash.isna().sum())

    retired = known.loc[[lead for lead in merges if lead in known.index]].reset_index()
    if len(retired):
        retired["status"] = "merged"
        retired["merged_into"] = retired["lead_id"].map(merges)
        retired["updated_at"] = now
        upserts = pd.concat([upserts, retired[upserts.columns]], ignore_index=True)
    # a lead none of whose records is left (its import was undone) is retired, never deleted
    orphaned = known[(known["status"] == "active") & ~known.index.isin(golden["lead_id"])
                     & ~known.index.isin(list(merges))].reset_index()
    if len(orphaned):
        orphaned["status"] = "retired"
        orphaned["updated_at"] = now
        upserts = pd.concat([upserts, orphaned[upserts.columns]], ignore_index=True)
    changes = LeadChanges(record_leads=record_leads, upserts=upserts, shared_contacts=shared,
                          link_model=link.model.to_json(), match_links=accepted_links(link),
                          relinked=None if link.relinked is None else [int(x) for x in link.relinked],
                          new_conflicts=new_conflicts, action=action, actor=actor, cause=cause, created=created,
                          updated=int(changed.sum()) - created, merged=len(merges))
    store.apply_lead_changes(changes)
    return CurateOutcome(
        link=link, changes=changes, records_linked=len(record_leads),
        duplicates_found=int(record_leads["lead_id"].notna().sum()) - record_leads["lead_id"].nunique(),
        active_leads=len(golden), merges=merges,
    )


def accepted_links(link: LinkResult) -> pd.DataFrame:
    """The pairs that were linked, with each comparison's share of the match weight (as JSON)."""
    pairs = link.pairs[link.pairs["match_probability"] >= link.threshold]
    weights = [c for c in pairs.columns if c.startswith("w_")]
    contributions = [json.dumps({c[2:]: round(float(v), 2) for c, v in zip(weights, row, strict=True) if v},
                                ensure_ascii=False) for row in pairs[weights].to_numpy()]
    return pd.DataFrame({"record_l": pairs["id_l"].astype("int64"), "record_r": pairs["id_r"].astype("int64"),
                         "match_weight": pairs["match_weight"].astype(float),
                         "match_probability": pairs["match_probability"].astype(float),
                         "contributions": contributions})


@dataclass
class FileOutcome:
    path: Path
    import_id: str | None
    status: str  # imported | duplicate | rejected
    rows_read: int = 0
    rows_unreachable: int = 0
    error: str = ""
    unreachable_reasons: dict[str, int] = field(default_factory=dict)


def save_import(store: LeadStore, prepared: PreparedImport, imported_by: str = "datafactory") -> FileOutcome:
    meta = prepared.meta(imported_by)
    try:
        store.save_import(meta, prepared.records)
    except DuplicateImportError as dup:
        return FileOutcome(prepared.raw.path, dup.import_id, "duplicate", prepared.raw.rows_read,
                           error=f"already imported as {dup.import_id}")
    reasons = prepared.unreachable["reject_reason"].value_counts().to_dict()
    # meta.import_id: the store gives content imported before and since undone a new id (…-r2)
    return FileOutcome(prepared.raw.path, meta.import_id, "imported", prepared.raw.rows_read,
                       len(prepared.unreachable), unreachable_reasons={str(k): int(v) for k, v in reasons.items()})


def import_file(store: LeadStore, path: str | Path, imported_by: str = "datafactory") -> FileOutcome:
    """Read, standardize and save one file; a file that cannot be read leaves the store untouched."""
    try:
        prepared = prepare_file(path)
    except IngestError as err:
        return FileOutcome(Path(path), None, "rejected", error=err.describe())
    return save_import(store, prepared, imported_by)


def relink_and_curate(store: LeadStore, full: bool = False, retrain: bool = False, actor: str = "datafactory",
                      cause: str = "", action: str | None = None,
                      curate_fresh: Collection[str] = ()) -> CurateOutcome:
    """curate_fresh: leads rebuilt after an undo, curated from their records alone (see `curate`)."""
    with store.exclusive("link and curate"):  # re-entrant: a caller may already hold the whole change
        records, link = link_all(store, full=full, retrain=retrain)
        return curate(store, records, link, actor=actor, cause=cause,
                      action=action or ("relink" if full else "import"), curate_fresh=curate_fresh)


def reject_file(path: Path, rejected_dir: Path, error: str) -> Path:
    """Move a file that cannot be imported aside, with NAME.error.txt saying why."""
    rejected_dir.mkdir(parents=True, exist_ok=True)
    target = _free_name(rejected_dir / path.name)
    shutil.move(str(path), target)
    Path(f"{target}.error.txt").write_text(
        f"{path.name} was not imported.\n\n{error}\n\nFix the file and drop it into the inbox again.\n",
        encoding="utf-8",
    )
    return target


def archive_file(path: Path, processed_dir: Path, import_id: str) -> Path:
    """Move an imported file to processed/, named by its import id so the same name never collides."""
    processed_dir.mkdir(parents=True, exist_ok=True)
    target = processed_dir / f"{import_id}{path.suffix.lower()}"
    if target.exists():
        path.unlink()
        return target
    shutil.move(str(path), target)
    return target


def _free_name(target: Path) -> Path:
    if not target.exists():
        return target
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return target.with_name(f"{target.stem}.{stamp}{target.suffix}")


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
