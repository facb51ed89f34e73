"""How the DuckDB store reaches its file: short-lived connections that wait while another
process holds it, the change-level writer lock, atomic changes over one shared connection, bulk writes,
and the change object handed out for a change (never the connection)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from datafactory_pipelines import duckdb_settings
from datafactory_pipelines.store.batched_writer import BatchedWriter
from datafactory_pipelines.store.change_object.sql_change import DiagnosticChange, SqlChange

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 120.0
# WAL size between checkpoints while `bulk_writes` holds the connection (DuckDB's default: 16 MiB, and a
# commit bigger than `auto_checkpoint_skip_wal_threshold` checkpoints at once: every 10k-row file). Measured
# saving the 100 files of the 1M base: a checkpoint costs about the same per record whenever it runs, but
# until it runs the saved rows stay in the buffer pool: at 1GB one checkpoint near the end, main process
# 14-16 s CPU and 2.3 GB peak; at 256MB four, 13-14 s and 1.6 GB; per-file (16MB) about twice the time.
BULK_CHECKPOINT_THRESHOLD = "256MB"


class DuckDBConnections:
    path: Path

    @property
    def waiting_marker(self) -> Path:
        """Touched by a process waiting for the lock; the event server holds its connection only until then."""
        return self.path.with_name(self.path.name + ".waiting")


    # -- the change-level lock ----------------------------------------------------------------
    @contextmanager
    def exclusive(self, purpose: str, atomic: bool = False) -> Iterator[None]:
        """Run a whole change alone: no other writer (process or thread) changes the store meanwhile.

        Re-entrant within a process. With `atomic`, everything inside is one transaction: it all
        happens, or (on any error) none of it does.
        """
        with self._writer_lock.hold(purpose):
            if not atomic or self._in_shared():
                yield
                return
            con = self._connect()
            con.execute("BEGIN TRANSACTION")
            self._shared, self._shared_thread = con, threading.get_ident()
            try:
                yield
            except BaseException:
                con.execute("ROLLBACK")
                raise
            else:
                con.execute("COMMIT")
            finally:
                self._shared, self._shared_thread = None, None
                con.close()


    def _in_shared(self) -> bool:
        return self._shared is not None and self._shared_thread == threading.get_ident()


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


    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._in_shared() and not self._commit_each:  # an atomic change: its transaction commits or rolls back
            yield self._shared
            return
        con = self._shared if self._in_shared() else self._connect()
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            if con is not self._shared:
                con.close()


    @contextmanager
    def change(self, purpose: str) -> Iterator[SqlChange]:
        """A whole change, alone (the writer lock) and in one transaction, through its typed object."""
        with self.exclusive(purpose, atomic=True), self._transaction() as con:
            yield SqlChange(con)


    @contextmanager
    def reading(self) -> Iterator[SqlChange]:
        """Reads that must agree with each other (one transaction), without the writer lock."""
        with self._transaction() as con:
            yield SqlChange(con)


    @contextmanager
    def transaction(self) -> Iterator[DiagnosticChange]:
        """One transaction for tests and diagnostics: the change object, which also runs SQL. Library
        code uses `change` (tests/test_store_owner.py keeps it so)."""
        with self._transaction() as con:
            yield DiagnosticChange(con)


    def batched_writer(self, purpose: str, idle_seconds: float, yield_seconds: float) -> BatchedWriter:
        """A long-lived writer (the event server's): work items run in batched transactions over one held
        connection, let go when idle or when another process waits (store/batched_writer.py)."""
        return BatchedWriter(self, self._writer_lock, purpose, idle_seconds, yield_seconds)


    def _query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        if self._in_shared():  # read what this change has written so far
            return self._shared.execute(sql, params or []).df()
        con = self._connect(read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()


    # -- one lead at a time, without frames (`lead show`, `lead set`: what an operator waits for) ------------
    def _rows(self, sql: str, params: list | None = None) -> list[dict]:
        con = self._shared if self._in_shared() else self._connect(read_only=True)
        try:
            cursor = con.execute(sql, params or [])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            if con is not self._shared:
                con.close()


    def _tuples(self, sql: str, params: list | None = None) -> list[tuple]:
        con = self._shared if self._in_shared() else self._connect(read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            if con is not self._shared:
                con.close()


    # -- the per-change path: looked up by key ----------------------------------------------
    def _query_with(self, sql: str, tables: dict[str, pd.DataFrame], params: list | None = None) -> pd.DataFrame:
        """A query joining frames of keys (registered under the given names for this query only)."""
        shared = self._in_shared()
        con = self._shared if shared else self._connect(read_only=True)
        try:
            for name, frame in tables.items():
                con.register(name, frame)
            return con.execute(sql, params or []).df()
        finally:
            if shared:
                for name in tables:
                    con.unregister(name)
            else:
                con.close()
