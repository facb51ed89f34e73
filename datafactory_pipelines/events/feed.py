"""The event table: storing accepted events (idempotent on source + id) and reading the feed.

Every function that writes takes an open DuckDB connection inside a transaction, so the HTTP
server's writer thread, event files and tests store events by the same code.
"""

from __future__ import annotations

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


def insert_events(con: duckdb.DuckDBPyConnection, events: list[ValidEvent], via: str) -> list[StoredEvent]:
    """Store the events not seen before (same source and id = a replay: acknowledged, nothing changes).

    Runs inside the caller's transaction; sequence numbers follow the store's commit order.
    """
    if not events:
        return []
    keys = pd.DataFrame({"i": range(len(events)), "source": [e.source for e in events],
                         "event_id": [e.event_id for e in events]})
    if len(events) == 1:
        rows = con.execute("SELECT 0, seq FROM events WHERE source = ? AND event_id = ?",
                           [events[0].source, events[0].event_id]).fetchall()
    else:
        con.register("incoming_keys", keys)
        rows = con.execute("SELECT k.i, e.seq FROM incoming_keys k JOIN events e "
                           "ON e.source = k.source AND e.event_id = k.event_id").fetchall()
        con.unregister("incoming_keys")
    known = {int(i): int(seq) for i, seq in rows}
    results: list[StoredEvent | None] = [None] * len(events)
    next_seq = int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchall()[0][0])
    first_in_batch: dict[tuple[str, str], int] = {}
    fresh = []
    for i, event in enumerate(events):
        key = (event.source, event.event_id)
        if i in known:
            results[i] = StoredEvent("duplicate", known[i])
        elif key in first_in_batch:  # the same event twice in one batch
            results[i] = StoredEvent("duplicate", first_in_batch[key])
        else:
            first_in_batch[key] = next_seq
            results[i] = StoredEvent("accepted", next_seq)
            fresh.append((next_seq, event))
            next_seq += 1
    if fresh:
        now = _now()
        rows = [(seq, e.source, e.event_id, e.type, e.subject, e.time, json.dumps(e.data, ensure_ascii=False),
                 json.dumps(e.extensions, ensure_ascii=False) if e.extensions else None, now, via, RECEIVED,
                 None, None, None) for seq, e in fresh]
        if len(rows) == 1:
            con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(rows[0]))
        else:
            frame = pd.DataFrame(rows, columns=["seq", "source", "event_id", "type", "subject", "event_time", "data",
                                                "extensions", "received_at", "via", "status", "lead_id", "outcome",
                                                "applied_at"])
            frame = frame.astype({c: object for c in ("subject", "event_time", "extensions", "lead_id", "outcome")})
            frame["applied_at"] = pd.Series([pd.NaT] * len(frame), dtype="datetime64[us]")
            con.register("incoming_events", frame)
            con.execute("INSERT INTO events SELECT * FROM incoming_events")
            con.unregister("incoming_events")
    return [r for r in results if r is not None]


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


def waiting_events(store: LeadStore, first_seq: int, last_seq: int) -> pd.DataFrame:
    return store._query(  # noqa: SLF001
        "SELECT * FROM events WHERE seq BETWEEN ? AND ? AND status = ? ORDER BY seq", [first_seq, last_seq, RECEIVED])


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
