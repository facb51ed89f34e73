"""Checking a backup before one row of it is written: a backup is input, and input may lie.

What a backup must prove, in this order (the first failure refuses it, naming what and where):
- its manifest is a JSON object, signed with `DATAFACTORY_BACKUP_KEY` when one is set (backup_signing);
- its tables are exactly the store's own tables (the target's catalog decides, never the manifest): one
  missing, unknown or named twice is refused; so is a column the table does not have;
- every file is a plain name inside the backup folder (history chunks: inside ROOT/history), a regular file,
  not a link; absolute paths and `..` are refused;
- every file's SHA-256 and row count match the manifest (each file is read once, then hashed and parsed from
  the same bytes, so it cannot change between the check and the load);
- the history chunks cover 1..N without a gap, the chain recomputed from their rows verifies, and it ends
  where the manifest says;
- the leads agree with the history: each lead's tracked fields are the last values its history gives, every
  lead has history and every lead in the history is in the backup. A history cut short, or a lead edited
  with its file's hash updated, no longer explains the leads;
- records name leads and imports that are in the backup.
Without a key these checks prove a backup consistent, not authentic: someone who rewrites the leads, the
history and every hash together is caught only by the signature. The summary says "UNSIGNED" then.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from datafactory_pipelines.backup_signing import KEY_VARIABLE, SIGNATURE_FIELD, backup_key, signature_problem
from datafactory_pipelines.fields import TRACKED_FIELDS
from datafactory_pipelines.history import HISTORY_COLUMNS, verify_chain

if TYPE_CHECKING:
    import pandas as pd

HISTORY_TABLE = "history"  # backed up in append-only chunks under ROOT/history, not whole
CHUNKS_FOLDER = "history"
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20
_LEGACY_CHUNK_PREFIX = "../history/"  # how chunk files were named before they were plain names
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BackupError(Exception):
    """A backup that cannot be restored as it is; the target store was not touched."""


@dataclass
class VerifiedBackup:
    folder: Path
    created_at: str
    tables: dict[str, pd.DataFrame]  # every table, the history included
    history_rows: int
    history_head: str
    trust: str  # how far the backup is trusted: signed and verified, or unsigned
    notes: list[str] = field(default_factory=list)
    target_holds_data: bool = False  # the store it was checked against is not empty: it is refused

    def summary(self) -> list[str]:
        counts = ", ".join(f"{name} {len(frame)}" for name, frame in sorted(self.tables.items()) if len(frame))
        return [f"backup {self.folder} (made {self.created_at}): {self.trust}",
                f"  rows: {counts}",
                f"  history: {self.history_rows} rows, chain verified, head {self.history_head[:12]}…",
                *(f"  {note}" for note in self.notes)]


def _short(value: object) -> str:
    """A name from the manifest, quoted and cut short for a message (it may be anything)."""
    return repr(value)[:80]


def _plain_name(name: object, what: str) -> str:
    """A file name with no folder part: not absolute, no `..`, no separator of either kind."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BackupError(f"{what}: the file name {_short(name)} is not a file name")
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        raise BackupError(f"{what}: the file {_short(name)} is an absolute path; backup files are relative "
                          "to the backup folder")
    if ".." in re.split(r"[\\/]", name):
        raise BackupError(f"{what}: the file {_short(name)} leaves the backup folder (`..`)")
    if "/" in name or "\\" in name or name in (".", ""):
        raise BackupError(f"{what}: the file {_short(name)} is not a plain file name in the backup folder")
    return name


def _read_inside(base: Path, name: str, what: str) -> bytes:
    """The bytes of base/name, once it is sure to be a regular file inside base (a link is refused)."""
    path = base / name
    if path.is_symlink():
        raise BackupError(f"{what}: {path} is a link; backup files are regular files")
    if not path.is_file():
        raise BackupError(f"{what}: {path}: missing")
    if path.resolve().parent != base.resolve():
        raise BackupError(f"{what}: {path} is not inside {base}")
    return path.read_bytes()


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BackupError(f"{what}: {_short(value)} is not a row count")
    return value


