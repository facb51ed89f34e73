"""The event table: storing accepted events (idempotent on source + id) and reading the feed.

Every function that writes takes the store's change object (store/change.py) inside its transaction, so
the HTTP server's batched writer, event files and tests store events by the same code.
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
from typing import TYPE_CHECKING

from datafactory_pipelines.events.types import EventError, ValidEvent, validate_events
from datafactory_pipelines.ingest.readers import file_sha256
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.change import StoreChange

if TYPE_CHECKING:
    import pandas as pd

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


def insert_events(tx: StoreChange, events: list[ValidEvent], via: str) -> list[StoredEvent]:
    """Store the events not seen before (same source and id = a replay: acknowledged, nothing changes).

    Runs inside the caller's change (store.change or the server's batched writer), under the store's writer
    lock: sequence numbers follow the commit order, and no other writer interleaves.
    """
    if not events:
        return []
    hashes = [key_hash(e.source, e.event_id) for e in events]
    known = {(source, event_id): int(seq) for _, source, event_id, seq in tx.events_with_key_hashes(set(hashes))}
    next_seq = tx.next_event_seq()
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
        tx.insert_events([(seq, digest, e.source, e.event_id, e.type, e.subject, e.time,
                           json.dumps(e.data, ensure_ascii=False),
                           json.dumps(e.extensions, ensure_ascii=False) if e.extensions else None, now, via, RECEIVED)
                          for seq, digest, e in fresh])
    return results


def store_events(store: LeadStore, events: list[ValidEvent], via: str) -> list[StoredEvent]:
    """Store events in one short transaction of their own."""
    with store.change(f"store {len(events)} event(s) from {via}") as tx:
        return insert_events(tx, events, via)


def feed_window(store: LeadStore, after_seq: int, limit: int) -> tuple[int, int, int] | None:
    """The next batch of events waiting to be applied: (first seq, last seq, count), or None."""
    seqs = store.events_waiting_after(after_seq, RECEIVED, limit)
    if not seqs:
        return None
    return seqs[0], seqs[-1], len(seqs)


def event_counts(store: LeadStore) -> pd.DataFrame:
    return store.event_counts()


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
