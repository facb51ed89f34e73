"""The store for a long-lived server process (the console): the database stays open between requests.

Every store operation opens a connection and closes it again. Opening the DuckDB file costs ~100 ms (catalog,
WAL) when nothing else in the process holds it open, ~1-5 ms when something does: a lead page makes a dozen
reads. So this store keeps one connection (the keeper) open while pages are being served, and hands every
operation a connection of its own to that open database (DuckDB shares one open database between the
connections of a process that open the same file the same way). Like the event server's
writer, it lets go when idle for `idle_seconds` and at once when another process waits for the file
(`waiting_marker`): imports and the CLI are never shut out for longer than a request takes.

All its connections are read-write: DuckDB refuses a read-only connection beside a read-write one in one
process, and the event writer's connection is read-write.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import duckdb

from datafactory_pipelines.store.duckdb import DuckDBLeadStore

log = logging.getLogger(__name__)

IDLE_SECONDS = 2.0
POLL_SECONDS = 0.2
YIELD_SECONDS = 1.5  # after letting go for a waiting process: its retry back-off is at most 1 s


class HeldOpenStore(DuckDBLeadStore):
    def __init__(self, path: str | Path, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._keeper: duckdb.DuckDBPyConnection | None = None
        self._keeper_opened = 0.0
        self._last_use = 0.0
        self._away_until = 0.0
        self._keeper_guard = threading.Lock()
        super().__init__(path)  # (creates the tables through _connect, below)
        self._watcher = threading.Thread(target=self._watch, name="store-keeper", daemon=True)
        self._watcher.start()

    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        with self._keeper_guard:
            if self._keeper is None:
                time.sleep(max(0.0, self._away_until - time.monotonic()))  # a waiting process goes first
                self._keeper = super()._connect(read_only=False)  # waits (with back-off) while another has it
                self._keeper_opened = time.time()
            self._last_use = time.monotonic()
        # a connection of its own to the database the keeper holds open (DuckDB's instance cache): ~ms.
        # Not a cursor of the keeper: the keeper runs nothing, so letting go of it never waits for a query
        return super()._connect(read_only=False)

    def _someone_waits(self) -> bool:
        try:
            return self.waiting_marker.stat().st_mtime > self._keeper_opened
        except FileNotFoundError:
            return False

    def _watch(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            with self._keeper_guard:
                if self._keeper is None:
                    continue
                idle = time.monotonic() - self._last_use > self.idle_seconds
                waits = not idle and self._someone_waits()
                if idle or waits:
                    # connections in use keep the database until they close; new operations open it again
                    self._keeper.close()
                    self._keeper = None
                    if waits:
                        self._away_until = time.monotonic() + YIELD_SECONDS
                    log.debug("let go of %s (%s)", self.path, "idle" if idle else "another process waits")

    def release(self) -> None:
        """Let go of the database now (connections in use keep it until they close)."""
        with self._keeper_guard:
            if self._keeper is not None:
                self._keeper.close()
                self._keeper = None
