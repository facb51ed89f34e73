"""Imports: saving a file's records (and their link values), undoing an import, the link
queue those changes feed, and the value counters kept on write."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from datafactory_pipelines.store import change_sql
from datafactory_pipelines.store.base import DuplicateImportError, ImportMeta
from datafactory_pipelines.store.schema import (
    RECORD_COLUMNS,
)

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd
    import pyarrow as pa


# record columns the store sets when saving an import (the rest come with the prepared records)
_SET_ON_SAVE = ("record_id", "import_id", "source_file", "imported_at", "lead_id", "retired_by", "first_lead_id")


class Imports:
    path: Path

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
            con.execute("""INSERT INTO store_meta SELECT 'saved_link_values', CASE WHEN ? <> '' AND (
                    NOT EXISTS (SELECT 1 FROM records WHERE retired_by IS NULL AND record_id < ?)
                    OR (SELECT max(value) FROM store_meta WHERE key = 'saved_link_values') = ?) THEN ? ELSE 'mixed' END
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
                        [version, start, version, version])
            seq = self._next_queue_seq(con)
            con.execute("INSERT INTO link_queue SELECT ? + i, ? + i, NULL, 'added', NULL, NULL, NULL FROM generate_series(0, ? - 1) t(i)",
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
        con.execute("DROP TABLE IF EXISTS leaving")
        con.execute(f"CREATE TEMPORARY TABLE leaving AS {records_sql}", params)
        seq = cls._next_queue_seq(con)
        con.execute(change_sql.by_key("leaving") + """INSERT INTO link_queue
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


    def import_row(self, import_id: str) -> dict:
        """One import's row (a ValueError names an unknown id)."""
        rows = self._rows("SELECT * FROM imports WHERE import_id = ?", [import_id])
        if not rows:
            raise ValueError(f"no import {import_id}")
        return rows[0]


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
        con.execute("DROP TABLE IF EXISTS counted")
        con.execute(f"CREATE TEMPORARY TABLE counted AS SELECT col, value, surname FROM ({values_sql}) v", params)
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
