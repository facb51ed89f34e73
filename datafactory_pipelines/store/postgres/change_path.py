"""What the change path reads, where PostgreSQL needs it asked differently from DuckDB.

Golden records: survivorship's statement (survivorship_sql.golden_sql) chains a dozen CTEs over the scope's
records. PostgreSQL estimates a join of two CTEs on two keys at a handful of rows, and then nests loops over
CTE scans: at 100k records that is 10^10 comparisons (minutes). So its input is first made a temporary table
(the scope's records found by index, then analyzed), and the statement runs with nested loops off: every
join inside it is a hash join over what the scope holds, whatever its size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from datafactory_pipelines.store.parts.change_path import ChangePath, _ids, _lead_ids, linkage_select

if TYPE_CHECKING:
    import pandas as pd

    from datafactory_pipelines.store.postgres.connection import PgConnection

log = logging.getLogger(__name__)

#: what a full pass rewrites (and the history it appends): vacuumed and analyzed after it
SETTLED_AFTER_FULL_PASS = ("records", "link_values", "value_counts", "value_names", "leads", "match_links",
                           "history")

#: the active leads: all of them (leads_by_id) but the few that are not (the partial index leads_not_active)
ACTIVE_LEADS = ("SELECT (SELECT count(*) FROM leads) - "
                "(SELECT count(*) FROM leads WHERE status IS DISTINCT FROM 'active')")


class PgChangePath(ChangePath):
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

    def settle_after_full_pass(self) -> None:
        """VACUUM (ANALYZE) the tables a full pass rewrote, once it has committed. Otherwise the next change
        pays for them: its reads set the hint bits of millions of fresh rows (writing their pages back),
        its lookups visit rows the visibility map does not yet vouch for, it is planned from statistics of
        before the pass, and it shares the cores with autovacuum's first rounds over the same tables (at 1M
        records the 10k file after the base import took 7 s to save; a minute later, 0.4 s). Inside a caller's
        change (not committed yet) it does nothing."""
        if self._in_shared():
            return
        con = self._connect()
        try:
            for table in SETTLED_AFTER_FULL_PASS:
                started = time.perf_counter()
                con.execute(f"VACUUM (ANALYZE) {table}")
                # (a role that does not own the table gets a warning from PostgreSQL instead: docs/production.md)
                log.info("VACUUM (ANALYZE) %s: %.1fs", table, time.perf_counter() - started)
        finally:
            con.close()

    def linkage_records_of(self, record_ids: list[int], lead_ids: list[str],
                           columns: list[str] | None = None) -> pd.DataFrame:
        """DuckDB's read with its `id IN … OR lead IN …` as one key table joined by index: PostgreSQL cannot
        use an index for an OR of two subqueries, and scanned the whole base (2 s at 1M records)."""
        select = linkage_select(columns)
        return self._query_with(
            f"SELECT {select} FROM (SELECT record_id FROM wanted_records UNION SELECT record_id FROM records "
            "WHERE lead_id IN (SELECT lead_id FROM wanted_leads)) w JOIN records r ON r.record_id = w.record_id "
            "JOIN imports i ON i.import_id = r.import_id WHERE r.retired_by IS NULL ORDER BY r.record_id",
            {"wanted_records": _ids(record_ids), "wanted_leads": _lead_ids(lead_ids)})

    def change_path_state(self) -> dict[str, int | str]:
        """DuckDB's state, each figure read from an index (migration 3) instead of a scan of the records
        (1.1 GB at 1M) and the leads: the active ones are all but the few retired or merged."""
        row = self._query(
            "SELECT (SELECT count(*) FROM records) - (SELECT count(*) FROM records WHERE retired_by IS NOT NULL) "
            "AS active_records, "
            "(SELECT count(*) FROM (SELECT 1 FROM records WHERE lead_id IS NOT NULL LIMIT 1) x) AS any_linked, "
            "(SELECT coalesce(max(CAST(substr(lead_id, 2) AS BIGINT)), 0) FROM leads) AS max_lead_number, "
            "(SELECT coalesce(max(conflict_id), 0) FROM conflicts) AS max_conflict_id, "
            f"({ACTIVE_LEADS}) AS active_leads, "
            "(SELECT coalesce(max(value), '') FROM store_meta WHERE key = 'link_values') AS link_values"
        ).iloc[0]
        return {k: (v if k == "link_values" else int(v)) for k, v in row.items()}

    def active_lead_count(self) -> int:
        return int(self._tuples(f"SELECT ({ACTIVE_LEADS})")[0][0])

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
    from datafactory_pipelines.store.postgres.connection import in_failed_transaction

    return not in_failed_transaction(con.raw)
