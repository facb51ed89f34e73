"""Backups: every table as Parquet with a manifest, the history in append-only chunks.

    ROOT/history/000000000001-000000005000.parquet     written once, shared by every later backup
    ROOT/20261125T170500Z/leads.parquet …             the other tables, whole
    ROOT/20261125T170500Z/manifest.json               rows and SHA-256 of every file, the chain's head

The history only grows, so a backup writes just the rows after the last chunk. Restoring checks every
file against the manifest and walks the hash chain before the store is used.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from datafactory_pipelines.history import verify_chain
from datafactory_pipelines.ingest.readers import file_sha256
from datafactory_pipelines.store import LeadStore

HISTORY_TABLE = "history"  # backed up in append-only chunks, not whole


def backed_up_tables(store: LeadStore) -> list[str]:
    """Every table the store has (from its catalog), so a table added to the schema is never left out."""
    return [name for name in store.table_names() if name != HISTORY_TABLE]


class BackupError(Exception):
    """A backup that cannot be restored as it is; the target store was not touched."""


def backup(store: LeadStore, root: str | Path) -> Path:
    root = Path(root)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / stamp
    folder.mkdir(parents=True, exist_ok=False)
    tables = store.table_snapshot(backed_up_tables(store))
    manifest: dict = {"created_at": stamp, "tables": {}, "history_chunks": []}
    for name, frame in tables.items():
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        manifest["tables"][name] = {"file": path.name, "rows": len(frame), "sha256": file_sha256(path)}

    chunks = root / "history"
    chunks.mkdir(exist_ok=True)
    existing = sorted(chunks.glob("*.parquet"))
    last = int(existing[-1].stem.split("-")[1]) if existing else 0
    history = store.history_after(last)
    if len(history):
        path = chunks / f"{int(history['seq'].min()):012d}-{int(history['seq'].max()):012d}.parquet"
        history.to_parquet(path, index=False)
        existing.append(path)
    for path in existing:
        first, end = (int(x) for x in path.stem.split("-"))
        manifest["history_chunks"].append({"file": f"../history/{path.name}", "first": first, "last": end,
                                           "sha256": file_sha256(path)})
    check = verify_chain(_read_history(folder, manifest))
    manifest["history_rows"] = check.rows
    manifest["history_head"] = check.head
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return folder


def _read_history(folder: Path, manifest: dict) -> pd.DataFrame:
    parts = [pd.read_parquet(folder / c["file"]) for c in manifest["history_chunks"]]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["seq", "changed_at", "lead_id", "field", "old_value", "new_value", "action", "actor", "cause",
                 "prev_hash", "hash"])


def restore_backup(folder: str | Path, store: LeadStore) -> dict:
    """Rebuild an empty store from a backup, after checking every file and the history chain."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise BackupError(f"{folder}: no manifest.json; not a datafactory backup")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for entry in [*manifest["tables"].values(), *manifest["history_chunks"]]:
        path = folder / entry["file"]
        if not path.exists():
            raise BackupError(f"{path}: missing")
        if file_sha256(path) != entry["sha256"]:
            raise BackupError(f"{path}: SHA-256 does not match the manifest (the file was changed)")
    history = _read_history(folder, manifest)
    check = verify_chain(history)
    if not check.ok:
        raise BackupError(f"history row {check.first_bad_seq}: {check.reason}")
    if check.head != manifest["history_head"] or check.rows != manifest["history_rows"]:
        raise BackupError("the history does not end where the manifest says it does")
    tables = {name: pd.read_parquet(folder / entry["file"]) for name, entry in manifest["tables"].items()}
    tables["history"] = history
    with store.exclusive(f"restore backup {folder.name}", atomic=True):
        store.load_snapshot(tables)
    return {"tables": {k: len(v) for k, v in tables.items()}, "history_head": check.head}
