"""What a change reads, looked up by key (never by reading the base), and the full pass's
one read of the base in columns."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from datafactory_pipelines.store import change_sql
from datafactory_pipelines.store.schema import (
    LINKAGE_RECORD_COLUMNS,
    OVERRIDE_COLUMNS,
)

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd
    import pyarrow as pa



def _ids(record_ids: list[int]) -> pd.DataFrame:
    """Record ids as a one-column frame, for a query to join (the change path's key tables)."""
    import pandas as pd
    return pd.DataFrame({"record_id": pd.Series(list(record_ids), dtype="int64")})


def _lead_ids(lead_ids: list[str]) -> pd.DataFrame:
    """Lead ids as a one-column frame, for a query to join."""
    import pandas as pd
    return pd.DataFrame({"lead_id": pd.Series(list(lead_ids), dtype=object)})


def linkage_select(columns: list[str] | None) -> str:
    """The select list of records r (joined to their imports i) as linkage and survivorship read them: `columns`
    only (default: LINKAGE_RECORD_COLUMNS), "import_time" being when the record's import was saved."""
    return ", ".join("i.imported_at AS import_time" if c == "import_time" else f"r.{c}"
                     for c in dict.fromkeys(columns or [*LINKAGE_RECORD_COLUMNS, "import_time"]))


class ChangePath:
    path: Path

    def settle_after_full_pass(self) -> None:
        """Nothing by default (DuckDB: `bulk_writes` checkpoints, and it keeps no visibility state to set);
        PostgreSQL vacuums (PgChangePath)."""

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
            split = self._query(change_sql.KEPT_APART_ALL)
        else:
            split = self._query_with(change_sql.KEPT_APART, {"wanted_leads": _lead_ids(lead_ids)})
        decided = self.decided_apart_pairs(lead_ids)  # and the pairs people answered "different people"
        if decided.empty:
            return split
        import pandas as pd

        return pd.concat([split, decided], ignore_index=True)


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
        select = linkage_select(columns)
        return self._query_with(
            f"SELECT {select} FROM records r JOIN imports i ON i.import_id = r.import_id "
            "WHERE r.retired_by IS NULL AND (r.record_id IN (SELECT record_id FROM wanted_records) "
            "OR r.lead_id IN (SELECT lead_id FROM wanted_leads)) ORDER BY r.record_id",
            {"wanted_records": _ids(record_ids),
             "wanted_leads": _lead_ids(lead_ids)})


    def links_touching(self, record_ids: list[int]) -> pd.DataFrame:
        return self._query_with(change_sql.LINKS_TOUCHING, {"wanted": _ids(record_ids)})


    def leads_by_id(self, lead_ids: list[str], columns: list[str] | None = None) -> pd.DataFrame:
        """These leads' rows (`columns`: only these; fewer columns, less of the leads table decompressed).
        How the rows are found is the backend's `_leads_by_id_sql` (DuckDB by rowid, PostgreSQL by index)."""
        select = "*" if columns is None else ", ".join(f'"{c}"' for c in columns)
        return self._query_with(self._leads_by_id_sql(select), {"wanted": _lead_ids(lead_ids)})

    def leads_around(self, lead_ids: list[str]) -> pd.DataFrame:
        """These leads and every active lead sharing a primary mobile with one of them."""

        return self._query_with(
            "SELECT * FROM leads WHERE lead_id IN (SELECT lead_id FROM wanted) OR (status = 'active' AND mobile <> '' "
            "AND mobile IN (SELECT mobile FROM leads WHERE lead_id IN (SELECT lead_id FROM wanted))) ORDER BY lead_id",
            {"wanted": _lead_ids(lead_ids)})


    def leads_carrying_mobiles(self, mobiles: list[str]) -> list[str]:
        import pandas as pd
        found = self._query_with(
            change_sql.by_key("wanted") + "SELECT lead_id FROM records WHERE mobile IN (SELECT mobile FROM wanted) "
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
            "(SELECT count(*) FROM (SELECT 1 FROM records WHERE lead_id IS NOT NULL LIMIT 1) x) AS any_linked, "
            "(SELECT coalesce(max(CAST(substr(lead_id, 2) AS BIGINT)), 0) FROM leads) AS max_lead_number, "
            "(SELECT coalesce(max(conflict_id), 0) FROM conflicts) AS max_conflict_id, "
            "(SELECT count(*) FROM leads WHERE status = 'active') AS active_leads, "
            "(SELECT coalesce(max(value), '') FROM store_meta WHERE key = 'link_values') AS link_values"
        ).iloc[0]
        return {k: (v if k == "link_values" else int(v)) for k, v in row.items()}


    def active_lead_count(self) -> int:
        """The active leads (of change_path_state, without its counts over the records)."""
        return int(self._tuples("SELECT count(*) FROM leads WHERE status = 'active'")[0][0])
