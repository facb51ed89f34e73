"""How the DuckDB store reaches its file: short-lived connections that wait while another process holds it,
bulk writes over one held connection, and DuckDB's memory cap during a change. The writer lock, atomic
changes, the change object and the reads are both backends' (store/sessions.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from datafactory_pipelines import duckdb_settings
from datafactory_pipelines.store.sessions import Sessions

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 120.0
# WAL size between checkpoints while `bulk_writes` holds the connection (DuckDB's default: 16 MiB, and a
# commit bigger than `auto_checkpoint_skip_wal_threshold` checkpoints at once: every 10k-row file). Measured
# saving the 100 files of the 1M base: a checkpoint costs about the same per record whenever it runs, but
# until it runs the saved rows stay in the buffer pool: at 1GB one checkpoint near the end, main process
# 14-16 s CPU and 2.3 GB peak; at 256MB four, 13-14 s and 1.6 GB; per-file (16MB) about twice the time.
BULK_CHECKPOINT_THRESHOLD = "256MB"


class DuckDBConnections(Sessions):
    path: Path

    @property
    def waiting_marker(self) -> Path:
        """Touched by a process waiting for the lock; the event server holds its connection only until then."""
        return self.path.with_name(self.path.name + ".waiting")

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Many writes in a row (a bulk import's files) over one connection: every transaction still
        commits (or rolls back) on its own, but the connection stays open and the database is checkpointed
        once at the end instead of after every few MB (a checkpoint rewrites the records' index: at a
        million records it costs more than the import it follows)."""
        if self._in_shared():  # already inside one connection (an atomic change)
            yield
            return
        con = self._connect()
        con.execute(f"SET checkpoint_threshold = '{BULK_CHECKPOINT_THRESHOLD}'")
        self._shared, self._shared_thread, self._commit_each = con, threading.get_ident(), True
        try:
            yield
            con.execute("CHECKPOINT")
        finally:
            self._shared, self._shared_thread, self._commit_each = None, None, False
            con.close()

    @contextmanager
    def memory_budget(self, limit: str) -> Iterator[None]:
        """Within an atomic change, DuckDB's buffer memory capped at `limit` (a DuckDB size) while Python
        holds big frames: lowering the cap evicts the blocks the change's queries left cached (at 1M records
        1.4 GB after the golden-record SQL), so they are not resident beside the frames. Back to the
        configured cap after. Outside an atomic change (no connection kept) it does nothing."""
        con = self._shared if self._in_shared() else None
        if con is None:
            yield
            return
        try:
            con.execute(f"SET memory_limit = '{limit}'")
        except duckdb.Error as exc:  # blocks in use cannot be evicted: the cap stays where it was
            log.info("DuckDB memory cap not lowered to %s: %s", limit, exc)
        try:
            yield
        finally:
            con.execute(f"SET memory_limit = '{duckdb_settings.memory_limit()}'")

    # -- connections -------------------------------------------------------------------------
    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.05
        while True:
            try:
                return duckdb_settings.connect(self.path, read_only=read_only and self.path.exists())
            except duckdb.IOException as exc:  # another process holds the write lock
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                self.waiting_marker.touch()  # a long-lived holder (datafactory serve) sees it and lets go
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
