"""The event feed's tables (events, and what the rules write: lead values, overrides, conflicts,
contact flags), as methods of the change object (store/change_object/sql_change.py)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb

from datafactory_pipelines.store import shared_sql
from datafactory_pipelines.store.schema import CONFLICT_COLUMNS, CONTACT_FLAG_COLUMNS, OVERRIDE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd


def _values(values: set[str] | list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"value": sorted(values)}, dtype=object)


class EventTables:
    _con: duckdb.DuckDBPyConnection

    def _with(self, sql: str, name: str, frame: pd.DataFrame, params: list | None = None) -> pd.DataFrame:
        self._con.register(name, frame)
        try:
            return self._con.execute(sql, params or []).df()
        finally:
            self._con.unregister(name)

    # -- events ---------------------------------------------------------------------------------
    def events_with_key_hashes(self, hashes: set[int]) -> list[tuple[int, str, str, int]]:
        """(key_hash, source, event_id, seq) of the stored events with these key hashes."""
        listed = ", ".join(str(int(h)) for h in hashes)  # integers only
        return self._con.execute(
            f"SELECT key_hash, source, event_id, seq FROM events WHERE key_hash IN ({listed})").fetchall()

    def next_event_seq(self) -> int:
        return int(self._con.execute(shared_sql.NEXT_EVENT_SEQ).fetchall()[0][0])

    def insert_events(self, rows: list[tuple]) -> None:
        """Rows of shared_sql.EVENT_COLUMNS, in that order."""
        columns = shared_sql.EVENT_COLUMNS
        if len(rows) == 1:
            self._con.execute(f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * 12)})", list(rows[0]))
            return
        import pandas as pd

        frame = pd.DataFrame(rows, columns=[c.strip() for c in columns.split(",")])
        frame = frame.astype({c: object for c in ("subject", "event_time", "extensions")})
        self._con.register("incoming_events", frame)
        try:
            self._con.execute(f"INSERT INTO events ({columns}) SELECT * FROM incoming_events")
        finally:
            self._con.unregister("incoming_events")

    def waiting_events(self, first_seq: int, last_seq: int, status: str) -> list[dict[str, Any]]:
        """The events first_seq <= seq <= last_seq with this status, in sequence order, as dicts."""
        return self._con.execute(shared_sql.WAITING_EVENTS, [first_seq, last_seq, status]).df().to_dict("records")

    def set_event_outcomes(self, statuses: pd.DataFrame, at: datetime) -> None:
        """statuses: seq, status, lead_id, outcome (JSON) of applied events."""
        self._con.register("event_statuses", statuses)
        try:
            self._con.execute("UPDATE events SET status = s.status, lead_id = s.lead_id, outcome = s.outcome, "
                              "applied_at = ? FROM event_statuses s WHERE events.seq = s.seq", [at])
        finally:
            self._con.unregister("event_statuses")

    # -- the leads events name ----------------------------------------------------------------
    def leads_named(self, lead_ids: set[str], active_only: bool = False) -> pd.DataFrame:
        """The rows of these leads (any status, or only active ones)."""
        where = " WHERE l.status = 'active'" if active_only else ""
        return self._with(f"SELECT l.* FROM leads l JOIN wanted_ids w ON l.lead_id = w.value{where}",
                          "wanted_ids", _values(lead_ids))

    def active_leads_by_contact(self, kind: str, values: set[str]) -> pd.DataFrame:
        """Active leads whose primary `kind` (a lead column: mobile, email, wechat) is one of `values`."""
        return self._with(f'SELECT l.* FROM leads l JOIN wanted_contacts w ON l."{kind}" = w.value '
                          "WHERE l.status = 'active'", "wanted_contacts", _values(values))

    def active_leads_by_alternate(self, kind: str, values: set[str]) -> pd.DataFrame:
        """Active leads holding one of `values` among their `kind` alternates; `_matched` names the value."""
        return self._with(
            f"WITH alternates AS (SELECT lead_id, unnest(string_to_array({kind}_alternates, ';')) AS value "
            f"FROM leads WHERE status = 'active' AND coalesce({kind}_alternates, '') <> '') "
            f"SELECT l.*, a.value AS _matched FROM alternates a JOIN wanted_contacts w ON a.value = w.value "
            f"JOIN leads l ON l.lead_id = a.lead_id", "wanted_contacts", _values(values))

    def open_conflict_keys(self, lead_ids: set[str]) -> set[tuple[str, str, str]]:
        """(lead_id, field, incoming_value) of the open conflicts of these leads."""
        self._con.register("touched", _values(lead_ids))
        try:
            rows = self._con.execute("SELECT lead_id, field, incoming_value FROM conflicts "
                                     "WHERE status = 'open' AND lead_id IN (SELECT value FROM touched)").fetchall()
        finally:
            self._con.unregister("touched")
        return {(a, b, c) for a, b, c in rows}

    # -- what rules write ----------------------------------------------------------------------
    def set_lead_values(self, values: pd.DataFrame, fields: list[str], stamp: str) -> None:
        """One UPDATE (one pass over leads) for every changed field. values: lead_id, and per field i of
        `fields` a value v{i} and a flag c{i} saying whether this lead's value of it changed."""
        assignments = ", ".join(f'"{column}" = CASE WHEN v.c{i} THEN v.v{i} ELSE leads."{column}" END'
                                for i, column in enumerate(fields))
        self._con.register("lead_values", values)
        try:
            self._con.execute(f"UPDATE leads SET {assignments}, updated_at = ? FROM lead_values v "
                              "WHERE leads.lead_id = v.lead_id", [stamp])
        finally:
            self._con.unregister("lead_values")

    def _insert_frame(self, table: str, frame: pd.DataFrame) -> None:
        name = f"new_{table}"
        self._con.register(name, frame)
        try:
            self._con.execute(f"INSERT INTO {table} SELECT * FROM {name}")
        finally:
            self._con.unregister(name)

    def add_overrides(self, overrides: pd.DataFrame) -> None:
        self._insert_frame("lead_overrides", overrides[OVERRIDE_COLUMNS])

    def next_conflict_id(self) -> int:
        return int(self._con.execute(shared_sql.NEXT_CONFLICT_ID).fetchall()[0][0])

    def add_conflicts(self, conflicts: pd.DataFrame) -> None:
        self._insert_frame("conflicts", conflicts[CONFLICT_COLUMNS])

    def add_contact_flags(self, flags: pd.DataFrame) -> None:
        self._insert_frame("contact_flags", flags[CONTACT_FLAG_COLUMNS])
