"""One writer per lead store: a change (save, link, curate, history; an undo; a decision) runs whole.

What both backends share is here: the lock is re-entrant within a process, so a change may call other
changes (an undo relinks) without deadlocking itself; a writer that has to wait says so once, naming what it
waits to do and who holds the lock, and gives up with StoreBusyError after its wait. Taking and releasing
the lock across processes is the backend's: a lock file beside a DuckDB store (store/duckdb/file_lock.py),
a session advisory lock on PostgreSQL (store/postgres/advisory_lock.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

logger = logging.getLogger(__name__)

#: how long a writer waits for another one before giving up (seconds); DATAFACTORY_LOCK_WAIT overrides it
DEFAULT_WAIT_SECONDS = 3600.0


class StoreBusyError(RuntimeError):
    """Another writer held the store for longer than this one was willing to wait."""


def changed_marker(store_path: Path) -> Path:
    """The file rewritten each time a writer of the store at `store_path` (a DuckDB file, or a PostgreSQL
    store's side folder) lets go: a process that delivers what others commit (the notification dispatcher of
    `datafactory serve --dispatch`) watches it instead of querying the store."""
    return store_path.with_name(store_path.name + ".changed")


class WriterLock:
    """The re-entrant writer lock of one store; a backend takes and releases it across processes."""

    def __init__(self, changed_path: Path) -> None:
        self.changed_path = changed_path
        self._in_process = threading.RLock()
        self._depth = 0

    @contextmanager
    def hold(self, purpose: str, wait_seconds: float | None = None) -> Iterator[None]:
        wait = wait_seconds if wait_seconds is not None else float(
            os.environ.get("DATAFACTORY_LOCK_WAIT", DEFAULT_WAIT_SECONDS))
        if not self._in_process.acquire(blocking=False):
            logger.warning("waiting for another datafactory writer (in this process): %s", purpose)
            if not self._in_process.acquire(timeout=wait):
                raise StoreBusyError(f"gave up after {wait:.0f}s waiting for another writer: {purpose}")
        try:
            if self._depth == 0:
                self._acquire(purpose, wait)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()
        finally:
            self._in_process.release()

    def _acquire(self, purpose: str, wait: float) -> None:
        """Take the lock across processes, waiting at most `wait` seconds (then StoreBusyError)."""
        raise NotImplementedError

    def _release(self) -> None:
        """Let go of the lock across processes, then `_mark_changed`."""
        raise NotImplementedError

    def _mark_changed(self) -> None:
        """After the release, so whoever is woken can take the lock at once. A new text each time, not a touch:
        two releases within one tick of the file system's clock keep the same mtime."""
        with suppress(OSError):
            self.changed_path.parent.mkdir(parents=True, exist_ok=True)
            self.changed_path.write_text(f"{os.getpid()} {time.time_ns()}", encoding="utf-8")
