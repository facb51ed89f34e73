"""What the operators' console reads from the lead store (and the one write of its own: a contact flag).

A mixin the DuckDB store inherits: it uses the store's `_rows` / `_tuples` / `_transaction`, so a read
inside an atomic change sees that change, and a flag written inside one commits or rolls back with it.
Plain rows (dicts), no frames: a console page reads one lead, one import or a few counts.

Search is by key, never by a LIKE over every lead: the console standardizes what was typed (a phone, an
email, a name and its pinyin, a company and its entity key, a WeChat/QQ id) and looks each up by equality
on the columns records and leads keep them in. DuckDB answers these from its per-row-group min/max
statistics and a vectorized filter on that one column; see benchmarks/console_speed.py for the times at 1M.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

# The columns a search may look a value up in (the only ones this module puts into SQL by name).
SEARCH_RECORD_COLUMNS = ("mobile", "landline", "email", "wechat", "qq", "douyin", "kuaishou", "name", "name_key",
                         "name_pinyin", "name_roman", "company", "company_key")
SEARCH_LEAD_COLUMNS = ("lead_id", "mobile", "landline", "email", "wechat", "qq", "douyin", "kuaishou", "name",
                       "company")
RESULT_COLUMNS = ("lead_id", "name", "mobile", "email", "wechat", "company", "title", "owner", "status",
                  "merged_into", "record_count", "updated_at")


class ConsoleQueries:
    """Reads for the console's pages; mixed into DuckDBLeadStore."""

    _rows: Any
    _tuples: Any
    _transaction: Any

    # -- finding a lead ----------------------------------------------------------------------
    def find_leads(self, record_keys: Mapping[str, Sequence[str]], lead_keys: Mapping[str, Sequence[str]],
                   limit: int = 50) -> list[dict]:
        """Leads whose records or golden values equal one of the given keys (column -> values), each
        merged lead replaced by the lead it was merged into; active leads first, then by name."""
        conditions, params = [], []
        for column, values in record_keys.items():
            if column not in SEARCH_RECORD_COLUMNS:
                raise ValueError(f"not a searchable record column: {column}")
            if values:
                conditions.append(f"SELECT lead_id FROM records WHERE {column} IN (SELECT unnest(?)) "
                                  "AND lead_id IS NOT NULL")
                params.append(list(values))
        for column, values in lead_keys.items():
            if column not in SEARCH_LEAD_COLUMNS:
                raise ValueError(f"not a searchable lead column: {column}")
            if values:
                conditions.append(f"SELECT lead_id FROM leads WHERE {column} IN (SELECT unnest(?))")
                params.append(list(values))
        if not conditions:
            return []
        hits = " UNION ".join(conditions)
        columns = ", ".join(f"l.{c}" for c in RESULT_COLUMNS)
        return self._rows(
            f"WITH hit AS ({hits}), "
            "found AS (SELECT DISTINCT coalesce(nullif(l.merged_into, ''), l.lead_id) AS lead_id "
            "          FROM leads l WHERE l.lead_id IN (SELECT lead_id FROM hit)) "
            f"SELECT {columns} FROM leads l WHERE l.lead_id IN (SELECT lead_id FROM found) "
            "ORDER BY l.status = 'active' DESC, l.name, l.lead_id LIMIT ?", [*params, limit])

    # -- one lead ----------------------------------------------------------------------------
    def lead_history_rows(self, lead_ids: Sequence[str]) -> list[dict]:
        """Every history row of these leads, oldest first."""
        if not lead_ids:
            return []
        return self._rows("SELECT seq, changed_at, lead_id, field, old_value, new_value, action, actor, cause "
                          "FROM history WHERE lead_id IN (SELECT unnest(?)) ORDER BY seq", [list(lead_ids)])

    def lead_outbox_rows(self, lead_id: str) -> list[dict]:
        """The notifications about one lead, newest first, each with its deliveries' states."""
        return self._rows(
            "SELECT o.outbox_id, o.message_id, o.created_at, o.owner, o.previous_owner, o.n_changes, o.first_seq, "
            "o.last_seq, o.notes, o.routed_at, "
            "string_agg(d.endpoint || ': ' || d.status, '; ' ORDER BY d.endpoint) AS deliveries "
            "FROM outbox o LEFT JOIN outbox_deliveries d USING (outbox_id) WHERE o.lead_id = ? "
            "GROUP BY ALL ORDER BY o.outbox_id DESC", [lead_id])

    def lead_contact_flags(self, lead_id: str) -> list[dict]:
        return self._rows("SELECT channel, value, status, reason, event_seq, rule, flagged_at FROM contact_flags "
                          "WHERE lead_id = ? ORDER BY flagged_at", [lead_id])

    def lead_conflict_rows(self, lead_id: str) -> list[dict]:
        return self._rows("SELECT * FROM conflicts WHERE lead_id = ? ORDER BY conflict_id", [lead_id])

    def flag_contact(self, lead_id: str, channel: str, value: str, status: str, reason: str, by: str,
                     moment: datetime) -> None:
        """Keep that a person marked this contact invalid or unreachable (inside the caller's change)."""
        with self._transaction() as con:
            con.execute("INSERT INTO contact_flags VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                        [lead_id, channel, value, status, reason, f"console: {by}", moment])

    def history_head_seq(self) -> int:
        """The last history row's seq (0 for an empty history)."""
        return int(self._tuples("SELECT coalesce(max(seq), 0) FROM history")[0][0])

    # -- imports -----------------------------------------------------------------------------
    def import_rows(self, limit: int = 200) -> list[dict]:
        """The latest imports, newest first, with how many of their records are linked now."""
        return self._rows(
            "SELECT i.*, (SELECT count(*) FROM records r WHERE r.import_id = i.import_id AND r.lead_id IS NOT NULL) "
            "AS records_linked FROM imports i ORDER BY i.imported_at DESC, i.import_id DESC LIMIT ?", [limit])

    def import_lead_effects(self, import_id: str) -> dict[str, int]:
        """How many leads an import created, changed and merged, from the history rows that name it."""
        like = f"%{import_id}%"
        row = self._rows(
            "SELECT count(DISTINCT lead_id) FILTER (WHERE field = 'status' AND old_value = '' "
            "                                        AND new_value = 'active') AS created, "
            "       count(DISTINCT lead_id) FILTER (WHERE field = 'merged_into' AND new_value <> '') AS merged, "
            "       count(DISTINCT lead_id) AS touched "
            "FROM history WHERE lead_id IN (SELECT DISTINCT coalesce(first_lead_id, lead_id) FROM records "
            "                               WHERE import_id = ? UNION SELECT DISTINCT lead_id FROM records "
            "                               WHERE import_id = ?) "
            "AND (',' || cause || ',') LIKE ?", [import_id, import_id, like])[0]
        created, merged, touched = (int(row[k] or 0) for k in ("created", "merged", "touched"))
        return {"created": created, "merged": merged, "changed": max(touched - created - merged, 0)}

    def import_lead_ids(self, import_id: str, limit: int = 100) -> list[dict]:
        """The leads an import's records belong to now, a few columns each."""
        return self._rows(
            "SELECT DISTINCT l.lead_id, l.name, l.company, l.status FROM records r JOIN leads l USING (lead_id) "
            "WHERE r.import_id = ? ORDER BY l.lead_id LIMIT ?", [import_id, limit])

    # -- overview ----------------------------------------------------------------------------
    def console_overview(self) -> dict[str, Any]:
        row = self._rows(
            "SELECT (SELECT count(*) FROM leads WHERE status = 'active') AS active_leads, "
            "(SELECT count(*) FROM leads WHERE status = 'active' AND (coalesce(mobile, '') <> '' OR "
            " coalesce(landline, '') <> '' OR coalesce(email, '') <> '' OR coalesce(wechat, '') <> '' OR "
            " coalesce(qq, '') <> '' OR coalesce(douyin, '') <> '' OR coalesce(kuaishou, '') <> '') "
            " AND coalesce(contact_status, '') = '') AS reachable_leads, "
            "(SELECT count(*) FROM records) AS records, "
            "(SELECT count(*) FROM quarantine) AS quarantined, "
            "(SELECT count(*) FROM conflicts WHERE status = 'open') AS open_conflicts, "
            "(SELECT count(*) FROM outbox_deliveries WHERE status NOT IN ('delivered', 'dead', 'disabled')) "
            " AS notifications_waiting, "
            "(SELECT count(*) FROM outbox WHERE routed_at IS NULL) AS notifications_unrouted, "
            "(SELECT count(*) FROM events WHERE status = 'received') AS events_waiting")[0]
        return {k: int(v or 0) for k, v in row.items()}

    def recent_events(self, limit: int = 10) -> list[dict]:
        return self._rows("SELECT seq, type, source, status, lead_id, received_at FROM events "
                          "ORDER BY seq DESC LIMIT ?", [limit])

    def daily_lead_counts(self, since: datetime) -> list[dict]:
        """Per day since `since`: leads created and leads folded into others (merged)."""
        return self._rows(
            "SELECT CAST(changed_at AS DATE) AS day, "
            "count(*) FILTER (WHERE field = 'status' AND old_value = '' AND new_value = 'active') AS created, "
            "count(*) FILTER (WHERE field = 'merged_into' AND new_value <> '') AS folded "
            "FROM history WHERE changed_at >= ? AND field IN ('status', 'merged_into') GROUP BY day ORDER BY day",
            [since])

    def daily_conflict_counts(self, since: datetime) -> list[dict]:
        """Per day since `since`: conflicts opened and conflicts decided."""
        return self._rows(
            "SELECT day, sum(opened) AS opened, sum(decided) AS decided FROM ("
            " SELECT CAST(created_at AS DATE) AS day, 1 AS opened, 0 AS decided FROM conflicts WHERE created_at >= ?"
            " UNION ALL SELECT CAST(decided_at AS DATE), 0, 1 FROM conflicts WHERE decided_at >= ?"
            ") GROUP BY day ORDER BY day", [since, since])
