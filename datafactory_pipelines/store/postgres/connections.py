"""How the PostgreSQL store reaches its database: a small pool of sessions, and the rule that a write outside
a whole change takes the writer lock (an advisory lock) for itself. The writer lock around a change, atomic
changes over one shared session, the change object and the reads are both backends' (store/sessions.py).
Readers never wait: PostgreSQL's MVCC gives each one a consistent view while a change is written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from datafactory_pipelines.store.change_object.sql_change import SqlChange
from datafactory_pipelines.store.postgres.advisory_lock import AdvisoryLock
from datafactory_pipelines.store.postgres.connection import PgConnection
from datafactory_pipelines.store.sessions import Sessions

log = logging.getLogger(__name__)

#: idle sessions kept open per store object (each costs a PostgreSQL backend process)
POOL_SIZE = 4


class PgConnections(Sessions):
    url: str
    path: Path
    _writer_lock: AdvisoryLock

    def _init_connections(self) -> None:
        self._idle: list[PgConnection] = []
        self._pool_guard = threading.Lock()
        self._init_sessions()

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

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Many writes in a row: on PostgreSQL each transaction simply commits on its own."""
        yield

    @contextmanager
    def memory_budget(self, limit: str) -> Iterator[None]:
        """DuckDB's buffer cap; PostgreSQL's memory is the server's (nothing to do)."""
        yield

    def _write_lock(self, write: bool) -> AbstractContextManager[object]:
        """A write outside a whole change (an operator's edit, a restore's bookkeeping) takes the writer lock for
        itself: on DuckDB the file admits one writer; here several processes could otherwise interleave an edit
        with an import's curation (a lost update) or two history appends."""
        return self._writer_lock.hold("a write") if write else nullcontext()

    @contextmanager
    def reading(self) -> Iterator[SqlChange]:
        """Reads that must agree with each other: one REPEATABLE READ transaction, without the writer lock."""
        with self._transaction(write=False) as con:
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield SqlChange(con)
