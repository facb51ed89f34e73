"""The event table: storing accepted events (idempotent on source + id) and reading the feed.

Every function that writes takes the store's change object (store/change.py) inside its transaction, so
the HTTP server's batched writer, event files and tests store events by the same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from datafactory_pipelines.events.json_guard import parse_limited
from datafactory_pipelines.events.types import EventError, ValidEvent, validate_event, validate_events
from datafactory_pipelines.ingest.readers import file_sha256
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.change import StoreChange
from datafactory_pipelines.store.writer_lock import StoreBusyError

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


MAX_LINE_BYTES = 1_048_576  # one event line: as much as one HTTP request may carry
BAD_LINE_KEPT_BYTES = 4096  # of a line above the limit, this much goes to rejected/ (the whole file to processed/)


def _read_lines(handle: BinaryIO) -> Iterator[tuple[int, bytes, str]]:
    """(line number, raw bytes, why the line is refused or "") for each line of a binary file; a line above
    MAX_LINE_BYTES is read past in pieces, never held whole."""
    number = 0
    while True:
        chunk = handle.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            size = len(chunk)
            while True:  # the rest of this line
                more = handle.readline(MAX_LINE_BYTES)
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield number, chunk[:BAD_LINE_KEPT_BYTES], (f"line of {size} bytes; at most {MAX_LINE_BYTES} "
                                                        f"(the first {BAD_LINE_KEPT_BYTES} bytes kept here)")
            continue
        yield number, chunk, ""


def _decoded(number: int, raw: bytes | str) -> tuple[str, str]:
    """The line's text, or "" and why it cannot be read (invalid UTF-8 named with its byte and column)."""
    if isinstance(raw, str):
        return raw, ""
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a byte-order mark, as Windows tools write it
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError as err:
        return "", f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"


def parse_event_lines(lines: Iterable[str | bytes | tuple[int, bytes, str]], file_name: str) -> tuple[
        list[ValidEvent], list[tuple[str | bytes, str]]]:
    """Valid events and (raw line, error naming file, line and field) for the rest. A bad line never stops
    the others: not UTF-8, too long, not JSON, nested too deep, or not a valid event, it is set aside."""
    valid: list[ValidEvent] = []
    bad: list[tuple[int, str | bytes, str]] = []
    parsed: list[tuple[int, str | bytes, object]] = []
    for position, item in enumerate(lines, start=1):
        number, line, refused = item if isinstance(item, tuple) else (position, item, "")
        where = f"{file_name} line {number}"
        if refused:
            bad.append((number, line, f"{where}: {refused}"))
            continue
        text, refused = _decoded(number, line)
        if refused:
            bad.append((number, line, f"{where}: {refused}"))
            continue
        text = text.strip()
        if not text:
            continue
        try:
            parsed.append((number, line, parse_limited(text)))
        except json.JSONDecodeError as err:
            bad.append((number, line, f"{where}: not JSON ({err.msg}, column {err.colno})"))
        except (ValueError, RecursionError) as err:
            bad.append((number, line, f"{where}: {err}"))
    for (number, line, _), result in zip(parsed, validate_guarded([raw for _, _, raw in parsed]), strict=True):
        if isinstance(result, EventError):
            bad.append((number, line, f"{file_name} line {number}" + (f" (id {result.event_id})" if result.event_id else "")
                        + f": {result.field}: {result.message}"))
        else:
            valid.append(result)
    bad.sort(key=lambda item: item[0])  # in the file's order
    return valid, [(line, reason) for _, line, reason in bad]


def validate_guarded(raws: list[object]) -> list[ValidEvent | EventError]:
    """validate_events, and should a value make the batch check itself fail, each event on its own."""
    try:
        return validate_events(raws)
    except Exception:  # noqa: BLE001 - one hostile line must not cost the file's other events
        logger.exception("checking events together failed; checking them one by one")
    results: list[ValidEvent | EventError] = []
    for i, raw in enumerate(raws):
        try:
            results.append(validate_event(raw, i))
        except Exception as err:  # noqa: BLE001
            results.append(EventError(i, None, "event", f"cannot be checked ({type(err).__name__})"))
    return results


def _line_bytes(line: str | bytes) -> bytes:
    data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
    return data if data.endswith(b"\n") else data + b"\n"


def ingest_event_file(store: LeadStore, path: Path, processed: Path, rejected: Path) -> EventFileOutcome:
    """Accept a JSON Lines file of events as POST /events would; bad lines go to rejected/ with the reasons
    (file, line and why), and the rest of the file is accepted."""
    outcome = EventFileOutcome(path)
    with path.open("rb") as handle:
        valid, bad = parse_event_lines(_read_lines(handle), path.name)
    stored = store_events(store, valid, via=f"file:{path.name}")
    outcome.accepted = sum(s.status == "accepted" for s in stored)
    outcome.duplicates = sum(s.status == "duplicate" for s in stored)
    stamp = file_sha256(path)[:10]
    if bad:
        rejected.mkdir(parents=True, exist_ok=True)
        (rejected / f"{path.stem}-{stamp}.bad.jsonl").write_bytes(b"".join(_line_bytes(line) for line, _ in bad))
        (rejected / f"{path.stem}-{stamp}.error.txt").write_text(
            "\n".join(reason for _, reason in bad) + "\n", encoding="utf-8")
        outcome.errors = [reason for _, reason in bad]
    processed.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), processed / f"{path.stem}-{stamp}{path.suffix}")
    logger.info("%s: %d events accepted, %d replays, %d bad lines", path.name, outcome.accepted,
                outcome.duplicates, len(bad))
    return outcome


def set_aside_event_file(path: Path, rejected: Path, reason: str) -> Path:
    """Move a whole event file that could not be taken in to rejected/, with why, so the feed goes on."""
    rejected.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    target = rejected / f"{path.stem}-{stamp}{path.suffix}"
    shutil.move(str(path), target)
    target.with_name(f"{target.stem}.error.txt").write_text(f"{path.name}: {reason}\n", encoding="utf-8")
    logger.warning("%s set aside in %s: %s", path.name, rejected, reason)
    return target


def ingest_event_files(store: LeadStore, files: list[Path], processed: Path, rejected: Path) -> list[
        EventFileOutcome]:
    """Each file on its own: a file that fails as a whole (unreadable, or the store refuses it) is set aside
    in rejected/ with the reason and the next file goes on; a busy store leaves the file for the next try."""
    outcomes = []
    for path in files:
        try:
            outcomes.append(ingest_event_file(store, path, processed, rejected))
        except StoreBusyError:
            logger.info("%s waits: the store is busy", path.name)
        except Exception as err:  # noqa: BLE001 - one file must not block the feed
            logger.exception("event file %s could not be taken in", path.name)
            set_aside_event_file(path, rejected, f"could not be taken in: {type(err).__name__}: {err}"[:2000])
            outcomes.append(EventFileOutcome(path, errors=[f"{path.name}: {type(err).__name__}"]))
    return outcomes
