"""The PostgreSQL store's writer lock: a session advisory lock, so it holds across processes and machines.

What every writer lock does (a whole change runs alone, re-entrant within a process, a waiting writer says
once what it waits to do and who holds the lock) is store/writer_lock.py's; here the holder is named by its
session's application_name, which names its purpose. The lock lives on its own session: if the process dies,
PostgreSQL drops the session and the lock with it. Releasing it NOTIFYs `datafactory_changed`, and touches
the local marker file the notification dispatcher watches (the same file as on DuckDB).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import suppress
from pathlib import Path

from datafactory_pipelines.store.writer_lock import StoreBusyError, WriterLock, changed_marker

logger = logging.getLogger(__name__)

#: the advisory lock key of the lead store's writer ("datafactory" in ASCII, folded into a bigint)
WRITER_KEY = 0x6461746166616374
#: the key that serializes schema migrations of processes opening the store together
MIGRATION_KEY = WRITER_KEY + 1


class AdvisoryLock(WriterLock):
    _by_url: dict[str, AdvisoryLock] = {}
    _registry_guard = threading.Lock()

    def __init__(self, url: str, marker_dir: Path) -> None:
        self.url = url
        # the same file as beside a DuckDB store: what the notification dispatcher watches
        super().__init__(changed_marker(marker_dir))
        self._session = None

    @classmethod
    def of(cls, url: str, marker_dir: Path) -> AdvisoryLock:
        with cls._registry_guard:
            if url not in cls._by_url:
                cls._by_url[url] = cls(url, marker_dir)
            return cls._by_url[url]

    def _connect(self):  # noqa: ANN202 - psycopg is imported here only
        import psycopg

        if self._session is None or self._session.closed:
            self._session = psycopg.connect(self.url, autocommit=True, application_name="datafactory writer")
        return self._session

    def _acquire(self, purpose: str, wait: float) -> None:
        session = self._connect()
        label = f"datafactory writer pid {os.getpid()}: {purpose}"[:63]
        session.execute("SELECT set_config('application_name', %s, false)", [label])
        if session.execute("SELECT pg_try_advisory_lock(%s)", [WRITER_KEY]).fetchone()[0]:
            return
        logger.warning("waiting for another datafactory writer: %s (the lock is held by %s)", purpose,
                       self.holder())
        deadline = time.monotonic() + wait
        delay = 0.02
        while not session.execute("SELECT pg_try_advisory_lock(%s)", [WRITER_KEY]).fetchone()[0]:
            if time.monotonic() > deadline:
                raise StoreBusyError(f"gave up after {wait:.0f}s waiting for another datafactory writer "
                                     f"({self.holder()}): {purpose}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _release(self) -> None:
        session = self._session
        if session is None or session.closed:
            return
        try:
            session.execute("SELECT pg_advisory_unlock(%s)", [WRITER_KEY])
            session.execute("SELECT set_config('application_name', 'datafactory writer (idle)', false)")
            session.execute("NOTIFY datafactory_changed")
        except Exception:  # noqa: BLE001 - a lost session has lost its lock already
            logger.warning("the writer lock's session was lost; PostgreSQL released the lock with it")
            with suppress(Exception):
                session.close()
            self._session = None
        self._mark_changed()  # the local dispatcher's cue, as with the DuckDB lock file

    @classmethod
    def close_all(cls) -> None:
        """Close every idle lock session of this process and forget them (a process that worked on many
        databases, e.g. a test session: one session each would stay open until the process ends)."""
        with cls._registry_guard:
            locks, cls._by_url = list(cls._by_url.values()), {}
        for lock in locks:
            lock.close()

    def close(self) -> None:
        """Close the lock's session when no change holds it."""
        with self._in_process:
            if self._depth == 0 and self._session is not None:
                self._session.close()
                self._session = None

    def holder(self) -> str:
        """Who holds the writer lock (its application_name), or 'another process'."""
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True) as probe:
                row = probe.execute(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND "
                    "((l.classid::bigint << 32) | l.objid::bigint) = %s LIMIT 1", [WRITER_KEY]).fetchone()
        except Exception:  # noqa: BLE001 - only for the message
            row = None
        return row[0] if row and row[0] else "another process"