def _sha(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise BackupError(f"{what}: {_short(value)} is not a SHA-256")
    return value


def _parquet(data: bytes, sha256: str, what: str) -> pd.DataFrame:
    import hashlib

    import pandas as pd

    if hashlib.sha256(data).hexdigest() != sha256:
        raise BackupError(f"{what}: SHA-256 does not match the manifest (the file was changed)")
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 - any parse failure of a hostile file is a refusal
        raise BackupError(f"{what}: not a readable Parquet file ({type(err).__name__})") from None


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder}: no {MANIFEST}; not a datafactory backup")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BackupError(f"{path}: larger than {MAX_MANIFEST_BYTES >> 20} MiB; not a datafactory manifest")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise BackupError(f"{path}: not valid JSON ({type(err).__name__})") from None
    if not isinstance(manifest, dict):
        raise BackupError(f"{path}: not a JSON object")
    return manifest


def verify_backup(folder: str | Path, catalog: dict[str, list[str]]) -> VerifiedBackup:
    """Check a backup folder against the target store's catalog (table -> columns); read nothing into it."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    key = backup_key()
    problem = signature_problem(manifest, key)
    if problem:
        raise BackupError(f"{folder}: {problem}")
    if key is not None:
        trust = f"signed, signature verified with {KEY_VARIABLE}"
    elif SIGNATURE_FIELD in manifest:
        trust = f"signed, but NOT VERIFIED: {KEY_VARIABLE} is not set here"
    else:
        trust = f"UNSIGNED: consistent with itself, but its origin is not proven (set {KEY_VARIABLE})"

    tables = _verified_tables(folder, manifest, catalog)
    history = _verified_history(folder, manifest, catalog.get(HISTORY_TABLE, HISTORY_COLUMNS))
    check = verify_chain(history)
    if not check.ok:
        raise BackupError(f"{folder}: history row {check.first_bad_seq}: {check.reason}")
    if check.head != manifest.get("history_head") or check.rows != manifest.get("history_rows"):
        raise BackupError(f"{folder}: the history does not end where the manifest says it does "
                          f"({check.rows} rows, head {check.head[:12]}…)")
    _leads_agree_with_history(folder, tables.get("leads"), history)
    _records_refer_to_what_is_there(folder, tables)
    tables[HISTORY_TABLE] = history
    return VerifiedBackup(folder, str(manifest.get("created_at", "?"))[:40], tables, check.rows, check.head, trust)


def _verified_tables(folder: Path, manifest: dict, catalog: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    listed = manifest.get("tables")
    if not isinstance(listed, dict):
        raise BackupError(f"{folder}: the manifest lists no tables")
    expected = sorted(name for name in catalog if name != HISTORY_TABLE)
    unknown = [name for name in listed if name not in expected]
    if unknown:
        raise BackupError(f"{folder}: the manifest names a table this store does not have: {_short(unknown[0])}")
    missing = [name for name in expected if name not in listed]
    if missing:
        raise BackupError(f"{folder}: table {missing[0]} is missing from the backup (every table of the store "
                          "must be in it)")
    tables = {}
    for name in expected:
        entry = listed[name]
        what = f"{folder.name}/{name}"
        if not isinstance(entry, dict):
            raise BackupError(f"{what}: the manifest entry is not an object")
        data = _read_inside(folder, _plain_name(entry.get("file"), what), what)
        frame = _parquet(data, _sha(entry.get("sha256"), what), f"{folder / str(entry['file'])}")
        rows = _count(entry.get("rows"), what)
        if len(frame) != rows:
            raise BackupError(f"{what}: the file holds {len(frame)} rows, the manifest says {rows}")
        extra = [str(c) for c in frame.columns if c not in catalog[name]]
        if extra:
            raise BackupError(f"{what}: column {_short(extra[0])} is not a column of the store's {name} table")
        tables[name] = frame
    return tables


def _chunk_name(entry: dict, what: str) -> str:
    name = entry.get("file")
    if isinstance(name, str) and name.startswith(_LEGACY_CHUNK_PREFIX):
        name = name[len(_LEGACY_CHUNK_PREFIX):]  # the one fixed form older backups wrote
    return _plain_name(name, what)


def _verified_history(folder: Path, manifest: dict, columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    chunks = manifest.get("history_chunks")
    if not isinstance(chunks, list):
        raise BackupError(f"{folder}: the manifest lists no history chunks")
    base = folder.parent / CHUNKS_FOLDER
    parts, expected_first = [], 1
    for number, entry in enumerate(chunks, start=1):
        what = f"{folder.name} history chunk {number}"
        if not isinstance(entry, dict):
            raise BackupError(f"{what}: the manifest entry is not an object")
        name = _chunk_name(entry, what)
        first, last = _count(entry.get("first"), what), _count(entry.get("last"), what)
        if first != expected_first or last < first:
            raise BackupError(f"{what}: covers rows {first}..{last}, expected to start at {expected_first}")
        frame = _parquet(_read_inside(base, name, what), _sha(entry.get("sha256"), what), f"{base / name}")
        if list(frame.columns) != list(columns):
            raise BackupError(f"{what}: its columns are not the history's columns")
        seqs = frame["seq"].astype("int64")
        if len(frame) != last - first + 1 or (len(frame) and (seqs.min() != first or seqs.max() != last)):
            raise BackupError(f"{what}: holds {len(frame)} rows, not rows {first}..{last}")
        parts.append(frame)
        expected_first = last + 1
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)


def _leads_agree_with_history(folder: Path, leads: pd.DataFrame | None, history: pd.DataFrame) -> None:
    """Each lead's tracked fields are what its history says last; the two name the same leads."""
    from datafactory_pipelines.history import text_column

    if leads is None:
        return
    fields = [f for f in TRACKED_FIELDS if f in leads.columns]
    in_history = set(history["lead_id"].astype(str))
    in_leads = set(leads["lead_id"].astype(str))
    gone = sorted(in_history - in_leads)
    if gone:
        raise BackupError(f"{folder}: {len(gone)} lead(s) in the history are not in the backup's leads "
                          f"(e.g. {gone[0]}): rows were cut")
    unexplained = sorted(in_leads - in_history)
    if unexplained:
        raise BackupError(f"{folder}: {len(unexplained)} lead(s) have no history (e.g. {unexplained[0]}): "
                          "they were added to the backup, or their history was cut")
    tracked = history[history["field"].isin(fields)].sort_values("seq")
    last = tracked.drop_duplicates(["lead_id", "field"], keep="last")
    lead_ids = leads["lead_id"].astype(str)
    differs, example = 0, ""
    for name in fields:  # a column at a time: a million leads never become one long frame
        said = last.loc[last["field"] == name].set_index("lead_id")["new_value"]
        expected = said.reindex(lead_ids).fillna("").astype(str).to_numpy()
        actual = text_column(leads[name]).to_numpy(zero_copy_only=False)
        wrong = (actual != expected).nonzero()[0]
        if len(wrong) and not example:
            example = f"{lead_ids.iloc[int(wrong[0])]} {name}"
        differs += len(wrong)
    if differs:
        raise BackupError(f"{folder}: {differs} lead field(s) differ from what the history says "
                          f"(e.g. {example}): the leads were changed, or the history was cut")


def _records_refer_to_what_is_there(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    records, leads, imports = tables.get("records"), tables.get("leads"), tables.get("imports")
    if records is None or leads is None or imports is None or records.empty:
        return
    lost = set(records["lead_id"].dropna().astype(str)) - set(leads["lead_id"].astype(str))
    if lost:
        raise BackupError(f"{folder}: {len(lost)} lead(s) named by records are not in the backup's leads")
    orphans = set(records["import_id"].dropna().astype(str)) - set(imports["import_id"].astype(str))
    if orphans:
        raise BackupError(f"{folder}: {len(orphans)} import(s) named by records are not in the backup's imports")
