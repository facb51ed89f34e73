"""How a lead store reaches its database, the part both backends share: a whole change under the writer lock,
atomic changes over one shared connection, the change object handed out for a change (never the connection),
and the reads, which see what the change has written so far when they run inside one.

A backend gives what differs: `_connect` (DuckDB: a short-lived connection that waits while another process
holds the file, store/duckdb/connections.py; PostgreSQL: a pooled session, store/postgres/connections.py) and
`_write_lock`, the rule for a write outside a whole change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from datafactory_pipelines.store.batched_writer import BatchedWriter
from datafactory_pipelines.store.change_object.sql_change import DiagnosticChange, SqlChange

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd

    from datafactory_pipelines.store.writer_lock import WriterLock


class Sessions:
    _writer_lock: WriterLock

    def _init_sessions(self) -> None:
        self._shared: Any = None  # the connection of an atomic change
        self._shared_thread: int | None = None
        self._commit_each = False  # DuckDB's `bulk_writes`: a shared connection whose transactions commit alone

    def _connect(self, read_only: bool = False) -> Any:
        """A connection of the backend's (DuckDB's, or one shaped like it); `close()` gives it back."""
        raise NotImplementedError

    def _write_lock(self, write: bool) -> AbstractContextManager[Any]:
        """What a transaction outside a whole change holds: nothing on DuckDB, whose file admits one writer."""
        return nullcontext()

    def _in_shared(self) -> bool:
        return self._shared is not None and self._shared_thread == threading.get_ident()

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

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        """One transaction: inside an atomic change, the change's own (it commits or rolls back with it)."""
        if self._in_shared() and not self._commit_each:
            yield self._shared
            return
        with self._write_lock(write):
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

    # -- the change object ---------------------------------------------------------------------
    @contextmanager
    def change(self, purpose: str) -> Iterator[SqlChange]:
        """A whole change, alone (the writer lock) and in one transaction, through its typed object."""
        with self.exclusive(purpose, atomic=True), self._transaction() as con:
            yield SqlChange(con)

    @contextmanager
    def reading(self) -> Iterator[SqlChange]:
        """Reads that must agree with each other (one transaction), without the writer lock."""
        with self._transaction(write=False) as con:
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

    # -- reads ------------------------------------------------------------------------------------
    def _query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        if self._in_shared():  # read what this change has written so far
            return self._shared.execute(sql, params or []).df()
        con = self._connect(read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()

    # one lead at a time, without frames (`lead show`, `lead set`: what an operator waits for)
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

    # the per-change path: looked up by key
    def _query_with(self, sql: str, tables: dict[str, pd.DataFrame], params: list | None = None) -> pd.DataFrame:
        """A query joining frames of keys (registered under the given names for this query only)."""
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
