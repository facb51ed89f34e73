"""The store side of issue 19 ("trust under attack"), as one part of both stores: whole-table snapshots
with every identifier checked against the catalog (backups), the restores log and taking a restore back,
lead ids that come back with their records, and the imports a failed curation belonged to. The SQL lives in
store/snapshot_sql.py, restores_sql.py, returning_sql.py and gate_sql.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from datafactory_pipelines.store import gate_sql, restores_sql, returning_sql, snapshot_sql
from datafactory_pipelines.store.parts.change_path import _ids

if TYPE_CHECKING:
    import pandas as pd


class Trust:
    """Mixed into both stores before the parts whose table_snapshot/load_snapshot it replaces."""

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
                raise ValueError(f"{self.label}: {err}") from err

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
