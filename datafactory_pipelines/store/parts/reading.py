"""Plain reads of the store: leads, records, links, conflicts, overrides, history, snapshots."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from datafactory_pipelines.store import shared_sql
from datafactory_pipelines.store.parts.change_path import _lead_ids
from datafactory_pipelines.store.schema import OVERRIDE_COLUMNS

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd

log = logging.getLogger(__name__)


class Reading:
    path: Path

    def events_waiting_after(self, after_seq: int, status: str, limit: int) -> list[int]:
        """The seqs of up to `limit` events after `after_seq` with this status, in order."""
        rows = self._tuples(shared_sql.EVENTS_AFTER, [after_seq, status, limit])
        return [int(row[0]) for row in rows]


    def event_counts(self) -> pd.DataFrame:
        """type, status, n: the stored events counted."""
        return self._query(shared_sql.EVENT_COUNTS)


    def lead_records(self, lead_id: str) -> pd.DataFrame:
        return self._query("SELECT * FROM records WHERE lead_id = ? ORDER BY collected_at, record_id", [lead_id])


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


    def overrides(self) -> pd.DataFrame:
        """The latest override per (lead, field)."""
        return self._query(
            f"SELECT {', '.join(OVERRIDE_COLUMNS)} FROM (SELECT *, row_number() OVER (PARTITION BY lead_id, field "
            "ORDER BY decided_at DESC) AS latest FROM lead_overrides) ranked WHERE latest = 1")


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


    def lead_splits(self) -> pd.DataFrame:
        return self._query("SELECT * FROM lead_splits")


    def records_of_leads(self, lead_ids: list[str]) -> pd.DataFrame:
        """The live records of these leads."""

        return self._query_with("SELECT * FROM records WHERE retired_by IS NULL "
                                "AND lead_id IN (SELECT lead_id FROM wanted) ORDER BY record_id",
                                {"wanted": _lead_ids(lead_ids)})


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


    def history_after(self, seq: int) -> pd.DataFrame:
        return self._query("SELECT * FROM history WHERE seq > ? ORDER BY seq", [seq])


    def table_names(self) -> list[str]:
        """Every table of the store (views excluded), from the catalog."""
        rows = self._query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                           "AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name")
        return rows["table_name"].tolist()


    def table_snapshot(self, tables: list[str]) -> dict[str, pd.DataFrame]:
        """Every named table, read in one transaction so they agree with each other."""
        if self._in_shared():
            return {name: self._shared.execute(f"SELECT * FROM {name}").df() for name in tables}
        con = self._connect(read_only=True)
        try:
            con.execute("BEGIN TRANSACTION")
            return {name: con.execute(f"SELECT * FROM {name}").df() for name in tables}
        finally:
            con.close()


    def history(self, lead_id: str | None = None) -> pd.DataFrame:
        if lead_id:
            return self._query("SELECT * FROM history WHERE lead_id = ? ORDER BY seq", [lead_id])
        return self._query("SELECT * FROM history ORDER BY seq")


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
