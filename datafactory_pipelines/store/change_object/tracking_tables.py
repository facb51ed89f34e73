"""Tracking links and the store's small key-value table, as methods of the change object."""

from __future__ import annotations

import duckdb

from datafactory_pipelines.store import shared_sql


class TrackingTables:
    _con: duckdb.DuckDBPyConnection

    def lead_is_active(self, lead_id: str) -> bool:
        return bool(self._con.execute(shared_sql.ACTIVE_LEAD, [lead_id]).fetchall())

    def meta_value(self, key: str) -> str | None:
        """A value of store_meta (None when the key is not set)."""
        row = self._con.execute(shared_sql.META_VALUE, [key]).fetchall()
        return row[0][0] if row else None

    def add_meta_value(self, key: str, value: str) -> None:
        """A new key of store_meta (an existing one is refused by its key)."""
        self._con.execute(shared_sql.INSERT_META, [key, value])

    def add_tracking_link(self, row: tuple) -> None:
        """token, target, channel, utm_source, utm_medium, utm_campaign, lead_id, created_at, created_by."""
        self._con.execute(shared_sql.INSERT_TRACKING_LINK, list(row))

    def tracking_link(self, token: str) -> tuple | None:
        """(target, channel, utm_source, utm_medium, utm_campaign, lead_id) of a stored link, or None."""
        row = self._con.execute(shared_sql.TRACKING_LINK, [token]).fetchall()
        return row[0] if row else None
