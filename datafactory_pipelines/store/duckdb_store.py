"""The embedded lead store: one DuckDB file, zero set-up.

DuckDB allows one writing process per file, so every operation opens a short-lived connection
and waits (with back-off) while another process holds the file. A whole change (an import's save,
link and curate; an undo; a decision) runs under `exclusive(purpose)`, the store's writer lock; with
`atomic=True` every operation inside it shares one connection and one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from datafactory_pipelines import duckdb_settings
from datafactory_pipelines.fields import LEAD_COLUMN_TYPES, TRACKED_FIELDS
from datafactory_pipelines.history import (
    GENESIS,
    HISTORY_COLUMNS,
    chain_frame,
    chain_rows,
    chain_table,
    field_changes_table,
)
from datafactory_pipelines.notify.outbox import append_outbox_for_seqs
from datafactory_pipelines.store import (
    change_sql,
    gate_sql,
    key_fields,
    restores_sql,
    returning_sql,
    snapshot_sql,
)
from datafactory_pipelines.store.base import DuplicateImportError, ImportMeta, LeadChanges
from datafactory_pipelines.store.schema import (
    CONFLICT_COLUMNS,
    DDL,
    IMPORT_COLUMNS,
    LEAD_COLUMNS,
    LINKAGE_RECORD_COLUMNS,
    OVERRIDE_COLUMNS,
    RECORD_COLUMNS,
    SCHEMA_VERSION,
    SHARED_CONTACT_COLUMNS,
)
from datafactory_pipelines.store.writer_lock import WriterLock

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 120.0
#: leads whose history is made and appended at once (bounds a full pass's memory; the rows are the same)
HISTORY_SLICE_LEADS = 20_000
# WAL size between checkpoints while `bulk_writes` holds the connection (DuckDB's default: 16 MiB, and a
# commit bigger than `auto_checkpoint_skip_wal_threshold` checkpoints at once: every 10k-row file). Measured
# saving the 100 files of the 1M base: a checkpoint costs about the same per record whenever it runs, but
# until it runs the saved rows stay in the buffer pool: at 1GB one checkpoint near the end, main process
# 14-16 s CPU and 2.3 GB peak; at 256MB four, 13-14 s and 1.6 GB; per-file (16MB) about twice the time.
BULK_CHECKPOINT_THRESHOLD = "256MB"
# record columns the store sets when saving an import (the rest come with the prepared records)
_SET_ON_SAVE = ("record_id", "import_id", "source_file", "imported_at", "lead_id", "retired_by", "first_lead_id")
# The DDL this code creates: a store set up with the same needs no catalog writes when it is opened.
DDL_FINGERPRINT = hashlib.sha256("\n".join([str(SCHEMA_VERSION), *DDL]).encode()).hexdigest()[:16]


def _ids(record_ids: list[int]) -> pd.DataFrame:
    """Record ids as a one-column frame, for a query to join (the change path's key tables)."""
    import pandas as pd
    return pd.DataFrame({"record_id": pd.Series(list(record_ids), dtype="int64")})


def _lead_ids(lead_ids: list[str]) -> pd.DataFrame:
    """Lead ids as a one-column frame, for a query to join."""
    import pandas as pd
    return pd.DataFrame({"lead_id": pd.Series(list(lead_ids), dtype=object)})


class _InOrderWriter:
    """Runs `write` on one background thread, one item at a time and in order, while the caller makes the
    next item: at most one item waits and one is written (memory stays at two slices). An error in a write
    is raised in the caller (at its next `put` or at the end); nothing after it is written."""

    def __init__(self, write: Callable[[Any], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-writer")
        self._pending: Future | None = None
        self._jobs: list[Future] = []

    def put(self, item: Any) -> None:
        self._wait()
        self._pending = self._pool.submit(self._write, item)

    def meanwhile(self, job: Callable[[], None]) -> None:
        """Run `job` on the writer's thread before the items put after it (it queues: the caller goes on)."""
        self._jobs.append(self._pool.submit(job))

    def _wait(self) -> None:
        while self._jobs:  # run on the one thread in order: done before any item put after them
            self._jobs.pop(0).result()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> _InOrderWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._wait()  # the caller's connection is used again only after the last write is done
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)  # after an error: nothing queued runs


class DuckDBLeadStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_lock = WriterLock.beside(self.path)
        self._shared: duckdb.DuckDBPyConnection | None = None  # the connection of an atomic change
        self._shared_thread: int | None = None
        self._commit_each = False  # the shared connection of `bulk_writes`: each transaction commits alone
        with self._transaction() as con:
            if self._schema_is_current(con):  # every command opens the store: the catalog is written only on change
                return
            for statement in DDL:
                if statement.lstrip().startswith("CREATE OR REPLACE VIEW"):
                    self._add_missing_columns(con)  # a store made by an older version
                con.execute(statement)
            con.execute(
                "INSERT INTO store_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [str(SCHEMA_VERSION)]
            )
            con.execute("INSERT OR REPLACE INTO store_meta VALUES ('schema_ddl', ?)", [DDL_FINGERPRINT])

    @staticmethod
    def _schema_is_current(con: duckdb.DuckDBPyConnection) -> bool:
        """Whether this store was last set up with exactly this DDL (then there is nothing to create or add)."""
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                           "AND table_name = 'store_meta'").fetchall()[0][0]:
            return False
        found = con.execute("SELECT value FROM store_meta WHERE key = 'schema_ddl'").fetchall()
        return bool(found) and found[0][0] == DDL_FINGERPRINT

    @staticmethod
    def _add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
        DuckDBLeadStore._content_unique_among_live_imports(con)
        DuckDBLeadStore._leads_without_key_index(con)
        for table, columns in (("records", RECORD_COLUMNS), ("leads", LEAD_COLUMNS), ("imports", IMPORT_COLUMNS)):
            present = {row[0] for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
            for column in columns:
                if column not in present:
                    kind = "BIGINT" if column in ("record_id", "source_row") else \
                        "TIMESTAMP" if column == "undone_at" else LEAD_COLUMN_TYPES.get(column, "VARCHAR")
                    con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {kind}')

    @staticmethod
    def _content_unique_among_live_imports(con: duckdb.DuckDBPyConnection) -> None:
        """Older stores made content_sha256 UNIQUE, which kept an undone file out forever: rebuild that table."""
        unique = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'imports' AND constraint_type = 'UNIQUE' "
            "AND list_contains(constraint_column_names, 'content_sha256')").fetchall()[0][0]
        if unique:
            DuckDBLeadStore._rebuild_from_ddl(con, "imports", IMPORT_COLUMNS)

    @staticmethod
    def _leads_without_key_index(con: duckdb.DuckDBPyConnection) -> None:
        """Older stores made lead_id the leads' PRIMARY KEY, whose index DuckDB rewrites whole at every
        checkpoint after a change: the table is rebuilt once without it (same rows; see schema.DDL)."""
        keyed = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'leads' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()[0][0]
        if keyed:
            DuckDBLeadStore._rebuild_from_ddl(con, "leads", LEAD_COLUMNS)

    @staticmethod
    def _rebuild_from_ddl(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> None:
        """`table` made again from today's DDL (without a constraint an older version gave it), with the same
        rows: the columns it has of `columns` are copied, in the database (no frame)."""
        present = {row[0] for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_before_rebuild")
        con.execute(next(statement for statement in DDL if f"TABLE IF NOT EXISTS {table} (" in statement))
        copied = ", ".join(f'"{c}"' for c in columns if c in present)
        con.execute(f"INSERT INTO {table} ({copied}) SELECT {copied} FROM {table}_before_rebuild")
        con.execute(f"DROP TABLE {table}_before_rebuild")

    @property
    def waiting_marker(self) -> Path:
        """Touched by a process waiting for the lock; the event server holds its connection only until then."""
        return self.path.with_name(self.path.name + ".waiting")

    def __repr__(self) -> str:
        return f"DuckDBLeadStore({str(self.path)!r})"

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
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction, for modules that keep tables of their own here (the notification outbox)."""
        with self._transaction() as con:
            yield con

    def _query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        if self._in_shared():  # read what this change has written so far
            return self._shared.execute(sql, params or []).df()
        con = self._connect(read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()

    # -- imports -----------------------------------------------------------------------------
    def find_import(self, content_sha256: str) -> str | None:
        """The live import of this content (an undone one does not count)."""
        rows = self._query("SELECT import_id FROM imports WHERE content_sha256 = ? AND undone_at IS NULL",
                           [content_sha256])
        return None if rows.empty else str(rows.iloc[0, 0])

    def save_import(self, meta: ImportMeta, records: pd.DataFrame | pa.Table,
                    link_values: pd.DataFrame | pa.Table | None = None, values_version: str | None = None) -> int:
        """Write the import and all its records in one transaction; returns the number of records.

        The same content as a live import is refused. Content imported before and since undone comes
        back as a new import: its id gets a suffix (`…-r2`), written back into `meta.import_id`.
        records: a pandas frame or an Arrow table (appended as it is, no copy) with the prepared columns.
        link_values: the values linking counts and blocks on (record_id = the row's position in
        `records`); kept beside the records so the next relink looks the new records' neighbours up by key.
        values_version: the linkage config they were computed with; while every active record's values
        come from one version, a full pass keeps them instead of computing them again (`saved_link_values`).
        """
        import numpy as np
        import pyarrow as pa

        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = records.num_rows if isinstance(records, pa.Table) else len(records)
        positions = pa.array(np.arange(rows, dtype=np.int64))
        incoming = (records.append_column("_row", positions) if isinstance(records, pa.Table)
                    else records.assign(_row=positions.to_numpy()))
        given = [c for c in RECORD_COLUMNS if c not in _SET_ON_SAVE]
        with self._transaction() as con:
            found = con.execute(
                "SELECT import_id FROM imports WHERE content_sha256 = ? AND undone_at IS NULL",
                [meta.content_sha256]).fetchall()
            if found:
                raise DuplicateImportError(found[0][0])
            earlier = con.execute("SELECT count(*) FROM imports WHERE import_id = ? OR starts_with(import_id, ?)",
                                  [meta.import_id, f"{meta.import_id}-r"]).fetchall()[0][0]
            if earlier:
                meta.import_id = f"{meta.import_id}-r{earlier + 1}"
            con.execute(
                "INSERT INTO imports (import_id, file_name, content_sha256, sheets, header_map, rows_read, "
                "rows_unreachable, blank_rows, imported_at, imported_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [meta.import_id, meta.file_name, meta.content_sha256,
                 json.dumps(meta.sheets, ensure_ascii=False), json.dumps(meta.header_map, ensure_ascii=False),
                 meta.rows_read, meta.rows_unreachable, meta.blank_rows, now, meta.imported_by],
            )
            missing = [c for c in given if c not in incoming.column_names] if isinstance(incoming, pa.Table) \
                else [c for c in given if c not in incoming.columns]
            if missing:  # rolls the import row back with the rest
                raise KeyError(f"the records lack columns {missing}")
            start = con.execute("SELECT coalesce(max(record_id), 0) FROM records").fetchall()[0][0] + 1
            con.register("incoming_records", incoming)
            con.execute(
                f"INSERT INTO records (record_id, import_id, source_file, imported_at, {', '.join(given)}) "
                f"SELECT ? + _row, ?, ?, ?, {', '.join(given)} FROM incoming_records",
                [start, meta.import_id, meta.file_name, now])
            con.unregister("incoming_records")
            if link_values is not None:
                con.register("incoming_values", link_values)
                con.execute("INSERT INTO link_values SELECT col, value, record_id + ?, surname FROM incoming_values",
                            [start])
                con.unregister("incoming_values")
                if self._counters_kept(con):
                    self._count_values(con, "SELECT col, value, surname FROM link_values "
                                       "WHERE record_id >= ? AND record_id < ?", [start, start + rows], 1)
            version = values_version if link_values is not None and values_version else ""
            con.execute("""INSERT OR REPLACE INTO store_meta SELECT 'saved_link_values', CASE WHEN ? <> '' AND (
                    NOT EXISTS (SELECT 1 FROM records WHERE retired_by IS NULL AND record_id < ?)
                    OR (SELECT max(value) FROM store_meta WHERE key = 'saved_link_values') = ?) THEN ? ELSE 'mixed' END""",
                        [version, start, version, version])
            seq = self._next_queue_seq(con)
            con.execute("INSERT INTO link_queue SELECT ? + i, ? + i, NULL, 'added', NULL, NULL, NULL FROM range(?) t(i)",
                        [seq, start, rows])
        return rows

    @staticmethod
    def _next_queue_seq(con: duckdb.DuckDBPyConnection) -> int:
        return int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM link_queue").fetchall()[0][0])

    @classmethod
    def _queue_leads(cls, con: duckdb.DuckDBPyConnection, lead_ids: list[str]) -> None:
        """Leads whose records moved without linking: the next relink decides them again."""
        if not lead_ids:
            return
        seq = cls._next_queue_seq(con)  # one statement for all of them (an undo queues thousands)
        con.execute("INSERT INTO link_queue SELECT ? + i - 1, NULL, lead_id, 'lead', NULL, NULL, NULL "
                    "FROM unnest(?) WITH ORDINALITY AS t(lead_id, i)", [seq, list(lead_ids)])

    def imports(self) -> pd.DataFrame:
        return self._query("SELECT * FROM imports ORDER BY imported_at, import_id")

    def import_records(self, import_id: str) -> pd.DataFrame:
        return self._query("SELECT * FROM records WHERE import_id = ? ORDER BY record_id", [import_id])

    def quarantine(self, import_id: str | None = None) -> pd.DataFrame:
        """Rows set aside because they reach nobody, with the reason."""
        if import_id:
            return self._query("SELECT * FROM quarantine WHERE import_id = ? ORDER BY record_id", [import_id])
        return self._query("SELECT * FROM quarantine ORDER BY record_id")

    def quarantine_count(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM quarantine")[0]["n"])

    def lead_records(self, lead_id: str) -> pd.DataFrame:
        return self._query("SELECT * FROM records WHERE lead_id = ? ORDER BY collected_at, record_id", [lead_id])

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

    def lead_rows(self, lead_ids: list[str]) -> list[dict]:
        """These leads' rows (any status), as dicts."""
        if not lead_ids:
            return []
        return self._rows("SELECT * FROM leads WHERE lead_id IN (SELECT unnest(?)) ORDER BY lead_id",
                          [list(lead_ids)])

    def active_among(self, lead_ids: list[str]) -> set[str]:
        """Which of these leads are active."""
        if not lead_ids:
            return set()
        return {row[0] for row in self._tuples("SELECT lead_id FROM leads WHERE status = 'active' "
                                               "AND lead_id IN (SELECT unnest(?))", [list(lead_ids)])}

    def lead_record_rows(self, lead_id: str, columns: list[str]) -> list[dict]:
        """The named columns of one lead's records, oldest first."""
        return self._rows(f"SELECT {', '.join(columns)} FROM records WHERE lead_id = ? "
                          "ORDER BY collected_at, record_id", [lead_id])

    def override_rows(self, lead_id: str) -> list[dict]:
        """The override that holds per field of one lead (the latest), oldest first."""
        return self._rows(
            "SELECT * FROM (SELECT o.*, row_number() OVER (PARTITION BY field ORDER BY decided_at DESC) AS latest "
            "FROM lead_overrides o WHERE lead_id = ?) held WHERE latest = 1 ORDER BY decided_at", [lead_id])

    def edit_fields(self, edits: list[tuple[str, str, str]], by: str, note: str, origin: str,
                    moment: datetime) -> int:
        """One-to-one edits (lead_id, field, value) of checked, standardized values, in one transaction: each
        kept as an override, set on its lead, and (where it changes the value) one history row and the outbox.
        Reads and writes only the edited leads' rows."""
        if not edits:
            return 0
        leads = sorted({lead for lead, _, _ in edits})
        fields = sorted({field for _, field, _ in edits})
        if not set(fields) <= set(LEAD_COLUMNS):
            raise ValueError(f"not a lead field: {', '.join(sorted(set(fields) - set(LEAD_COLUMNS)))}")
        stamp = moment.isoformat(timespec="microseconds")
        with self._transaction() as con:
            quoted = ", ".join(f'"{f}"' for f in fields)
            current = {row[0]: dict(zip(fields, row[1:], strict=True)) for row in con.execute(
                f"SELECT lead_id, {quoted} FROM leads WHERE lead_id IN ({', '.join('?' * len(leads))})",
                leads).fetchall()}
            changes = [(lead, field, str(current.get(lead, {}).get(field) or ""), str(value))
                       for lead, field, value in edits]
            self._append_history_rows(con, [c for c in changes if c[2] != c[3]], origin, by, note)
            con.execute(f"INSERT INTO lead_overrides ({', '.join(OVERRIDE_COLUMNS)}) VALUES "
                        + ", ".join(["(?, ?, ?, ?, ?, ?, ?, NULL)"] * len(edits)),
                        [v for lead, field, value in edits for v in (lead, field, value, by, note, moment, origin)])
            for lead, field, value in edits:
                con.execute(f'UPDATE leads SET "{field}" = ?, updated_at = ? WHERE lead_id = ?', [value, stamp, lead])
            key_fields.refuse_taken_primary_contacts(con, edits, f"{origin} of {', '.join(leads[:3])}")
        return len(edits)

    def _append_history_rows(self, con: duckdb.DuckDBPyConnection, changes: list[tuple[str, str, str, str]],
                             action: str, actor: str, cause: str) -> None:
        """`_append_history` for a few (lead_id, field, old, new) changes, without frames."""
        if not changes:
            return
        head = con.execute("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1").fetchall()
        seq, prev = (int(head[0][0]) + 1, head[0][1]) if head else (1, GENESIS)
        rows = chain_rows(changes, seq, prev, datetime.now(timezone.utc).replace(tzinfo=None), action, actor, cause)
        con.execute(f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) VALUES "
                    + ", ".join([f"({', '.join('?' * len(HISTORY_COLUMNS))})"] * len(rows)),
                    [value for row in rows for value in row])
        append_outbox_for_seqs(con, rows[0][0], rows[-1][0])

    def overrides(self) -> pd.DataFrame:
        """The latest override per (lead, field)."""
        return self._query(
            "SELECT * FROM lead_overrides QUALIFY row_number() OVER (PARTITION BY lead_id, field "
            "ORDER BY decided_at DESC) = 1")

    def conflicts(self, status: str | None = "open") -> pd.DataFrame:
        where = "WHERE status = ?" if status else ""
        return self._query(f"SELECT * FROM conflicts {where} ORDER BY conflict_id", [status] if status else [])

    def conflicts_by_id(self, conflict_ids: list[int]) -> pd.DataFrame:
        """These conflicts, whatever their status."""
        import pandas as pd

        return self._query_with("SELECT * FROM conflicts WHERE conflict_id IN (SELECT conflict_id FROM wanted) "
                                "ORDER BY conflict_id",
                                {"wanted": pd.DataFrame({"conflict_id": pd.Series(conflict_ids, dtype="int64")})})

    def conflicts_in_group(self, group_id: str, status: str = "open") -> pd.DataFrame:
        return self._query("SELECT * FROM conflicts WHERE group_id = ? AND status = ? ORDER BY conflict_id",
                           [group_id, status])

    def _append_lead_history(self, con: duckdb.DuckDBPyConnection, before: pd.DataFrame, upserts: pd.DataFrame,
                             changes: LeadChanges, meanwhile: Sequence[Callable[[], None]] = (),
                             last: Sequence[Callable[[], None]] = ()) -> None:
        """The history of curated leads, a slice of leads at a time (in lead order, as one append would
        write it): a full pass over 400k new leads writes millions of rows, and memory must not grow with them.

        Each slice's rows are made in Arrow (`history.field_changes_table`, `history.chain_table`) while
        DuckDB inserts the slice before (it releases the GIL): the chain, sequential by nature, and the
        insert overlap on two cores. `meanwhile`: the change's other writes (on `con`, in order), run on the
        writer's thread before the first slice is inserted, while the first slices are hashed; `last`: the ones
        run after the last slice, queued once every slice is hashed."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        order = np.argsort(upserts["lead_id"].to_numpy(), kind="stable")  # lead order
        lead_ids = upserts["lead_id"].to_numpy()[order]
        before_by_lead = before.set_index("lead_id")
        is_new = ~pd.Index(lead_ids).isin(before_by_lead.index)
        head = con.execute("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1").fetchall()
        seq, prev = (int(head[0][0]) + 1, head[0][1]) if head else (1, GENESIS)
        at = datetime.now(timezone.utc).replace(tzinfo=None)
        with _InOrderWriter(lambda rows: self._insert_history(con, rows)) as writer:
            for job in meanwhile:
                writer.meanwhile(job)
            for start in range(0, len(lead_ids), HISTORY_SLICE_LEADS):
                part = upserts.iloc[order[start:start + HISTORY_SLICE_LEADS]]
                part_ids = lead_ids[start:start + HISTORY_SLICE_LEADS]
                part_new = is_new[start:start + HISTORY_SLICE_LEADS]
                diffs = field_changes_table(before_by_lead.loc[part_ids[~part_new]].reset_index(), part)
                if not diffs.num_rows:
                    continue
                # per lead of the slice, then per row: which lead each row is about (the slice is in lead order)
                row_lead = pc.index_in(diffs["lead_id"], value_set=pa.array(part_ids, pa.string()))
                new_lead = pa.array(part_new, pa.bool_()).take(row_lead)
                merged = pc.and_(pc.equal(diffs["field"], "status"), pc.equal(diffs["new_value"], "merged"))
                action = pc.if_else(merged, "merge", pc.if_else(new_lead, "create", changes.action))
                if changes.lead_causes is None:
                    cause: pa.Array | str = changes.cause
                else:
                    per_lead = changes.lead_causes.reindex(part_ids).fillna(changes.cause).astype(str).to_numpy()
                    cause = pa.array(per_lead, pa.string()).take(row_lead)
                rows = chain_table(diffs, seq, prev, at, action, changes.actor, cause)
                seq, prev = seq + rows.num_rows, rows.column("hash")[rows.num_rows - 1].as_py()
                writer.put(rows)
            for job in last:
                writer.meanwhile(job)

    def _append_history(self, con: duckdb.DuckDBPyConnection, diffs: pd.DataFrame, action: pd.Series | str,
                        actor: str, cause: pd.Series | str) -> None:
        """History rows for `diffs` (lead_id, field, old_value, new_value), chained after the last row."""
        if diffs.empty:
            return
        head = con.execute("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1").fetchall()
        seq, prev = (int(head[0][0]) + 1, head[0][1]) if head else (1, GENESIS)
        at = datetime.now(timezone.utc).replace(tzinfo=None)
        self._insert_history(con, chain_frame(diffs, seq, prev, at, action, actor, cause))

    @staticmethod
    def _insert_history(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
        import pyarrow as pa

        # as a stream: DuckDB reads it once and keeps no reference to the table (a registered table stayed
        # alive after the insert: at 4M rows, hundreds of MB)
        con.register("history_rows", pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()))
        try:
            con.execute(f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) SELECT * FROM history_rows")
        finally:
            con.unregister("history_rows")
        # the lead's owner hears of it, in this same transaction (notify/outbox.py)
        seqs = rows.column("seq")
        append_outbox_for_seqs(con, seqs[0].as_py(), seqs[len(seqs) - 1].as_py())

    def lead_splits(self) -> pd.DataFrame:
        return self._query("SELECT * FROM lead_splits")

    def revive_merges(self, merges: list[tuple[str, str]]) -> int:
        """Hand merged leads their first records back (undoing the merges an undone import caused), in one
        statement for all (merged, survivor) pairs; returns the records moved."""
        if not merges:
            return 0
        with self._transaction() as con:
            con.execute("CREATE OR REPLACE TEMP TABLE reviving AS SELECT unnest(?) AS merged, unnest(?) AS survivor",
                        [[m for m, _ in merges], [s for _, s in merges]])
            moved = con.execute("SELECT count(*) FROM records r JOIN reviving v "
                                "ON r.lead_id = v.survivor AND r.first_lead_id = v.merged").fetchall()[0][0]
            con.execute("UPDATE records SET lead_id = v.merged FROM reviving v "
                        "WHERE records.lead_id = v.survivor AND records.first_lead_id = v.merged")
            con.execute("DROP TABLE reviving")
            self._queue_leads(con, [lead for pair in merges for lead in pair])
        return int(moved)

    def split_lead(self, survivor: str, merged: str, by: str) -> int:
        """Give a merged lead its own records back and keep the two apart from now on; returns records moved."""
        with self._transaction() as con:
            row = con.execute("SELECT status, merged_into FROM leads WHERE lead_id = ?", [merged]).fetchall()
            if not row or row[0][0] != "merged" or row[0][1] != survivor:
                raise ValueError(f"{merged} is not a lead merged into {survivor}")
            moved = con.execute("SELECT count(*) FROM records WHERE lead_id = ? AND first_lead_id = ?",
                                [survivor, merged]).fetchall()[0][0]
            if not moved:
                raise ValueError(f"no records of {merged} are left in {survivor}")
            con.execute("UPDATE records SET lead_id = ? WHERE lead_id = ? AND first_lead_id = ?",
                        [merged, survivor, merged])
            con.execute("INSERT INTO lead_splits VALUES (?, ?, ?, ?)",
                        [survivor, merged, by, datetime.now(timezone.utc).replace(tzinfo=None)])
            self._queue_leads(con, [survivor, merged])
        return int(moved)

    def add_conflicts(self, conflicts: pd.DataFrame) -> None:
        with self._transaction() as con:
            con.register("more_conflicts", conflicts[CONFLICT_COLUMNS])
            con.execute("INSERT INTO conflicts SELECT * FROM more_conflicts")
            con.unregister("more_conflicts")

    def retire_import(self, import_id: str, by: str) -> int:
        """Take an import's records out of linkage (kept, marked) and mark the import undone."""
        with self._transaction() as con:
            row = con.execute("SELECT undone_at, undone_by FROM imports WHERE import_id = ?", [import_id]).fetchall()
            if not row:
                raise ValueError(f"no import {import_id}")
            if row[0][0] is not None:
                raise ValueError(f"import {import_id} was already undone ({row[0][0]:%Y-%m-%d %H:%M} by {row[0][1]})")
            found = con.execute("SELECT count(*) FROM records WHERE import_id = ? AND retired_by IS NULL",
                                [import_id]).fetchall()[0][0]
            self._queue_removal(con, "SELECT record_id FROM records WHERE import_id = ? AND retired_by IS NULL",
                                [import_id])
            con.execute("UPDATE records SET retired_by = ?, lead_id = NULL WHERE import_id = ?", [by, import_id])
            con.execute("UPDATE imports SET undone_by = ?, undone_at = ? WHERE import_id = ?",
                        [by, datetime.now(timezone.utc).replace(tzinfo=None), import_id])
        return int(found)

    @classmethod
    def _queue_removal(cls, con: duckdb.DuckDBPyConnection, records_sql: str, params: list) -> None:
        """Records leaving linkage: their values leave link_values and wait in the queue (with the lead
        they were in), so the next relink re-decides whatever they touched."""
        con.execute(f"CREATE OR REPLACE TEMP TABLE leaving AS {records_sql}", params)
        seq = cls._next_queue_seq(con)
        con.execute("""INSERT INTO link_queue
            SELECT ? + row_number() OVER (ORDER BY v.record_id, v.col) - 1, v.record_id, r.lead_id, 'removed',
                   v.col, v.value, v.surname
            FROM link_values v JOIN records r ON r.record_id = v.record_id
            WHERE v.record_id IN (SELECT record_id FROM leaving)""", [seq])
        cls._queue_leads(con, [row[0] for row in con.execute(
            "SELECT DISTINCT lead_id FROM records WHERE record_id IN (SELECT record_id FROM leaving) "
            "AND lead_id IS NOT NULL ORDER BY 1").fetchall()])
        if cls._counters_kept(con):
            cls._count_values(con, "SELECT col, value, surname FROM link_values "
                              "WHERE record_id IN (SELECT record_id FROM leaving)", [], -1)
        con.execute("DELETE FROM link_values WHERE record_id IN (SELECT record_id FROM leaving)")
        con.execute("DROP TABLE leaving")

    def leads_touched_by_import(self, import_id: str) -> list[str]:
        """Every lead an import's records belong or belonged to, and the leads merged into those."""
        rows = self._query(
            "WITH mine AS (SELECT lead_id, first_lead_id FROM records WHERE import_id = ?), "
            "now_in AS (SELECT lead_id FROM mine WHERE lead_id IS NOT NULL) "
            "SELECT lead_id FROM now_in UNION SELECT first_lead_id FROM mine WHERE first_lead_id IS NOT NULL "
            "UNION SELECT first_lead_id FROM records WHERE lead_id IN (SELECT lead_id FROM now_in) "
            "AND first_lead_id IS NOT NULL", [import_id])
        return sorted(rows["lead_id"].astype(str))

    def records_of_leads(self, lead_ids: list[str]) -> pd.DataFrame:
        """The live records of these leads."""

        return self._query_with("SELECT * FROM records WHERE retired_by IS NULL "
                                "AND lead_id IN (SELECT lead_id FROM wanted) ORDER BY record_id",
                                {"wanted": _lead_ids(lead_ids)})

    def import_row(self, import_id: str) -> dict:
        """One import's row (a ValueError names an unknown id)."""
        rows = self._rows("SELECT * FROM imports WHERE import_id = ?", [import_id])
        if not rows:
            raise ValueError(f"no import {import_id}")
        return rows[0]

    def leads_merged_into(self, lead_id: str) -> list[str]:
        return [row["lead_id"] for row in self._rows(
            "SELECT lead_id FROM leads WHERE status = 'merged' AND merged_into = ? ORDER BY lead_id", [lead_id])]

    def history_of_leads(self, lead_ids: list[str]) -> pd.DataFrame:
        """The history rows of these leads only (index history_by_lead), in sequence order."""
        import pandas as pd
        con = self._shared if self._in_shared() else self._connect(read_only=True)
        try:
            con.register("wanted_leads", pd.DataFrame({"lead_id": pd.Series(lead_ids, dtype=object)}))
            rows = con.execute("SELECT * FROM history WHERE lead_id IN (SELECT lead_id FROM wanted_leads) "
                               "ORDER BY seq").df()
            con.unregister("wanted_leads")
            return rows
        finally:
            if con is not self._shared:
                con.close()

    def close_conflicts(self, closed: pd.DataFrame, by: str, cause: str) -> None:
        """closed: conflict_id, reason. Each conflict is closed with a history row on its lead saying why."""
        import pandas as pd
        if closed.empty:
            return
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._transaction() as con:
            con.register("closing", closed[["conflict_id", "reason"]])
            rows = con.execute(
                "SELECT c.conflict_id, c.lead_id, c.field, c.current_value, c.incoming_value, k.reason "
                "FROM conflicts c JOIN closing k USING (conflict_id) WHERE c.status = 'open' ORDER BY c.conflict_id"
            ).df()
            con.execute("UPDATE conflicts SET status = 'closed', decided_by = ?, decided_at = ?, "
                        "decision = 'closed: ' || k.reason FROM closing k "
                        "WHERE conflicts.conflict_id = k.conflict_id AND conflicts.status = 'open'", [by, now])
            con.unregister("closing")
            diffs = pd.DataFrame({
                "lead_id": rows["lead_id"].to_numpy(), "field": "conflict",
                "old_value": [f"open #{i} {f}: {c} / {n}" for i, f, c, n in zip(
                    rows["conflict_id"], rows["field"], rows["current_value"], rows["incoming_value"], strict=True)],
                "new_value": [f"closed #{i}: {r}" for i, r in zip(rows["conflict_id"], rows["reason"], strict=True)]})
            self._append_history(con, diffs, "restore", by, cause)

    def history_after(self, seq: int) -> pd.DataFrame:
        return self._query("SELECT * FROM history WHERE seq > ? ORDER BY seq", [seq])

    def table_names(self) -> list[str]:
        """Every table of the store (views excluded), from the catalog."""
        rows = self._query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                           "AND table_type = 'BASE TABLE' ORDER BY table_name")
        return rows["table_name"].tolist()

    def table_snapshot(self, tables: list[str]) -> dict[str, pd.DataFrame]:
        """Every named table, read in one transaction so they agree with each other (names checked, quoted)."""
        if self._in_shared():
            return snapshot_sql.read_tables(self._shared, tables)
        con = self._connect(read_only=True)
        try:
            con.execute("BEGIN TRANSACTION")
            return snapshot_sql.read_tables(con, tables)
        finally:
            con.close()

    def load_snapshot(self, tables: dict[str, pd.DataFrame]) -> None:
        """Fill an empty store from a snapshot, in one transaction; a store holding data is refused, and so is
        a table or column this store's catalog does not have."""
        with self._transaction() as con:
            try:
                snapshot_sql.load_tables(con, tables)
            except snapshot_sql.UnknownIdentifierError:
                raise
            except ValueError as err:
                raise ValueError(f"{self.path}: {err}") from err

    def table_columns(self) -> dict[str, list[str]]:
        """Every table of the store and its columns, from the catalog."""
        if self._in_shared():
            return snapshot_sql.catalog_columns(self._shared)
        con = self._connect(read_only=True)
        try:
            return snapshot_sql.catalog_columns(con)
        finally:
            con.close()

    def table_row_counts(self) -> dict[str, int]:
        """Rows per table (inside an atomic change: what it has written so far)."""
        if self._in_shared():
            return snapshot_sql.row_counts(self._shared)
        con = self._connect(read_only=True)
        try:
            return snapshot_sql.row_counts(con)
        finally:
            con.close()

    def history(self, lead_id: str | None = None) -> pd.DataFrame:
        if lead_id:
            return self._query("SELECT * FROM history WHERE lead_id = ? ORDER BY seq", [lead_id])
        return self._query("SELECT * FROM history ORDER BY seq")

    def apply_decisions(self, overrides: pd.DataFrame, decided: pd.DataFrame, lead_updates: pd.DataFrame) -> None:
        """Operators' decisions in one transaction: overrides appended, conflicts closed, leads updated,
        and every change written to the history."""
        import pandas as pd
        with self._transaction() as con:
            if len(lead_updates):
                con.register("updated_leads", lead_updates[["lead_id"]].drop_duplicates())
                before = con.execute("SELECT * FROM leads WHERE lead_id IN (SELECT lead_id FROM updated_leads)").df()
                con.unregister("updated_leads")
                old = [str(before.set_index("lead_id").at[lead, field] or "") if lead in set(before["lead_id"]) else ""
                       for lead, field in zip(lead_updates["lead_id"], lead_updates["field"], strict=True)]
                diffs = pd.DataFrame({"lead_id": lead_updates["lead_id"].to_numpy(),
                                      "field": lead_updates["field"].to_numpy(), "old_value": old,
                                      "new_value": lead_updates["value"].astype(str).to_numpy()})
                keep = diffs["old_value"] != diffs["new_value"]
                for (action, actor, cause), group in diffs[keep].groupby(
                        [lead_updates.loc[keep.to_numpy(), "action"].to_numpy(),
                         lead_updates.loc[keep.to_numpy(), "actor"].to_numpy(),
                         lead_updates.loc[keep.to_numpy(), "cause"].to_numpy()], sort=False):
                    self._append_history(con, group, action, actor, cause)
            if len(overrides):
                con.register("new_overrides", overrides[OVERRIDE_COLUMNS])
                con.execute("INSERT INTO lead_overrides SELECT * FROM new_overrides")
                con.unregister("new_overrides")
            if len(decided):
                con.register("decided", decided[["conflict_id", "decided_by", "decided_at", "decision"]])
                con.execute("UPDATE conflicts SET status = 'decided', decided_by = d.decided_by, "
                            "decided_at = d.decided_at, decision = d.decision FROM decided d "
                            "WHERE conflicts.conflict_id = d.conflict_id")
                con.unregister("decided")
            for row in lead_updates.itertuples(index=False):
                con.execute(f'UPDATE leads SET "{row.field}" = ?, updated_at = ? WHERE lead_id = ?',
                            [row.value, row.updated_at, row.lead_id])
            key_fields.refuse_taken_primary_contacts(
                con, list(zip(lead_updates["lead_id"], lead_updates["field"], lead_updates["value"].astype(str),
                              strict=True)), "the decision")

    def accepted_links(self) -> pd.DataFrame:
        return self._query("SELECT record_l AS id_l, record_r AS id_r FROM match_links")

    def match_links(self, record_id: int) -> pd.DataFrame:
        return self._query("SELECT * FROM match_links WHERE record_l = ? OR record_r = ? ORDER BY match_weight DESC",
                           [record_id, record_id])

    def link_model(self) -> str | None:
        rows = self._query("SELECT value FROM store_meta WHERE key = 'link_model'")
        return None if rows.empty else str(rows.iloc[0, 0])

    def shared_contacts(self) -> pd.DataFrame:
        return self._query("SELECT * FROM shared_contacts ORDER BY n_records DESC, kind, value")

    # -- linkage -----------------------------------------------------------------------------
    def active_records_arrow(self, columns: list[str]) -> pa.Table:
        """These columns of every active record, in record id order, as Arrow: what a full pass links
        (the base read once, only the columns it needs, no pandas copy)."""
        select = ", ".join(f'"{c}"' for c in columns)
        sql = f"SELECT {select} FROM records WHERE retired_by IS NULL ORDER BY record_id"  # -> pyarrow.Table
        if self._in_shared():
            return self._shared.sql(sql).to_arrow_table()
        con = self._connect(read_only=True)
        try:
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()

    def kept_apart_pairs(self, lead_ids: list[str] | None = None) -> pd.DataFrame:
        """id_l, id_r: every active record of a split lead against every one of the lead it was split
        from (operators' unmerges), found by join: only the split leads' records are read. With
        `lead_ids` (a change's neighbourhood), only the splits whose two leads are both among them."""
        if lead_ids is None:
            return self._query(change_sql.KEPT_APART_ALL)
        return self._query_with(change_sql.KEPT_APART, {"wanted_leads": _lead_ids(lead_ids)})

    def records_for_linkage(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Every record with the columns linkage and survivorship read (`columns`: only these; "import_time"
        is when its import was saved).

        Records that reach nobody are linked too: they may join a lead that has contacts (and bring
        its title or address), but never form a lead of their own.
        """
        select = "r.*, i.imported_at AS import_time" if columns is None else ", ".join(
            "i.imported_at AS import_time" if c == "import_time" else f'r."{c}"' for c in dict.fromkeys(columns))
        return self._query(
            f"SELECT {select} FROM records r JOIN imports i USING (import_id) "
            "WHERE r.retired_by IS NULL ORDER BY r.record_id"
        )

    def apply_lead_changes(self, changes: LeadChanges) -> None:
        with self._transaction() as con:
            con.register("record_leads_df", changes.record_leads[["record_id", "lead_id"]])
            con.execute("CREATE OR REPLACE TEMP TABLE record_leads AS SELECT * FROM record_leads_df")
            con.unregister("record_leads_df")
            con.execute(
                "UPDATE records SET lead_id = record_leads.lead_id FROM record_leads "
                "WHERE records.record_id = record_leads.record_id "
                "AND records.lead_id IS DISTINCT FROM record_leads.lead_id"
            )
            # records linked for the first time are this change's source touches (first/latest source)
            touches = con.execute(
                "SELECT lead_id, arg_min(source, record_id) AS first, arg_max(source, record_id) AS latest "
                "FROM records WHERE first_lead_id IS NULL AND lead_id IS NOT NULL AND coalesce(source, '') <> '' "
                "AND record_id IN (SELECT record_id FROM record_leads) GROUP BY lead_id").df()
            # the lead a record first belonged to: what an unmerge gives back
            con.execute("UPDATE records SET first_lead_id = lead_id WHERE first_lead_id IS NULL AND lead_id IS NOT NULL "
                        "AND record_id IN (SELECT record_id FROM record_leads)")
            con.execute("DROP TABLE record_leads")
            # the writes the leads' history does not read run on the history writer's thread, one after the
            # other on this connection: the SQL ones while the first slices are hashed (DuckDB releases the
            # GIL); the ones scanning pandas frames (they hold the GIL) after the hashing, with the leads
            link_state = partial(self._write_link_state, con, changes)
            linked_frames = partial(self._write_linked_frames, con, changes)
            if len(changes.upserts):
                if not changes.upserts["lead_id"].is_unique:  # the leads table has no key index to refuse it
                    raise ValueError("a change may write each lead once: repeated lead ids in the upserts")
                upserts = changes.upserts.reindex(columns=LEAD_COLUMNS)
                # columns curation does not compute (source attribution, owner …) keep their stored values
                carried = [c for c in LEAD_COLUMNS if c not in changes.upserts.columns]
                # the stored rows, for those and the history: not a provenance the change rewrites (untracked,
                # the biggest column); looked up by the upserts' ids alone (not a conversion of the whole frame)
                read = [c for c in LEAD_COLUMNS if c != "provenance" or c in carried or c in TRACKED_FIELDS]
                con.register("upsert_ids", upserts[["lead_id"]])
                before = con.execute(f"SELECT {', '.join(read)} FROM leads "
                                     "WHERE lead_id IN (SELECT lead_id FROM upsert_ids)").df()
                con.unregister("upsert_ids")
                if carried:
                    stored = before.set_index("lead_id")[carried].reindex(upserts["lead_id"])
                    for column in carried:
                        upserts[column] = stored[column].astype(object).where(stored[column].notna(), None).to_numpy()
                if len(touches):  # source attribution of the leads these records touch (in the history too)
                    touch = touches.set_index("lead_id").reindex(upserts["lead_id"])
                    touched = touch["latest"].notna().to_numpy()
                    unset = upserts["first_source"].fillna("").to_numpy() == ""
                    upserts.loc[touched & unset, "first_source"] = touch["first"].to_numpy()[touched & unset]
                    upserts.loc[touched, "latest_source"] = touch["latest"].to_numpy()[touched]
                    touches = touches[~touches["lead_id"].isin(upserts["lead_id"])]
                self._append_lead_history(con, before, upserts, changes, meanwhile=[link_state],
                                          last=[linked_frames, partial(self._write_leads, con, upserts)])
            else:
                link_state()
                linked_frames()
            if len(touches):
                con.register("source_touches", touches)
                con.execute("UPDATE leads SET first_source = coalesce(nullif(leads.first_source, ''), t.first), "
                            "latest_source = t.latest FROM source_touches t WHERE leads.lead_id = t.lead_id")
                con.unregister("source_touches")

    def _write_link_state(self, con: duckdb.DuckDBPyConnection, changes: LeadChanges) -> None:
        """What a change writes of its linkage in SQL alone: link values and their counters, the queue, the
        model (as `changes` carries them)."""
        if changes.link_values is not None:
            con.execute("DELETE FROM link_values")
            con.register("all_values", changes.link_values)  # pandas or Arrow (a full pass)
            con.execute("INSERT INTO link_values SELECT col, value, record_id, surname FROM all_values")
            con.unregister("all_values")
            self._recount_values(con)
            con.execute("INSERT OR REPLACE INTO store_meta VALUES ('link_values', ?)",
                        [changes.link_values_version or ""])
        elif changes.link_values_version and con.execute(  # the saved values are kept: counted once, stamped
                "SELECT count(*) FROM store_meta WHERE key = 'link_values' AND value = ?",
                [changes.link_values_version]).fetchall()[0][0] == 0:
            self._recount_values(con)
            con.execute("INSERT OR REPLACE INTO store_meta VALUES ('link_values', ?)", [changes.link_values_version])
        if changes.queue_done is not None:
            con.execute("DELETE FROM link_queue WHERE seq <= ?", [changes.queue_done])
        if changes.link_model is not None:
            con.execute("INSERT OR REPLACE INTO store_meta VALUES ('link_model', ?)", [changes.link_model])

    def _write_linked_frames(self, con: duckdb.DuckDBPyConnection, changes: LeadChanges) -> None:
        """What a change writes from its frames besides the leads: match links, conflicts, shared contacts.
        (DuckDB's scan of a pandas frame holds the GIL: a full pass runs these after its hashing.)"""
        import pandas as pd

        if changes.match_links is not None:
            if changes.relinked is None:
                con.execute("DELETE FROM match_links")
            else:
                con.register("relinked_ids", pd.DataFrame({"record_id": changes.relinked}, dtype="int64"))
                con.execute("DELETE FROM match_links WHERE record_l IN (SELECT record_id FROM relinked_ids) "
                            "OR record_r IN (SELECT record_id FROM relinked_ids)")
                con.unregister("relinked_ids")
            con.register("new_links", changes.match_links)
            con.execute("INSERT INTO match_links SELECT record_l, record_r, match_weight, match_probability, "
                        "contributions FROM new_links")
            con.unregister("new_links")
        if changes.new_conflicts is not None and len(changes.new_conflicts):
            con.register("new_conflicts", changes.new_conflicts[CONFLICT_COLUMNS])
            con.execute("INSERT INTO conflicts SELECT * FROM new_conflicts")
            con.unregister("new_conflicts")
        if changes.shared_contacts is not None:
            if changes.shared_values is None:
                con.execute("DELETE FROM shared_contacts")
            else:
                con.register("shared_values", changes.shared_values[["kind", "value"]])
                con.execute("DELETE FROM shared_contacts WHERE (kind, value) IN (SELECT kind, value FROM shared_values)")
                con.unregister("shared_values")
            con.register("shared_now", changes.shared_contacts[SHARED_CONTACT_COLUMNS])
            con.execute("INSERT INTO shared_contacts SELECT * FROM shared_now")
            con.unregister("shared_now")

    @staticmethod
    def _write_leads(con: duckdb.DuckDBPyConnection, upserts: pd.DataFrame) -> None:
        """The curated leads written over their stored rows (`upserts`: every lead column)."""
        con.register("lead_upserts", upserts)
        try:
            con.execute("DELETE FROM leads WHERE lead_id IN (SELECT lead_id FROM lead_upserts)")
            con.execute(f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) SELECT * FROM lead_upserts")
        finally:
            con.unregister("lead_upserts")

    # -- value counters, kept on write ------------------------------------------------------
    @staticmethod
    def _counters_kept(con: duckdb.DuckDBPyConnection) -> bool:
        """Whether value_counts/value_names are kept: from the first full pass on, which builds them with
        the link values' version. Before it, the next relink is a full pass anyway, so saves skip them."""
        return bool(con.execute("SELECT count(*) FROM store_meta WHERE key = 'link_values' AND value <> ''")
                    .fetchall()[0][0])

    @staticmethod
    def _count_values(con: duckdb.DuckDBPyConnection, values_sql: str, params: list, sign: int) -> None:
        """Add (sign 1) or take away (sign -1) the link values `values_sql` selects (col, value, surname)
        to or from the counters: only the keys these values carry are read and written."""
        con.execute(f"CREATE OR REPLACE TEMP TABLE counted AS SELECT col, value, surname FROM ({values_sql}) v", params)
        for statement in change_sql.count_values(sign):
            con.execute(statement)
        con.execute("DROP TABLE counted")

    @staticmethod
    def _recount_values(con: duckdb.DuckDBPyConnection) -> None:
        """The counters counted again over all link values (a full pass rebuilds them)."""
        for statement in change_sql.RECOUNT_VALUES:
            con.execute(statement)

    def value_counters(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The stored counters (value_counts, value_names), whole: for checks, not for the change path."""
        return (self._query("SELECT * FROM value_counts ORDER BY col, value"),
                self._query("SELECT * FROM value_names ORDER BY col, value, surname"))

    def recounted_values(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """What the counters should hold, counted from scratch over the link values: for checks."""
        return (self._query("SELECT col, value, count(*) AS n_records, count(DISTINCT surname) AS n_names "
                            "FROM link_values GROUP BY col, value ORDER BY col, value"),
                self._query("SELECT col, value, surname, count(*) AS n_records FROM link_values "
                            "WHERE surname IS NOT NULL GROUP BY col, value, surname ORDER BY col, value, surname"))

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

    def imports_waiting_to_link(self) -> list[str]:
        """Live imports with records in the link queue (store/gate_sql.py)."""
        return [row["import_id"] for row in self._rows(gate_sql.WAITING_IMPORTS)]

    # -- the restores log (store/restores_sql.py) ---------------------------------------------
    def record_restore(self, restore_id: str, kind: str, target: str, by: str, imports_undone: list[str]) -> None:
        with self._transaction() as con:
            con.execute(restores_sql.RECORD, [restore_id, kind, target, by,
                                              datetime.now(timezone.utc).replace(tzinfo=None),
                                              json.dumps(imports_undone)])

    def restore_row(self, restore_id: str) -> dict | None:
        rows = self._rows(restores_sql.ONE, [restore_id])
        return rows[0] if rows else None

    def restores(self) -> pd.DataFrame:
        return self._query(restores_sql.ALL)

    def mark_restore_undone(self, restore_id: str, by: str) -> None:
        with self._transaction() as con:
            con.execute(restores_sql.MARK_UNDONE, [by, datetime.now(timezone.utc).replace(tzinfo=None), restore_id])

    def drop_restore_overrides(self, restore_id: str) -> list[str]:
        """Remove the overrides a restore wrote; its leads wait in the queue to be curated again. Returns them."""
        prefix = restores_sql.note_prefix(restore_id)
        with self._transaction() as con:
            leads = [row[0] for row in con.execute(restores_sql.OVERRIDDEN_LEADS, [prefix]).fetchall()]
            con.execute(restores_sql.DROP_OVERRIDES, [prefix])
            self._queue_leads(con, leads)
        return leads

    def revive_import(self, import_id: str, link_values: pd.DataFrame) -> int:
        """Put an undone import back: its records return to linkage (with these link values, record_id as
        stored) and wait in the queue; the import is live again. Refused when the same content is live."""
        with self._transaction() as con:
            row = con.execute("SELECT undone_at FROM imports WHERE import_id = ?", [import_id]).fetchall()
            if not row:
                raise ValueError(f"no import {import_id}")
            if row[0][0] is None:
                raise ValueError(f"import {import_id} is not undone")
            twin = con.execute(restores_sql.LIVE_TWIN, [import_id]).fetchall()
            if twin:
                raise ValueError(f"import {import_id} was imported again since (as {twin[0][0]}); undo that "
                                 "import first")
            ids = [r[0] for r in con.execute("SELECT record_id FROM records WHERE import_id = ? "
                                             "ORDER BY record_id", [import_id]).fetchall()]
            con.execute("UPDATE records SET retired_by = NULL, lead_id = NULL WHERE import_id = ?", [import_id])
            con.execute("UPDATE imports SET undone_by = NULL, undone_at = NULL WHERE import_id = ?", [import_id])
            if len(link_values):
                con.register("revived_values", link_values)
                con.execute("INSERT INTO link_values SELECT col, value, record_id, surname FROM revived_values")
                con.unregister("revived_values")
                if self._counters_kept(con):
                    self._count_values(con, "SELECT col, value, surname FROM link_values WHERE record_id IN "
                                       "(SELECT record_id FROM records WHERE import_id = ?)", [import_id], 1)
            if ids:
                seq = self._next_queue_seq(con)
                con.register("revived_ids", _ids(ids))
                con.execute("INSERT INTO link_queue SELECT ? + row_number() OVER (ORDER BY record_id) - 1, record_id, "
                            "NULL, 'added', NULL, NULL, NULL FROM revived_ids", [seq])
                con.unregister("revived_ids")
        return len(ids)

    def returning_leads(self, record_ids: list[int]) -> dict[int, str]:
        """record_id -> the retired lead an earlier copy of the record (same row of the same file, in an undone
        import) first belonged to: the id its cluster takes back (store/returning_sql.py)."""
        if not record_ids or not self._rows("SELECT 1 FROM leads WHERE status = 'retired' LIMIT 1"):
            return {}  # no lead is retired (every base import): no id can come back
        rows = self._query_with(returning_sql.RETURNING_LEADS, {"wanted_records": _ids(record_ids)})
        return dict(zip(rows["record_id"].astype(int), rows["lead_id"].astype(str), strict=True))

    def link_queue(self) -> pd.DataFrame:
        return self._query("SELECT * FROM link_queue ORDER BY seq")

    def golden_records(self, scope: pd.DataFrame, switchboards: Collection[str]) -> pd.DataFrame:
        """The golden values of the leads in `scope` (record_id, lead_id: every record of those leads with
        the lead it belongs to now), computed here by survivorship's SQL (survivorship_sql.golden_sql)."""
        import pandas as pd

        # survivorship's rules module loads pandas: imported here, not when the store is opened
        from datafactory_pipelines.survivorship_sql import INPUT_COLUMNS, golden_sql

        relation = (f"(SELECT s.lead_id, i.imported_at AS import_time, {', '.join('r.' + c for c in INPUT_COLUMNS)} "
                    "FROM curate_scope s JOIN records r ON r.record_id = s.record_id "
                    "JOIN imports i ON i.import_id = r.import_id)")
        return self._query_with(golden_sql(relation, "curate_switchboards"), {
            "curate_scope": pd.DataFrame({"record_id": scope["record_id"].to_numpy(dtype="int64"),
                                          "lead_id": scope["lead_id"].to_numpy(dtype=object)}),
            "curate_switchboards": pd.DataFrame({"value": pd.Series(sorted(switchboards), dtype=object)})})

    def value_stats(self, keys: pd.DataFrame) -> pd.DataFrame:
        """Per (col, value): how many active records carry it and how many different surnames (the counters)."""
        return self._query_with(change_sql.VALUE_STATS, {"wanted": keys[["col", "value"]]})

    def change_counts(self, added: list[int], removed: pd.DataFrame) -> pd.DataFrame:
        """Every (col, value) the change adds (the stored values of the `added` records) or removes
        (`removed`: col, value, surname), with n_added, n_removed, the counters now and the surnames
        it made appear or vanish (change_sql.CHANGE_COUNTS)."""
        return self._query_with(change_sql.CHANGE_COUNTS, {
            "added": _ids(added),
            "removed": removed[["col", "value", "surname"]].astype(object)})

    def neighbourhood_stats(self, record_ids: list[int]) -> pd.DataFrame:
        """The counters (col, value, n_records, n_names) of every value these records carry."""
        return self._query_with(change_sql.NEIGHBOURHOOD_STATS, {"wanted": _ids(record_ids)})

    def record_leads_of(self, record_ids: list[int], lead_ids: list[str]) -> pd.DataFrame:
        """record_id, lead_id of the active records with these ids or in these leads (no other column)."""
        return self._query_with(change_sql.RECORD_LEADS_OF, {
            "wanted_records": _ids(record_ids),
            "wanted_leads": _lead_ids(lead_ids)})

    def records_sharing(self, keys: pd.DataFrame) -> pd.DataFrame:
        """record_id, lead_id of the records carrying any of these (col, value)."""
        return self._query_with(change_sql.RECORDS_SHARING, {"wanted": keys[["col", "value"]]})

    def linkage_records_of(self, record_ids: list[int], lead_ids: list[str],
                           columns: list[str] | None = None) -> pd.DataFrame:
        """Active records by id or by lead, with the columns linkage and survivorship read (`columns`: only
        these, "import_time" being when its import was saved; fewer columns, less of the base decompressed)."""
        select = ", ".join("i.imported_at AS import_time" if c == "import_time" else f"r.{c}"
                           for c in dict.fromkeys(columns or [*LINKAGE_RECORD_COLUMNS, "import_time"]))
        return self._query_with(
            f"SELECT {select} FROM records r JOIN imports i ON i.import_id = r.import_id "
            "WHERE r.retired_by IS NULL AND (r.record_id IN (SELECT record_id FROM wanted_records) "
            "OR r.lead_id IN (SELECT lead_id FROM wanted_leads)) ORDER BY r.record_id",
            {"wanted_records": _ids(record_ids),
             "wanted_leads": _lead_ids(lead_ids)})

    def links_touching(self, record_ids: list[int]) -> pd.DataFrame:
        return self._query_with(change_sql.LINKS_TOUCHING, {"wanted": _ids(record_ids)})

    def leads_by_id(self, lead_ids: list[str], columns: list[str] | None = None) -> pd.DataFrame:
        """These leads' rows (`columns`: only these; fewer columns, less of the leads table decompressed)."""
        select = "*" if columns is None else ", ".join(f'"{c}"' for c in columns)
        # the rows are found by their lead_id alone, then only those rows' columns are read (by DuckDB's
        # rowid): at 400k leads, 19k leads' rows in 2/3 of the time of filtering every column's scan
        return self._query_with(f"SELECT {select} FROM leads WHERE rowid IN (SELECT rowid FROM leads "
                                "WHERE lead_id IN (SELECT lead_id FROM wanted)) ORDER BY lead_id",
                                {"wanted": _lead_ids(lead_ids)})

    def leads_around(self, lead_ids: list[str]) -> pd.DataFrame:
        """These leads and every active lead sharing a primary mobile with one of them."""

        return self._query_with(
            "SELECT * FROM leads WHERE lead_id IN (SELECT lead_id FROM wanted) OR (status = 'active' AND mobile <> '' "
            "AND mobile IN (SELECT mobile FROM leads WHERE lead_id IN (SELECT lead_id FROM wanted))) ORDER BY lead_id",
            {"wanted": _lead_ids(lead_ids)})

    def leads_carrying_mobiles(self, mobiles: list[str]) -> list[str]:
        import pandas as pd
        found = self._query_with(
            "SELECT lead_id FROM records WHERE mobile IN (SELECT mobile FROM wanted) "
            "AND retired_by IS NULL AND lead_id IS NOT NULL "
            # a lead may hold a mobile none of its records carries (a conflict holds it: see conflicts)
            "UNION SELECT lead_id FROM leads WHERE mobile IN (SELECT mobile FROM wanted) AND status = 'active'",
            {"wanted": pd.DataFrame({"mobile": pd.Series(list(mobiles), dtype=object)})})
        return list(found["lead_id"])

    def overrides_for(self, lead_ids: list[str]) -> pd.DataFrame:
        return self._query_with(
            f"SELECT {', '.join(OVERRIDE_COLUMNS)} FROM (SELECT *, row_number() OVER (PARTITION BY lead_id, field "
            "ORDER BY decided_at DESC) AS latest FROM lead_overrides WHERE lead_id IN (SELECT lead_id FROM wanted)) o "
            "WHERE latest = 1",
            {"wanted": _lead_ids(lead_ids)})

    def conflicts_for(self, lead_ids: list[str], status: str | None = "open") -> pd.DataFrame:
        where = "AND status = ?" if status else ""
        return self._query_with(
            f"SELECT * FROM conflicts WHERE lead_id IN (SELECT lead_id FROM wanted) {where} ORDER BY conflict_id",
            {"wanted": _lead_ids(lead_ids)}, [status] if status else [])

    def saved_link_values(self) -> str:
        """The linkage config version every active record's saved link values come from ('mixed' when they
        differ or some record was saved without; '' before any save)."""
        rows = self._query("SELECT value FROM store_meta WHERE key = 'saved_link_values'")
        return "" if rows.empty else str(rows.iloc[0, 0])

    def change_path_state(self) -> dict[str, int | str]:
        row = self._query(
            "SELECT (SELECT count(*) FROM records WHERE retired_by IS NULL) AS active_records, "
            "(SELECT count(*) FROM records WHERE lead_id IS NOT NULL) AS linked_records, "
            "(SELECT coalesce(max(CAST(substr(lead_id, 2) AS BIGINT)), 0) FROM leads) AS max_lead_number, "
            "(SELECT coalesce(max(conflict_id), 0) FROM conflicts) AS max_conflict_id, "
            "(SELECT count(*) FROM leads WHERE status = 'active') AS active_leads, "
            "(SELECT coalesce(max(value), '') FROM store_meta WHERE key = 'link_values') AS link_values"
        ).iloc[0]
        return {k: (v if k == "link_values" else int(v)) for k, v in row.items()}

    def active_lead_count(self) -> int:
        """The active leads (of change_path_state, without its counts over the records)."""
        return int(self._tuples("SELECT count(*) FROM leads WHERE status = 'active'")[0][0])

    # -- reading -----------------------------------------------------------------------------
    def leads(self, include_retired: bool = False) -> pd.DataFrame:
        where = "" if include_retired else "WHERE status = 'active'"
        return self._query(f"SELECT * FROM leads {where} ORDER BY lead_id")

    def links(self) -> pd.DataFrame:
        return self._query(
            "SELECT source_file, sheet, source_row, lead_id, import_id, record_id FROM records "
            "ORDER BY import_id, record_id"
        )

    def counts(self) -> dict[str, int]:
        row = self._query(
            "SELECT (SELECT count(*) FROM imports) AS imports, (SELECT count(*) FROM records) AS records, "
            "(SELECT count(*) FROM records WHERE NOT reachable) AS unreachable_records, "
            "(SELECT count(*) FROM leads WHERE status = 'active') AS active_leads, "
            "(SELECT count(*) FROM leads WHERE status = 'merged') AS merged_leads, "
            "(SELECT count(*) FROM conflicts WHERE status = 'open') AS open_conflicts"
        ).iloc[0]
        return {k: int(v) for k, v in row.items()}
