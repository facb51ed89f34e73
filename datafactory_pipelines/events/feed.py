"""The event table: storing accepted events (idempotent on source + id) and reading the feed.

Every function that writes takes an open DuckDB connection inside a transaction, so the HTTP
server's writer thread, event files and tests store events by the same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from datafactory_pipelines.events.types import EventError, ValidEvent, validate_events
from datafactory_pipelines.ingest.readers import file_sha256
from datafactory_pipelines.store import LeadStore

logger = logging.getLogger(__name__)

RECEIVED = "received"  # stored, not yet applied
EVENT_FILE_SUFFIXES = {".jsonl", ".ndjson"}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class StoredEvent:
    status: str  # accepted | duplicate
    seq: int


def key_hash(source: str, event_id: str) -> int:
    """A signed 64-bit hash of (source, id): the replay check scans this column, then compares exactly."""
    digest = hashlib.blake2b(f"{source}\x1f{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def insert_events(con: duckdb.DuckDBPyConnection, events: list[ValidEvent], via: str) -> list[StoredEvent]:
    """Store the events not seen before (same source and id = a replay: acknowledged, nothing changes).

    Runs inside the caller's transaction, under the store's writer lock (store.exclusive or the
    server's writer): sequence numbers follow the commit order, and no other writer interleaves.
    """
    if not events:
        return []
    hashes = [key_hash(e.source, e.event_id) for e in events]
    listed = ", ".join(str(h) for h in set(hashes))  # integers only
    rows = con.execute(f"SELECT key_hash, source, event_id, seq FROM events WHERE key_hash IN ({listed})").fetchall()
    known = {(source, event_id): int(seq) for _, source, event_id, seq in rows}
    next_seq = int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchall()[0][0])
    results: list[StoredEvent] = []
    fresh = []
    for event, digest in zip(events, hashes, strict=True):
        key = (event.source, event.event_id)
        if key in known:  # stored before, or earlier in this same batch
            results.append(StoredEvent("duplicate", known[key]))
            continue
        known[key] = next_seq
        results.append(StoredEvent("accepted", next_seq))
        fresh.append((next_seq, digest, event))
        next_seq += 1
    if fresh:
        now = _now()
        rows = [(seq, digest, e.source, e.event_id, e.type, e.subject, e.time, json.dumps(e.data, ensure_ascii=False),
                 json.dumps(e.extensions, ensure_ascii=False) if e.extensions else None, now, via, RECEIVED)
                for seq, digest, e in fresh]
        columns = "seq, key_hash, source, event_id, type, subject, event_time, data, extensions, received_at, via, status"
        if len(rows) == 1:
            con.execute(f"INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(rows[0]))
        else:
            frame = pd.DataFrame(rows, columns=[c.strip() for c in columns.split(",")])
            frame = frame.astype({c: object for c in ("subject", "event_time", "extensions")})
            con.register("incoming_events", frame)
            con.execute(f"INSERT INTO events ({columns}) SELECT * FROM incoming_events")
            con.unregister("incoming_events")
    return results


def store_events(store: LeadStore, events: list[ValidEvent], via: str) -> list[StoredEvent]:
    """Store events in one short transaction of their own."""
    with store.exclusive(f"store {len(events)} event(s) from {via}", atomic=True), \
            store._transaction() as con:  # noqa: SLF001 - the change's one transaction
        return insert_events(con, events, via)


def feed_window(store: LeadStore, after_seq: int, limit: int) -> tuple[int, int, int] | None:
    """The next batch of events waiting to be applied: (first seq, last seq, count), or None."""
    rows = store._query(  # noqa: SLF001
        "SELECT seq FROM events WHERE seq > ? AND status = ? ORDER BY seq LIMIT ?", [after_seq, RECEIVED, limit])
    if rows.empty:
        return None
    return int(rows["seq"].iloc[0]), int(rows["seq"].iloc[-1]), len(rows)


def event_counts(store: LeadStore) -> pd.DataFrame:
    return store._query("SELECT type, status, count(*) AS n FROM events GROUP BY ALL ORDER BY type, status")  # noqa: SLF001


# -- event files -----------------------------------------------------------------------------------
@dataclass
class EventFileOutcome:
    path: Path
    accepted: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


def parse_event_lines(lines: Iterable[str], file_name: str) -> tuple[list[ValidEvent], list[tuple[str, str]]]:
    """Valid events and (raw line, error naming file, line and field) for the rest."""
    valid: list[ValidEvent] = []
    bad: list[tuple[str, str]] = []
    parsed: list[tuple[int, str, object]] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            parsed.append((number, line, json.loads(text)))
        except json.JSONDecodeError as err:
            bad.append((line, f"{file_name} line {number}: not JSON ({err.msg}, column {err.colno})"))
    checked = validate_events([raw for _, _, raw in parsed])
    for (number, line, _), result in zip(parsed, checked, strict=True):
        if isinstance(result, EventError):
            bad.append((line, f"{file_name} line {number}" + (f" (id {result.event_id})" if result.event_id else "")
                        + f": {result.field}: {result.message}"))
        else:
            valid.append(result)
    return valid, bad


def ingest_event_file(store: LeadStore, path: Path, processed: Path, rejected: Path) -> EventFileOutcome:
    """Accept a JSON Lines file of events as POST /events would; bad lines go to rejected/ with the reasons."""
    outcome = EventFileOutcome(path)
    with path.open(encoding="utf-8-sig") as handle:
        valid, bad = parse_event_lines(handle, path.name)
    stored = store_events(store, valid, via=f"file:{path.name}")
    outcome.accepted = sum(s.status == "accepted" for s in stored)
    outcome.duplicates = sum(s.status == "duplicate" for s in stored)
    stamp = file_sha256(path)[:10]
    if bad:
        rejected.mkdir(parents=True, exist_ok=True)
        (rejected / f"{path.stem}-{stamp}.bad.jsonl").write_text("".join(
            line if line.endswith("\n") else line + "\n" for line, _ in bad), encoding="utf-8")
        (rejected / f"{path.stem}-{stamp}.error.txt").write_text(
            "\n".join(reason for _, reason in bad) + "\n", encoding="utf-8")
        outcome.errors = [reason for _, reason in bad]
    processed.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), processed / f"{path.stem}-{stamp}{path.suffix}")
    logger.info("%s: %d events accepted, %d replays, %d bad lines", path.name, outcome.accepted,
                outcome.duplicates, len(bad))
    return outcome
