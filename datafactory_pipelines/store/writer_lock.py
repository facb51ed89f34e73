"""One writer per lead store: a change (save, link, curate, history; an undo; a decision) runs whole.

The lock is a file beside the store (`leads.duckdb.writer.lock`), so it holds across processes: two
`datafactory import` commands, a Dagster run and the CLI next to it. Within a process it is
re-entrant, so a change may call other changes (an undo relinks) without deadlocking itself. A writer
that has to wait says so once, naming what it waits to do and who holds the lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

logger = logging.getLogger(__name__)

#: how long a writer waits for another one before giving up (seconds); DATAFACTORY_LOCK_WAIT overrides it
DEFAULT_WAIT_SECONDS = 3600.0


class StoreBusyError(RuntimeError):
    """Another writer held the store for longer than this one was willing to wait."""


class WriterLock:
    """The cross-process, re-entrant writer lock of one store file."""

    _by_path: dict[str, WriterLock] = {}
    _registry_guard = threading.Lock()

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self.holder_path = lock_path.with_name(lock_path.name + ".holder")
        # written each time a writer lets go: a process that delivers what others commit (the notification
        # dispatcher of `datafactory serve --dispatch`) watches it instead of querying the store
        self.changed_path = lock_path.with_name(lock_path.name.replace(".writer.lock", "") + ".changed")
        self._file_lock = FileLock(str(lock_path), thread_local=False)
        self._in_process = threading.RLock()
        self._depth = 0

    @classmethod
    def beside(cls, store_path: Path) -> WriterLock:
        """The one lock object of this process for the store at `store_path`."""
        lock_path = store_path.with_name(store_path.name + ".writer.lock")
        key = str(lock_path.resolve())
        with cls._registry_guard:
            if key not in cls._by_path:
                cls._by_path[key] = cls(lock_path)
            return cls._by_path[key]

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
                self._acquire_file(purpose, wait)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release_file()
        finally:
            self._in_process.release()

    def _acquire_file(self, purpose: str, wait: float) -> None:
        try:
            self._file_lock.acquire(timeout=0)
        except Timeout:
            logger.warning("waiting for another datafactory writer: %s (the lock is held by %s)", purpose,
                           self._holder())
            try:
                self._file_lock.acquire(timeout=wait)
            except Timeout as exc:
                raise StoreBusyError(f"gave up after {wait:.0f}s waiting for another datafactory writer "
                                     f"({self._holder()}): {purpose}") from exc
        with suppress(OSError):  # the note is a courtesy for the waiting writer's message
            self.holder_path.write_text(f"pid {os.getpid()}: {purpose}", encoding="utf-8")

    def _release_file(self) -> None:
        with suppress(OSError):
            self.holder_path.write_text("", encoding="utf-8")
        self._file_lock.release()
        with suppress(OSError):  # after the release: whoever is woken can take the lock at once. A new text each
            # time, not a touch: two releases within one tick of the file system's clock keep the same mtime
            self.changed_path.write_text(f"{os.getpid()} {time.time_ns()}", encoding="utf-8")

    def _holder(self) -> str:
        try:
            text = self.holder_path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return text or "another process"
