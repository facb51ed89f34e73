"""Backups: every table as Parquet with a manifest, the history in append-only chunks.

    ROOT/history/000000000001-000000005000.parquet     written once, shared by every later backup
    ROOT/20261125T170500Z/leads.parquet …             the other tables, whole
    ROOT/20261125T170500Z/manifest.json               rows and SHA-256 of every file, the chain's head,
                                                      and an HMAC-SHA256 when DATAFACTORY_BACKUP_KEY is set

The history only grows, so a backup writes just the rows after the last chunk. Restoring checks the whole
backup against the target store's own schema before one row is written (backup_check), then loads it in
one transaction that counts the rows and walks the chain again before it commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from datafactory_pipelines.backup_check import (
    CHUNKS_FOLDER,
    HISTORY_TABLE,
    MANIFEST,
    BackupError,
    VerifiedBackup,
    verify_backup,
)
from datafactory_pipelines.backup_signing import SIGNATURE_FIELD, backup_key, sign
from datafactory_pipelines.history import HISTORY_COLUMNS, verify_chain
from datafactory_pipelines.ingest.readers import file_sha256
from datafactory_pipelines.store import LeadStore

__all__ = ["BackupError", "VerifiedBackup", "backed_up_tables", "backup", "check_backup", "find_backup",
           "restore_backup"]


def backed_up_tables(store: LeadStore) -> list[str]:
    """Every table the store has (from its catalog), so a table added to the schema is never left out."""
    return [name for name in store.table_names() if name != HISTORY_TABLE]


def backup(store: LeadStore, root: str | Path) -> Path:
    root = Path(root)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / stamp
    folder.mkdir(parents=True, exist_ok=False)
    tables = store.table_snapshot(backed_up_tables(store))
    manifest: dict = {"format": 2, "created_at": stamp, "tables": {}, "history_chunks": []}
    for name, frame in tables.items():
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        manifest["tables"][name] = {"file": path.name, "rows": len(frame), "sha256": file_sha256(path)}

    chunks = root / CHUNKS_FOLDER
    chunks.mkdir(exist_ok=True)
    existing = sorted(chunks.glob("*.parquet"))
    last = int(existing[-1].stem.split("-")[1]) if existing else 0
    history = store.history_after(last)
    if len(history):
        path = chunks / f"{int(history['seq'].min()):012d}-{int(history['seq'].max()):012d}.parquet"
        history.to_parquet(path, index=False)
        existing.append(path)
    parts = []
    for path in existing:
        first, end = (int(x) for x in path.stem.split("-"))
        # a plain name: chunks are found in ROOT/history, never by a path the manifest spells out
        manifest["history_chunks"].append({"file": path.name, "first": first, "last": end,
                                           "sha256": file_sha256(path)})
        parts.append(pd.read_parquet(path))
    check = verify_chain(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=HISTORY_COLUMNS))
    manifest["history_rows"] = check.rows
    manifest["history_head"] = check.head
    key = backup_key()
    if key is not None:
        manifest[SIGNATURE_FIELD] = sign(manifest, key)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return folder


@dataclass
class BackupChoice:
    folder: Path
    others: list[Path]  # the other backups under the same root, newest first


def find_backup(path: str | Path) -> BackupChoice:
    """A backup folder as given, or the newest backup under a root that `backup ROOT` wrote."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return BackupChoice(path, [])
    found = sorted((p for p in path.iterdir() if p.is_dir() and not p.is_symlink() and (p / MANIFEST).is_file()),
                   key=lambda p: p.name, reverse=True) if path.is_dir() else []
    if not found:
        raise BackupError(f"{path}: no {MANIFEST}, and no backup folder under it; not a datafactory backup")
    return BackupChoice(found[0], found[1:])


def check_backup(folder: str | Path, store: LeadStore) -> VerifiedBackup:
    """Everything `restore_backup` checks before writing, without writing: the preview of a restore."""
    verified = verify_backup(folder, store.table_columns())
    counts = store.table_row_counts()
    if counts.get("records", 0) or counts.get("leads", 0) or counts.get(HISTORY_TABLE, 0):
        verified.target_holds_data = True
        verified.notes.append(_against_the_stores_history(store, verified.tables[HISTORY_TABLE]))
    return verified


def _against_the_stores_history(store: LeadStore, history: pd.DataFrame) -> str:
    """How the backup's history compares with the target's own (the target holds data: it is refused)."""
    own = store.history()
    common = min(len(own), len(history))
    if common == 0:
        return "the target store holds data but no history: restore into a new store"
    mine = own.sort_values("seq")["hash"].iloc[:common].to_numpy()
    theirs = history.sort_values("seq")["hash"].iloc[:common].to_numpy()
    differ = (mine != theirs).nonzero()[0]
    if len(differ):
        return (f"the backup's history DISAGREES with this store's from row {int(differ[0]) + 1}: it is not a "
                "copy of this store (or it was forged); restore into a new store")
    if len(history) < len(own):
        return (f"the backup's history is the first {len(history)} of this store's {len(own)} rows: it is "
                "older; this store is not replaced (restore into a new store)")
    return "the backup's history starts with this store's; restore into a new store"


def restore_backup(folder: str | Path, store: LeadStore, verified: VerifiedBackup | None = None) -> dict:
    """Rebuild an empty store from a backup. Checked in full first (backup_check); then loaded in one
    transaction that counts every table's rows and walks the chain as the store holds it before committing."""
    verified = verified or check_backup(folder, store)
    tables = verified.tables
    with store.exclusive(f"restore backup {Path(folder).name}", atomic=True):
        store.load_snapshot(tables)
        counts = store.table_row_counts()
        wrong = [name for name, frame in tables.items() if counts.get(name) != len(frame)]
        if wrong:
            raise BackupError(f"{wrong[0]}: {counts.get(wrong[0])} rows loaded, the backup holds "
                              f"{len(tables[wrong[0]])}; nothing was restored")
        check = verify_chain(store.history())
        if not check.ok or check.head != verified.history_head:
            raise BackupError(f"the restored history does not verify (row {check.first_bad_seq}: {check.reason}); "
                              "nothing was restored")
    return {"tables": {k: len(v) for k, v in tables.items()}, "history_head": check.head}
