"""The DuckDB store's writer lock across processes: a file beside the store (`leads.duckdb.writer.lock`), so
it holds for two `datafactory import` commands, a Dagster run and the CLI next to it. What every writer lock
does (re-entrant in a process, the wait and its message) is store/writer_lock.py's.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import suppress
from pathlib import Path

from filelock import FileLock, Timeout

from datafactory_pipelines.store.writer_lock import StoreBusyError, WriterLock, changed_marker

logger = logging.getLogger(__name__)


class FileWriterLock(WriterLock):
    """The cross-process, re-entrant writer lock of one store file."""

    _by_path: dict[str, FileWriterLock] = {}
    _registry_guard = threading.Lock()

    def __init__(self, store_path: Path) -> None:
        self.lock_path = store_path.with_name(store_path.name + ".writer.lock")
        self.holder_path = self.lock_path.with_name(self.lock_path.name + ".holder")
        super().__init__(changed_marker(store_path))
        self._file_lock = FileLock(str(self.lock_path), thread_local=False)

    @classmethod
    def beside(cls, store_path: Path) -> FileWriterLock:
        """The one lock object of this process for the store at `store_path`."""
        key = str(store_path.with_name(store_path.name + ".writer.lock").resolve())
        with cls._registry_guard:
            if key not in cls._by_path:
                cls._by_path[key] = cls(store_path)
            return cls._by_path[key]

    def _acquire(self, purpose: str, wait: float) -> None:
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

    def _release(self) -> None:
        with suppress(OSError):
            self.holder_path.write_text("", encoding="utf-8")
        self._file_lock.release()
        self._mark_changed()

    def _holder(self) -> str:
        try:
            text = self.holder_path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return text or "another process"
