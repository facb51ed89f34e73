"""One PostgreSQL session, used the way the store's modules use a DuckDB connection.

The store's modules were written against DuckDB's connection: `execute(sql, params)` returning something to
`fetchall()` or turn into a frame (`df()`) or an Arrow table, and `register(name, frame)` to join a frame of
keys in SQL. On PostgreSQL a registered frame is a temporary table filled by one COPY (and analyzed, so the
planner joins it by index), a result that becomes a frame or Arrow table comes back through one COPY, and
the SQL passes through store/postgres/dialect.py. The session is in autocommit mode, so the modules'
own BEGIN / COMMIT / ROLLBACK statements decide the transactions, as on DuckDB.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from datafactory_pipelines.store.postgres import arrow_copy, dialect

if TYPE_CHECKING:
    import pandas as pd
    import psycopg
    import pyarrow as pa

log = logging.getLogger(__name__)

_READS = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|VALUES|TABLE)\b", re.IGNORECASE)
_WRITES_IN_WITH = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: the table a statement rewrites: UPDATE t, DELETE FROM t, CREATE [TEMPORARY] TABLE t AS (appended rows look
#: like the ones before them; autovacuum analyzes the table after the commit)
_WRITTEN = re.compile(r"^\s*(?:UPDATE|DELETE\s+FROM|CREATE\s+(?:TEMP(?:ORARY)?\s+)?TABLE)\s+"
                      r"(?:pg_temp\.)?([A-Za-z_][A-Za-z0-9_]*)\b", re.IGNORECASE)
#: the columns an UPDATE sets (`SET a = …, b = …`)
_SET_COLUMNS = re.compile(r"(?:\bSET\s+|,\s*)([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", re.IGNORECASE)
#: a registered frame of at most this many columns is keys to join (analyzed); a wider one is rows to write
KEY_COLUMNS = 6
#: a write of at least this many rows, and at least STALE_SHARE of the table's last counted rows, analyzes it
ANALYZE_ROWS = 1000
STALE_SHARE = 0.1
#: a statement marked `change_sql.by_key(table)` is planned with index lookups only while that key table
#: holds at most this many rows (beyond it, hash joins over the base may be cheaper again)
BY_KEY_MAX_ROWS = 250_000
_BY_KEY = re.compile(r"^\s*/\* by key: ([A-Za-z_][A-Za-z0-9_]*) \*/\s*")
#: what a keyed statement is planned with: PostgreSQL prices a probe of a cached index too high and, for a
#: change-sized key table, hashes the whole base instead (value_counts' 2.6M rows for 60k keys: 2-3x slower)
_LOOKUP_PLAN = {"enable_hashjoin": "off", "enable_mergejoin": "off"}


class PgResult:
    """A statement's result. A query (SELECT / WITH) runs when it is read: row by row for `fetchall`, through
    COPY for a frame or an Arrow table; any other statement has run already."""

    def __init__(self, owner: PgConnection, sql: str, params: Any, deferred: bool,
                 plan: dict[str, str] | None = None) -> None:
        self._owner = owner
        self._sql = sql
        self._params = params
        self._plan = plan or {}
        self._cursor: psycopg.Cursor | None = None
        if not deferred:
            self._run()

    def _run(self) -> psycopg.Cursor:
        if self._cursor is None:
            cursor = self._owner.raw.cursor()
            try:
                with self._owner.planned(self._plan):
                    cursor.execute(self._sql, self._params)
            except Exception as exc:
                exc.add_note(f"statement (parameters not shown): {self._sql[:500]}")
                log.debug("statement failed: %s: %s", exc, self._sql[:500])
                raise
            self._cursor = cursor
        return self._cursor

    @property
    def description(self) -> Any:
        return self._run().description

    def fetchall(self) -> list[tuple]:
        cursor = self._run()
        return cursor.fetchall() if cursor.description is not None else []

    def fetchone(self) -> tuple | None:
        cursor = self._run()
        return cursor.fetchone() if cursor.description is not None else None

    def fetch_arrow_table(self) -> pa.Table:
        if self._cursor is not None:  # already run (not a plain query): its rows as they are
            return _rows_to_arrow(self._cursor)
        with self._owner.raw.cursor() as cursor, self._owner.planned(self._plan):
            bound = cursor.mogrify(self._sql, self._params) if self._params is not None else self._sql
            return arrow_copy.copy_out(cursor, bound)

    to_arrow_table = arrow = fetch_arrow_table

    def df(self) -> pd.DataFrame:
        return arrow_copy.frame(self.fetch_arrow_table())

    fetchdf = fetch_df = df


def in_failed_transaction(raw: psycopg.Connection) -> bool:
    """After a failed statement inside a transaction the session takes nothing but ROLLBACK."""
    import psycopg

    return raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR


def _rows_to_arrow(cursor: psycopg.Cursor) -> pa.Table:
    import pyarrow as pa

    names = [d.name for d in cursor.description or []]
    rows = cursor.fetchall() if cursor.description is not None else []
    types = [arrow_copy.arrow_type(d.type_code) for d in cursor.description or []]
    return pa.table([pa.array([row[i] for row in rows], types[i]) for i in range(len(names))], names=names)


class PgConnection:
    """A DuckDB-connection-shaped view of one psycopg session (see the module's docstring)."""

    def __init__(self, raw: psycopg.Connection, release: Callable[[PgConnection], None] | None = None) -> None:
        self.raw = raw
        self._release = release
        self._registered: set[str] = set()
        self._temp_rows: dict[str, int] = {}  # rows of the temporary tables this session filled
        self._catalog_types: dict[str, str] | None = None

    def execute(self, sql: str, params: Any = None) -> PgResult:
        named = isinstance(params, dict)
        if params is not None and not named and len(params) == 0:
            params = None
        plan: dict[str, str] = {}
        keyed = _BY_KEY.match(sql)
        if keyed:
            sql = sql[keyed.end():]
            if self._temp_rows.get(keyed.group(1), BY_KEY_MAX_ROWS + 1) <= BY_KEY_MAX_ROWS:
                plan = _LOOKUP_PLAN
        text = dialect.to_postgres(sql, params is not None, named, params)
        reads = bool(_READS.match(text)) and not (text.lstrip().upper().startswith("WITH")
                                                  and _WRITES_IN_WITH.search(text))
        result = PgResult(self, text, params, deferred=reads, plan=plan)
        if not reads:
            self._analyze_if_stale(text, result)
        return result

    @contextmanager
    def planned(self, settings: dict[str, str]) -> Iterator[None]:
        """Run what follows with these planner settings, and the session's own again after (unless the
        statement failed inside a transaction: its rollback undoes the settings with it)."""
        if not settings:
            yield
            return
        for name, value in settings.items():
            self.raw.execute(f"SET {name} = {value}")
        try:
            yield
        finally:
            if not in_failed_transaction(self.raw):
                for name in settings:
                    self.raw.execute(f"RESET {name}")

    def _analyze_if_stale(self, sql: str, result: PgResult) -> None:
        """ANALYZE a table a statement just changed much of. Autovacuum analyzes only after a commit; inside a
        change, the next statement would be planned from statistics that miss the rows it just wrote (every
        record's lead_id still NULL after the write of the leads: a nested loop over 10^10 pairs)."""
        written = _WRITTEN.match(sql)
        rows = result._cursor.rowcount if result._cursor is not None else -1  # noqa: SLF001 - its own result
        if written is not None and sql.lstrip()[:6].upper() == "CREATE":
            self._temp_rows[written.group(1)] = rows
        if written is None or rows < ANALYZE_ROWS:
            return
        table = written.group(1)
        counted = self.raw.execute("SELECT coalesce(max(reltuples), -1) FROM pg_class WHERE oid = "
                                   "to_regclass(%s)", [table]).fetchone()[0]
        if counted < 0 or rows >= STALE_SHARE * counted:
            # an UPDATE: only the columns it sets (the records' whole sample costs seconds)
            columns = _SET_COLUMNS.findall(sql.split(" FROM ", 1)[0].split(" WHERE ", 1)[0]) \
                if sql.lstrip()[:6].upper() == "UPDATE" else []
            if columns:
                known = {row[0] for row in self.raw.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                    "AND NOT attisdropped", [table]).fetchall()}
                columns = [c for c in columns if c in known]
            self.raw.execute(f"ANALYZE {table}" + (f" ({', '.join(dict.fromkeys(columns))})" if columns else ""))

    def sql(self, sql: str) -> PgResult:
        return self.execute(sql)

    def register(self, name: str, data: Any) -> None:
        """`data` (pandas, Arrow, a record batch reader) as the temporary table `name`, until `unregister`."""
        if not _NAME.match(name):
            raise ValueError(f"not a table name: {name!r}")
        table = arrow_copy.as_arrow(data)
        columns = ", ".join(f'"{field.name}" {self._column_type(field)}' for field in table.schema)
        with self.raw.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
            cursor.execute(f"CREATE TEMPORARY TABLE {name} ({columns})")
            arrow_copy.copy_in(cursor, name, table)
            self._temp_rows[name] = table.num_rows
            # the planner's row estimate, to join a few keys by index; a wide frame is rows to write, not keys
            if table.num_rows > 100 and table.num_columns <= KEY_COLUMNS:
                cursor.execute(f"ANALYZE {name}")
        self._registered.add(name)

    def append_arrow(self, table_name: str, data: Any) -> None:
        """Append `data`'s rows (its columns named as the table's) to a store table with one COPY: no temporary
        table in between (the history of a full pass: millions of rows)."""
        if not _NAME.match(table_name):
            raise ValueError(f"not a table name: {table_name!r}")
        with self.raw.cursor() as cursor:
            arrow_copy.copy_in(cursor, table_name, arrow_copy.as_arrow(data))

    def _column_type(self, field: pa.Field) -> str:
        """The type of a registered column: the one the store's tables give a column of that name (as DuckDB
        casts a frame's values into the column they are written to: text timestamps, all-NULL or empty
        columns), else the Arrow type's."""
        if self._catalog_types is None:
            rows = self.raw.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
                "GROUP BY column_name, data_type").fetchall()
            kinds: dict[str, set[str]] = {}
            for column, kind in rows:
                kinds.setdefault(column, set()).add(kind)
            self._catalog_types = {c: k.pop() for c, k in kinds.items() if len(k) == 1}
        kind = self._catalog_types.get(field.name)
        if kind is None:
            return arrow_copy.pg_type(field.type)
        return {"timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMPTZ",
                "bigint": "BIGINT", "integer": "INTEGER", "boolean": "BOOLEAN", "double precision": "DOUBLE PRECISION",
                "date": "DATE"}.get(kind, "TEXT")

    def unregister(self, name: str) -> None:
        if name in self._registered:
            self._registered.discard(name)
            self.raw.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")

    def close(self) -> None:
        for name in list(self._registered):
            try:
                self.unregister(name)
            except Exception:  # noqa: BLE001 - a broken session is not returned to the pool
                self._registered.clear()
        if self._release is not None:
            self._release(self)
        else:
            self.raw.close()
