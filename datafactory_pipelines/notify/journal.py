"""The dispatcher's journal: one JSON line per batch of events applied and per delivery pass, counts only.

The dispatcher of `datafactory serve` writes it after each commit; Dagster's `dispatch_journal_sensor`
reads it from a byte offset (its cursor) and records each line as a materialization of `lead_events` or
`notification_deliveries`, so a data engineer sees every batch and every delivery in Dagster without a
run per batch, and without the sensor opening the lead store (which the server holds).
No personal data: event types, rule names, outcomes and counts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EVENTS = "events"  # a batch of events applied by the rules
DELIVERIES = "deliveries"  # a delivery pass: messages routed, deliveries attempted


def journal_path(store_path: str | os.PathLike[str]) -> Path:
    path = Path(store_path)
    return path.with_name(path.name + ".dispatch.jsonl")


@dataclass
class JournalEntry:
    kind: str
    at: str  # ISO time, UTC
    counts: dict[str, Any]
    offset: int  # where the line ends in the file: a reader's next cursor


class Journal:
    """Appends entries, each one line written and flushed whole (a reader never sees half a line as done)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.Lock()

    def append(self, kind: str, counts: dict[str, Any]) -> None:
        line = json.dumps({"kind": kind, "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                           "counts": counts}, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._guard, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


def read_journal(path: Path, offset: int, limit: int = 500) -> list[JournalEntry]:
    """Whole lines after byte `offset` (at most `limit`); a line still being written is left for later.
    A journal shorter than the offset (replaced by hand) is read again from its start."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return []
    if size < offset:
        offset = 0
    entries: list[JournalEntry] = []
    with path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            if not raw.endswith(b"\n") or len(entries) >= limit:
                break
            offset += len(raw)
            try:
                item = json.loads(raw)
                entries.append(JournalEntry(str(item["kind"]), str(item["at"]), dict(item["counts"]), offset))
            except (ValueError, KeyError, TypeError) as err:  # a damaged line is skipped, and said so
                log.warning("%s: skipped a line before byte %d: %s", path, offset, err)
    return entries
