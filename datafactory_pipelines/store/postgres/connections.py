"""How the PostgreSQL store reaches its database: a small pool of sessions, the writer lock (an advisory
lock), atomic changes over one shared session, and the change object handed out for a change.

The same shape as store/duckdb/connections.py, so the modules shared by both backends run unchanged:
`_transaction()` yields a session inside a transaction, `_query` / `_rows` / `_tuples` / `_query_with` read.
Readers never wait: PostgreSQL's MVCC gives each one a consistent view while a change is written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from datafactory_pipelines.store.change_object.sql_change import DiagnosticChange, SqlChange
from datafactory_pipelines.store.postgres.advisory_lock import AdvisoryLock
from datafactory_pipelines.store.postgres.connection import PgConnection

if TYPE_CHECKING:
    import pandas as pd

    from datafactory_pipelines.store.batched_writer import BatchedWriter

log = logging.getLogger(__name__)

#: idle sessions kept open per store object (each costs a PostgreSQL backend process)
POOL_SIZE = 4


class PgConnections:
    url: str
    path: Path
    _writer_lock: AdvisoryLock

    def _init_connections(self) -> None:
        self._idle: list[PgConnection] = []
        self._pool_guard = threading.Lock()
        self._shared: PgConnection | None = None
        self._shared_thread: int | None = None
        self._commit_each = False

    @property
    def waiting_marker(self) -> Path:
        """DuckDB's cue that another process waits for the file; PostgreSQL has no file to wait for."""
        return self.path / "never-waited-for"

    # -- sessions ---------------------------------------------------------------------------------
    def _connect(self, read_only: bool = False) -> PgConnection:
        with self._pool_guard:
            while self._idle:
                con = self._idle.pop()
                if not con.raw.closed:
                    return con
        import psycopg

        raw = psycopg.connect(self.url, autocommit=True, cursor_factory=psycopg.ClientCursor,
                              application_name="datafactory")
        raw.execute("SET datestyle = 'ISO, YMD'")
        raw.execute("SET timezone = 'UTC'")
        return PgConnection(raw, release=self._give_back)

    def _give_back(self, con: PgConnection) -> None:
        import psycopg

        raw = con.raw
        if raw.closed:
            return
        if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:  # an unfinished transaction
            try:
                raw.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - a broken session is closed, not pooled
                raw.close()
                return
        with self._pool_guard:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(con)
                return
        raw.close()

    def close(self) -> None:
        """Close the pooled sessions and the writer lock's idle session (a store object is otherwise closed
        when the process ends)."""
        with self._pool_guard:
            idle, self._idle = self._idle, []
        for con in idle:
            con.raw.close()
        self._writer_lock.close()

    def _in_shared(self) -> bool:
        return self._shared is not None and self._shared_thread == threading.get_ident()

    # -- the change-level lock --------------------------------------------------------------------
    @contextmanager
    def exclusive(self, purpose: str, atomic: bool = False) -> Iterator[None]:
        """Run a whole change alone: the writer lock (an advisory lock) held, re-entrant within a process;
        with `atomic`, everything inside is one transaction on one session."""
        with self._writer_lock.hold(purpose):
            if not atomic or self._in_shared():
                yield
                return
            con = self._connect()
            con.execute("BEGIN")
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

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Many writes in a row: on PostgreSQL each transaction simply commits on its own."""
        yield

    @contextmanager
    def memory_budget(self, limit: str) -> Iterator[None]:
        """DuckDB's buffer cap; PostgreSQL's memory is the server's (nothing to do)."""
        yield

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[PgConnection]:
        """One transaction. A write outside a whole change (an operator's edit, a restore's bookkeeping)
        takes the writer lock for itself: on DuckDB the file admits one writer; here several processes could
        otherwise interleave an edit with an import's curation (a lost update) or two history appends."""
        if self._in_shared() and not self._commit_each:
            yield self._shared
            return
        with self._writer_lock.hold("a write") if write else nullcontext():
            con = self._connect()
            try:
                con.execute("BEGIN")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()

    @contextmanager
    def change(self, purpose: str) -> Iterator[SqlChange]:
        with self.exclusive(purpose, atomic=True), self._transaction() as con:
            yield SqlChange(con)

    @contextmanager
    def reading(self) -> Iterator[SqlChange]:
        with self._transaction(write=False) as con:
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield SqlChange(con)

    @contextmanager
    def transaction(self) -> Iterator[DiagnosticChange]:
        with self._transaction() as con:
            yield DiagnosticChange(con)

    def batched_writer(self, purpose: str, idle_seconds: float, yield_seconds: float) -> BatchedWriter:
        from datafactory_pipelines.store.batched_writer import BatchedWriter

        return BatchedWriter(self, self._writer_lock, purpose, idle_seconds, yield_seconds)

    # -- reads ------------------------------------------------------------------------------------
    def _query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        if self._in_shared():
            return self._shared.execute(sql, params or []).df()
        con = self._connect(read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()

    def _rows(self, sql: str, params: list | dict | None = None) -> list[dict]:
        con = self._shared if self._in_shared() else self._connect(read_only=True)
        try:
            cursor = con.execute(sql, params or [])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            if con is not self._shared:
                con.close()

    def _tuples(self, sql: str, params: list | dict | None = None) -> list[tuple]:
        con = self._shared if self._in_shared() else self._connect(read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            if con is not self._shared:
                con.close()

    def _query_with(self, sql: str, tables: dict[str, pd.DataFrame], params: list | None = None) -> pd.DataFrame:
        shared = self._in_shared()
        con = self._shared if shared else self._connect(read_only=True)
        try:
            for name, frame in tables.items():
                con.register(name, frame)
            return con.execute(sql, params or []).df()
        finally:
            for name in tables:
                con.unregister(name)
            if not shared:
                con.close()
