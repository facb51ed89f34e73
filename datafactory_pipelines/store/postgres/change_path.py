"""What the change path reads, where PostgreSQL needs it asked differently from DuckDB.

Golden records: survivorship's statement (survivorship_sql.golden_sql) chains a dozen CTEs over the scope's
records. PostgreSQL estimates a join of two CTEs on two keys at a handful of rows, and then nests loops over
CTE scans: at 100k records that is 10^10 comparisons (minutes). So its input is first made a temporary table
(the scope's records found by index, then analyzed), and the statement runs with nested loops off: every
join inside it is a hash join over what the scope holds, whatever its size.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from datafactory_pipelines.store.duckdb.change_path import DuckDBChangePath

if TYPE_CHECKING:
    import pandas as pd

    from datafactory_pipelines.store.postgres.connection import PgConnection

log = logging.getLogger(__name__)


class PgChangePath(DuckDBChangePath):
    @contextmanager
    def _session(self) -> Iterator[PgConnection]:
        """The change's shared session when inside one, else a pooled one."""
        if self._in_shared():
            yield self._shared
            return
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    def golden_records(self, scope: pd.DataFrame, switchboards: Collection[str]) -> pd.DataFrame:
        import pandas as pd

        from datafactory_pipelines.survivorship_sql import INPUT_COLUMNS, golden_sql

        relation = (f"SELECT s.lead_id, i.imported_at AS import_time, {', '.join('r.' + c for c in INPUT_COLUMNS)} "
                    "FROM curate_scope s JOIN records r ON r.record_id = s.record_id "
                    "JOIN imports i ON i.import_id = r.import_id")
        tables = {"curate_scope": pd.DataFrame({"record_id": scope["record_id"].to_numpy(dtype="int64"),
                                                "lead_id": scope["lead_id"].to_numpy(dtype=object)}),
                  "curate_switchboards": pd.DataFrame({"value": pd.Series(sorted(switchboards), dtype=object)})}
        with self._session() as con:
            try:
                for name, frame in tables.items():
                    con.register(name, frame)
                con.execute("DROP TABLE IF EXISTS pg_temp.curate_input")
                # made and analyzed here: its row count and its leads are what the plan needs, not every column
                con.raw.execute(f"CREATE TEMPORARY TABLE curate_input AS {relation}")
                con.execute("ANALYZE curate_input (lead_id, record_id)")
                con.execute("SET enable_nestloop = off")
                return con.execute(golden_sql("curate_input", "curate_switchboards")).df()
            finally:
                if _usable(con):  # after a failed statement the transaction's rollback undoes all of it
                    con.execute("RESET enable_nestloop")
                    con.execute("DROP TABLE IF EXISTS pg_temp.curate_input")
                    for name in tables:
                        con.unregister(name)


def _usable(con: PgConnection) -> bool:
    import psycopg

    return con.raw.info.transaction_status != psycopg.pq.TransactionStatus.INERROR
