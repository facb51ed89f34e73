"""THE one place the hash-chained history is appended (every writer of every backend calls `append_history`).

Read the chain's head, chain the new rows after it (`history.chain_rows` for a few rows without frames,
`history.chain_table` for Arrow and pandas), insert them, and hand their sequence range to the outbox: all
inside the caller's transaction, under the store's writer lock. A backend supplies the two statements that
differ per dialect (`HistoryTable`: read the head, insert rows and their outbox messages); the chain itself,
its format and its order are made here only, so every backend writes the same bytes.

Big appends (a full pass: millions of rows) come as an iterable of parts made lazily: each part is chained
while the backend inserts the part before on a writer thread (the database releases the GIL): the chain,
sequential by nature, and the insert overlap on two cores, and memory holds at most two parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from datafactory_pipelines.history import GENESIS, chain_frame, chain_rows, chain_table

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

class HistoryTable(Protocol):
    """What a backend does for `append_history`, inside the change's open transaction."""

    def history_head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last history row; None while the history is empty."""
        ...

    def insert_history(self, rows: list[tuple] | pa.Table) -> None:
        """Insert chained rows (HISTORY_COLUMNS, in seq order) and the outbox messages for their seq range."""
        ...


@dataclass
class HistoryPart:
    """Changes to chain: (lead_id, field, old_value, new_value) as a list of tuples, an Arrow table or a pandas
    frame; `action`, `actor` and `cause` one for all rows or one per row (an Arrow array or pandas Series)."""

    changes: Any
    action: Any
    actor: Any
    cause: Any


def append_history(table: HistoryTable, parts: Iterable[HistoryPart], meanwhile: Sequence[Callable[[], None]] = (),
                   last: Sequence[Callable[[], None]] = (), at: datetime | None = None) -> tuple[int, int]:
    """Append `parts` to the history, in order, chained after its head; returns (first seq, last seq) written
    (first > last when nothing was). `meanwhile`: the change's other writes, run on the writer's thread before
    the first part is inserted (while it is chained); `last`: the ones run after the last part."""
    head = table.history_head()
    seq, prev = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS)
    first = seq
    at = at or datetime.now(timezone.utc).replace(tzinfo=None)
    with _InOrderWriter(table.insert_history) as writer:
        for job in meanwhile:
            writer.meanwhile(job)
        for part in parts:
            rows = _chained(part, seq, prev, at)
            count = len(rows) if isinstance(rows, list) else rows.num_rows
            if not count:
                continue
            seq += count
            prev = rows[-1][-1] if isinstance(rows, list) else rows.column("hash")[count - 1].as_py()
            writer.put(rows)
        for job in last:
            writer.meanwhile(job)
    return first, seq - 1


def _chained(part: HistoryPart, seq: int, prev: str, at: datetime) -> list[tuple] | pa.Table:
    if isinstance(part.changes, list):
        return chain_rows(part.changes, seq, prev, at, part.action, part.actor, part.cause) if part.changes else []
    if hasattr(part.changes, "num_rows"):  # Arrow
        return chain_table(part.changes, seq, prev, at, part.action, part.actor, part.cause)
    frame: pd.DataFrame = part.changes
    if frame.empty:
        return []
    return chain_frame(frame, seq, prev, at, part.action, part.actor, part.cause)


class _InOrderWriter:
    """Runs `write` on one background thread, one item at a time and in order, while the caller makes the
    next item: at most one item waits and one is written (memory stays at two slices). An error in a write
    is raised in the caller (at its next `put` or at the end); nothing after it is written."""

    def __init__(self, write: Callable[[Any], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-writer")
        self._pending: Future | None = None
        self._jobs: list[Future] = []

    def put(self, item: Any) -> None:
        self._wait()
        self._pending = self._pool.submit(self._write, item)

    def meanwhile(self, job: Callable[[], None]) -> None:
        """Run `job` on the writer's thread before the items put after it (it queues: the caller goes on)."""
        self._jobs.append(self._pool.submit(job))

    def _wait(self) -> None:
        while self._jobs:  # run on the one thread in order: done before any item put after them
            self._jobs.pop(0).result()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> _InOrderWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._wait()  # the caller's connection is used again only after the last write is done
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)  # after an error: nothing queued runs
