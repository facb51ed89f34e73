"""A long-lived writer for the event server: work items in batched transactions over one held connection.

Both backends use it. DuckDB allows one writing process per file, so the writer thread holds a connection
only while work keeps coming: it lets go after `idle_seconds` without work, and at once when another process
(an import, a Dagster run) waits for the file (`store.waiting_marker`) or holds the store's writer lock
(`store.exclusive`), which it takes for each batch. Items that arrive together are written in one
transaction; each item's future is resolved only after its commit. An item is a function of the change
object (store/change.py), never of a connection.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from datafactory_pipelines.store.change_object.sql_change import SqlChange
from datafactory_pipelines.store.writer_lock import StoreBusyError, WriterLock

if TYPE_CHECKING:
    from datafactory_pipelines.store.duckdb.connections import DuckDBConnections
    from datafactory_pipelines.store.postgres.connections import PgConnections

MAX_BATCH = 500


@dataclass
class _Job:
    work: Callable[[SqlChange], Any]
    future: concurrent.futures.Future


class BatchedWriter:
    """The server's one connection to the lead store, used by one thread, held only while it is busy."""

    def __init__(self, store: DuckDBConnections | PgConnections, lock: WriterLock, purpose: str,
                 idle_seconds: float, yield_seconds: float) -> None:
        self.store = store
        self.idle_seconds = idle_seconds
        self.yield_seconds = yield_seconds
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.commits = 0
        self.yields = 0
        self.lock = lock  # the same lock as store.exclusive()
        self.purpose = purpose
        self.thread = threading.Thread(target=self._loop, name="lead-store-writer", daemon=True)
        self.thread.start()

    def submit(self, work: Callable[[SqlChange], Any]) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.jobs.put(_Job(work, future))
        return future

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=10)

    def _someone_waits(self, since: float) -> bool:
        try:
            return self.store.waiting_marker.stat().st_mtime > since
        except FileNotFoundError:
            return False

    def _run(self, con: duckdb.DuckDBPyConnection, jobs: list[_Job]) -> None:
        try:
            con.execute("BEGIN TRANSACTION")
            change = SqlChange(con)
            results = [job.work(change) for job in jobs]
            con.execute("COMMIT")
        except Exception:  # one bad job must not sink the others: run each on its own
            con.execute("ROLLBACK")
            if len(jobs) > 1:
                for job in jobs:
                    self._run(con, [job])
                return
            raise
        self.commits += 1
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)

    def _loop(self) -> None:
        con: duckdb.DuckDBPyConnection | None = None
        opened_at = 0.0
        while True:
            try:
                job = self.jobs.get(timeout=self.idle_seconds if con is not None else None)
            except queue.Empty:
                con.close()  # idle: let imports and runs have the store
                con = None
                continue
            if job is None:
                break
            jobs = [job]
            while len(jobs) < MAX_BATCH:
                try:
                    more = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.jobs.put(None)
                    break
                jobs.append(more)
            try:
                with contextlib.ExitStack() as held:
                    try:  # the store's change-level writer lock, per batch
                        held.enter_context(self.lock.hold(self.purpose, wait_seconds=0))
                    except StoreBusyError:  # another change runs: let go of the file, then wait our turn
                        if con is not None:
                            con.close()
                            con = None
                        held.enter_context(self.lock.hold(self.purpose))
                    if con is None:
                        con = self.store._connect()  # noqa: SLF001 - this backend's own; waits for the file
                        opened_at = time.time()
                    self._run(con, jobs)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
            if con is not None and self._someone_waits(opened_at):
                con.close()
                con = None
                self.yields += 1
                time.sleep(self.yield_seconds)
        if con is not None:
            con.close()
