"""Forged backups: each function takes a copy of a good backup ROOT and its folder, and lies in one way.

The forger can write anything in the backup folder and recompute any SHA-256 or history hash; only the
operator's DATAFACTORY_BACKUP_KEY is out of reach.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from datafactory_pipelines.history import row_hash


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def save_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def rewrite_table(folder: Path, name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Change a table's file and update its hash and row count in the manifest, as a careful forger would."""
    path = folder / f"{name}.parquet"
    frame = change(pd.read_parquet(path))
    frame.to_parquet(path, index=False)
    manifest = manifest_of(folder)
    manifest["tables"][name].update(sha256=_sha(path), rows=len(frame))
    save_manifest(folder, manifest)


def _history(folder: Path) -> pd.DataFrame:
    chunks = folder.parent / "history"
    return pd.concat([pd.read_parquet(chunks / Path(c["file"]).name) for c in manifest_of(folder)["history_chunks"]],
                     ignore_index=True)


def rewrite_history(folder: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Replace the history by `change(history)` with every hash recomputed, in one chunk, manifest updated."""
    history = change(_history(folder)).sort_values("seq").reset_index(drop=True)
    prev = "0" * 64
    hashes, prevs = [], []
    for row in history.itertuples(index=False):
        stamp = pd.Timestamp(row.changed_at).to_pydatetime().isoformat(timespec="microseconds")
        prevs.append(prev)
        prev = row_hash(int(row.seq), stamp, row.lead_id, row.field, row.old_value or "", row.new_value or "",
                        row.action, row.actor, row.cause, prev)
        hashes.append(prev)
    history["prev_hash"], history["hash"] = prevs, hashes
    chunks = folder.parent / "history"
    for old in chunks.glob("*.parquet"):
        old.unlink()
    path = chunks / f"{1:012d}-{len(history):012d}.parquet"
    history.to_parquet(path, index=False)
    manifest = manifest_of(folder)
    spelled = manifest["history_chunks"][0]["file"]  # as this version's backup names chunks
    name = spelled[:len(spelled) - len(Path(spelled).name)] + path.name
    manifest["history_chunks"] = [{"file": name, "first": 1, "last": len(history), "sha256": _sha(path)}]
    manifest["history_rows"], manifest["history_head"] = len(history), prev
    save_manifest(folder, manifest)


# -- the forgeries a backup's own checks must refuse (no key needed) --------------------------------------------


def tables_removed(folder: Path) -> None:
    manifest = manifest_of(folder)
    for name in ("leads", "records"):
        del manifest["tables"][name]
    save_manifest(folder, manifest)


def history_rows_cut(folder: Path) -> None:
    """The last rows of the history cut, the chain (still valid: a prefix) and the head updated."""
    rewrite_history(folder, lambda h: h[h["seq"] <= int(h["seq"].max()) * 2 // 3])


def lead_values_changed_hash_updated(folder: Path) -> None:
    def tamper(leads: pd.DataFrame) -> pd.DataFrame:
        leads.loc[leads.index[0], ["mobile", "owner"]] = ["13999999999", "TAMPERED"]
        return leads
    rewrite_table(folder, "leads", tamper)


def lead_rows_cut(folder: Path) -> None:
    rewrite_table(folder, "leads", lambda leads: leads.iloc[1:])


def injected_table_name(folder: Path, target: Path) -> None:
    manifest = manifest_of(folder)
    name = f"tracking_links SELECT * FROM snapshot_part; COPY (SELECT 'pwned') TO '{target}'; --"
    manifest["tables"][name] = manifest["tables"].pop("tracking_links")
    save_manifest(folder, manifest)


def injected_column_name(folder: Path, target: Path) -> None:
    column = f"token\") SELECT 1; COPY (SELECT 'pwned') TO '{target}'; --"
    rewrite_table(folder, "tracking_links", lambda t: t.rename(columns={"token": column}))


def absolute_path(folder: Path) -> None:
    outside = folder.parent.parent / "elsewhere.parquet"
    shutil.copy(folder / "leads.parquet", outside)
    manifest = manifest_of(folder)
    manifest["tables"]["leads"]["file"] = str(outside.resolve())
    save_manifest(folder, manifest)


def dotdot_path(folder: Path) -> None:
    outside = folder.parent.parent / "elsewhere.parquet"
    shutil.copy(folder / "leads.parquet", outside)
    manifest = manifest_of(folder)
    manifest["tables"]["leads"]["file"] = "../../elsewhere.parquet"
    save_manifest(folder, manifest)


def symlinked_file(folder: Path) -> None:
    outside = folder.parent.parent / "elsewhere.parquet"
    shutil.move(folder / "leads.parquet", outside)
    os.symlink(outside, folder / "leads.parquet")


def forged_history_head(folder: Path) -> None:
    manifest = manifest_of(folder)
    manifest["history_head"] = "f" * 64
    save_manifest(folder, manifest)


def rows_field_lies(folder: Path) -> None:
    manifest = manifest_of(folder)
    manifest["tables"]["records"]["rows"] += 1
    save_manifest(folder, manifest)


def extra_unknown_table(folder: Path) -> None:
    shutil.copy(folder / "leads.parquet", folder / "evil.parquet")
    manifest = manifest_of(folder)
    manifest["tables"]["evil"] = {"file": "evil.parquet", "rows": manifest["tables"]["leads"]["rows"],
                                  "sha256": _sha(folder / "evil.parquet")}
    save_manifest(folder, manifest)


def history_chunk_gap(folder: Path) -> None:
    """The first rows of the history dropped (chunk file, hash and range updated): it no longer starts at 1."""
    rewrite_history(folder, lambda h: h)  # one chunk
    manifest = manifest_of(folder)
    chunk = manifest["history_chunks"][0]
    path = folder.parent / "history" / Path(chunk["file"]).name
    history = pd.read_parquet(path)
    history[history["seq"] > 2].to_parquet(path, index=False)
    chunk.update(first=3, sha256=_sha(path))
    save_manifest(folder, manifest)


def swapped_table_file(folder: Path) -> None:
    """leads.parquet holds the records' file (hash and rows updated)."""
    shutil.copy(folder / "records.parquet", folder / "leads.parquet")
    manifest = manifest_of(folder)
    manifest["tables"]["leads"].update(sha256=_sha(folder / "leads.parquet"),
                                       rows=manifest["tables"]["records"]["rows"])
    save_manifest(folder, manifest)


def manifest_not_an_object(folder: Path) -> None:
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")


# -- the forgeries only the operator's key can tell (the forger recomputed everything) ---------------------------


def history_forged_and_rehashed(folder: Path) -> None:
    """An old value in the history rewritten, every later hash recomputed: consistent, but not ours."""
    def forge(history: pd.DataFrame) -> pd.DataFrame:
        history.loc[history.index[0], "actor"] = "someone else"
        return history
    rewrite_history(folder, forge)


def signature_removed(folder: Path) -> None:
    manifest = manifest_of(folder)
    manifest.pop("signature", None)
    save_manifest(folder, manifest)


def signed_with_another_key(folder: Path) -> None:
    from datafactory_pipelines.backup_signing import sign

    lead_values_changed_hash_updated(folder)
    manifest = manifest_of(folder)
    manifest["signature"] = sign(manifest, b"the departing employee's own key")
    save_manifest(folder, manifest)


STRUCTURAL = [tables_removed, history_rows_cut, lead_values_changed_hash_updated, lead_rows_cut,
              injected_table_name, injected_column_name, absolute_path, dotdot_path, symlinked_file,
              forged_history_head, rows_field_lies, extra_unknown_table, history_chunk_gap, swapped_table_file,
              manifest_not_an_object]
NEEDS_THE_KEY = [history_forged_and_rehashed, signature_removed, signed_with_another_key]
