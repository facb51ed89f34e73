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

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

# The columns a search may look a value up in (the only ones this module puts into SQL by name).
SEARCH_RECORD_COLUMNS = ("mobile", "landline", "email", "wechat", "qq", "douyin", "kuaishou", "name", "name_key",
                         "name_pinyin", "name_roman", "company", "company_key")
SEARCH_LEAD_COLUMNS = ("lead_id", "mobile", "landline", "email", "wechat", "qq", "douyin", "kuaishou", "name",
                       "company")
RESULT_COLUMNS = ("lead_id", "name", "mobile", "email", "wechat", "company", "title", "owner", "status",
                  "merged_into", "record_count", "updated_at")
MAX_RECORD_HITS = 200  # a very common name: the first this many records, enough for a page of leads


class _SearchIndex:
    """The search index file, opened read-only and reopened when a new build replaced it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.con: duckdb.DuckDBPyConnection | None = None
        self.stamp: float | None = None
        self.marks: tuple[int, int] | None = None
        self.head_hash = ""

    def refresh(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self.stamp:
            return
        if self.con is not None:
            self.con.close()
        self.con, self.marks, self.stamp = None, None, stamp
        if stamp is not None:
            self.con = duckdb.connect(str(self.path), read_only=True)
            row = self.con.execute("SELECT record_id, seq, head_hash FROM marks").fetchall()[0]
            self.marks, self.head_hash = (int(row[0]), int(row[1])), str(row[2] or "")

    def disown(self) -> None:
        """Not this store's: searches scan instead, until a build replaces the file (its time stamp changes)."""
        if self.con is not None:
            self.con.close()
        self.con, self.marks = None, None

    def lookup(self, keys: list[str], limit: int) -> tuple[list[int], list[str]]:
        if self.con is None:
            return [], []
        rows = self.con.cursor().execute("SELECT record_id, lead_id FROM search_keys WHERE key IN "
                                         f"(SELECT unnest(?)) LIMIT {int(limit)}", [keys]).fetchall()
        return [int(r) for r, _ in rows if r is not None], [lead for _, lead in rows if lead]


class ConsoleQueries:
    """Reads for the console's pages; mixed into DuckDBLeadStore."""

    _rows: Any
    _tuples: Any
    _transaction: Any
    _connect: Any
    path: Path

    # -- finding a lead ----------------------------------------------------------------------
    @property
    def search_index_path(self) -> Path:
        return self.path.with_name(self.path.name + ".search.duckdb")

    def build_search_index(self) -> dict[str, int]:
        """Write the search index beside the store: every searchable value of every record (and every value a
        person or a rule set by hand), sorted by value, so that DuckDB's per-row-group min/max skips all
        but the row group holding a value. Built from one snapshot of the store, then swapped in whole.
        Changes after it are found from the store's own tails (records after its last record id, history
        after its last seq): the index is derived data, never the truth, and can be deleted at any time."""
        final = self.search_index_path
        building = final.with_name(final.name + ".building")
        building.unlink(missing_ok=True)
        records = " UNION ALL ".join(
            f"SELECT {c} AS key, record_id, NULL::VARCHAR AS lead_id FROM records "
            f"WHERE record_id <= $w AND coalesce({c}, '') <> ''" for c in SEARCH_RECORD_COLUMNS)
        by_hand = "SELECT value, NULL::BIGINT, lead_id FROM lead_overrides WHERE coalesce(value, '') <> ''"
        con = self._connect()
        try:
            con.execute("BEGIN TRANSACTION")
            marks = con.execute("SELECT coalesce((SELECT max(record_id) FROM records), 0), "
                                "coalesce((SELECT max(seq) FROM history), 0)").fetchall()[0]
            head = con.execute("SELECT hash FROM history WHERE seq = ?", [marks[1]]).fetchall()
            con.execute(f"ATTACH '{building}' AS search_build")
            try:
                con.execute(f"CREATE TABLE search_build.search_keys AS SELECT DISTINCT key, record_id, lead_id "
                            f"FROM ({records} UNION ALL {by_hand}) ORDER BY key".replace("$w", str(int(marks[0]))))
                # the history row it was built after, by hash: an index of another store (or of this one
                # before a restore) is told apart and not used
                con.execute("CREATE TABLE search_build.marks AS SELECT ?::BIGINT AS record_id, ?::BIGINT AS seq, "
                            "?::VARCHAR AS head_hash", [int(marks[0]), int(marks[1]), head[0][0] if head else ""])
                rows = con.execute("SELECT count(*) FROM search_build.search_keys").fetchall()[0][0]
                con.execute("COMMIT")
            finally:
                con.execute("DETACH search_build")
        finally:
            con.close()
        os.replace(building, final)
        return {"keys": int(rows), "record_id": int(marks[0]), "seq": int(marks[1])}

    def search_index_lag(self) -> dict[str, int] | None:
        """How far the store has moved past the index: records and history rows after its marks (None: no index)."""
        marks = self._search_index().marks
        if marks is None:
            return None
        row = self._tuples("SELECT (SELECT count(*) FROM records WHERE record_id > ?), "
                           "(SELECT count(*) FROM history WHERE seq > ?)", list(marks))[0]
        return {"records": int(row[0]), "history": int(row[1])}

    def _search_index(self) -> _SearchIndex:
        index = getattr(self, "_search_index_handle", None)
        if index is None:
            index = _SearchIndex(self.search_index_path)
            self._search_index_handle = index
        index.refresh()
        if index.marks is not None:
            found = self._tuples("SELECT hash FROM history WHERE seq = ?", [index.marks[1]])
            if (found[0][0] if found else "") != index.head_hash:
                index.disown()  # built from another history: ignored until built again
        return index

    def find_leads(self, record_keys: Mapping[str, Sequence[str]], lead_keys: Mapping[str, Sequence[str]],
                   limit: int = 50) -> list[dict]:
        """Leads whose records or golden values equal one of the given keys (column -> values), each
        merged lead replaced by the lead it was merged into; active leads first, then by name.

        With the search index: its sorted keys, then the records and history written since it (both
        tails are found by their ever-growing ids); the leads are then read by id. Without it, the same
        question is a scan of the records and leads columns."""
        for column in record_keys:
            if column not in SEARCH_RECORD_COLUMNS:
                raise ValueError(f"not a searchable record column: {column}")
        for column in lead_keys:
            if column not in SEARCH_LEAD_COLUMNS:
                raise ValueError(f"not a searchable lead column: {column}")
        keys = sorted({v for column, values in (*record_keys.items(), *lead_keys.items()) if column != "lead_id"
                       for v in values if v})
        if not keys and not lead_keys.get("lead_id"):
            return []
        keys = keys or ["\x00"]  # (a lead id alone: no value to look up, and an empty list has no type)
        index = self._search_index()
        indexed_records, indexed_leads = index.lookup(keys, MAX_RECORD_HITS)
        since_record, since_seq = index.marks or (-1, -1)
        record_filter = " OR ".join(f"{c} IN (SELECT unnest($keys))" for c, v in record_keys.items() if v)
        newer = [int(r[0]) for r in self._tuples(
            f"SELECT record_id FROM records WHERE record_id > $since AND ({record_filter}) LIMIT {MAX_RECORD_HITS}",
            {"since": since_record, "keys": keys})] if record_filter else []
        record_ids = sorted(set(indexed_records) | set(newer))[:MAX_RECORD_HITS]
        lead_ids = set(indexed_leads) | set(lead_keys.get("lead_id", []))
        if record_ids:
            listed = ", ".join(str(r) for r in record_ids)  # constants: DuckDB answers them from the key index
            lead_ids |= {r[0] for r in self._tuples(
                f"SELECT lead_id FROM records WHERE record_id IN ({listed}) AND lead_id IS NOT NULL")}
        # golden values set since the index (edits, decisions, rules) are in the history's tail; without an
        # index, the leads' own columns are scanned
        if since_seq >= 0:
            lead_ids |= {r[0] for r in self._tuples(
                "SELECT DISTINCT lead_id FROM history WHERE seq > $since AND (new_value IN (SELECT unnest($keys)) "
                "OR list_has_any(string_split(new_value, ';'), $keys))", {"since": since_seq, "keys": keys})}
        else:
            lead_filter = " OR ".join(f"{c} IN (SELECT unnest($keys))" for c, v in lead_keys.items()
                                      if v and c != "lead_id")
            if lead_filter:
                lead_ids |= {r[0] for r in self._tuples(f"SELECT lead_id FROM leads WHERE {lead_filter}",
                                                        {"keys": keys})}
        if not lead_ids:
            return []
        columns = ", ".join(RESULT_COLUMNS)
        found = self._leads_by_ids(sorted(lead_ids)[:MAX_RECORD_HITS], columns)
        survivors = {row["merged_into"] for row in found if row["merged_into"]} - {row["lead_id"] for row in found}
        found += self._leads_by_ids(sorted(survivors), columns)
        shown = {row["lead_id"]: row for row in found if not row["merged_into"]}
        return sorted(shown.values(), key=lambda r: (r["status"] != "active", r["name"] or "", r["lead_id"]))[:limit]

    def _leads_by_ids(self, lead_ids: list[str], columns: str) -> list[dict]:
        if not lead_ids:
            return []
        marks = ", ".join("?" * len(lead_ids))
        return self._rows(f"SELECT {columns} FROM leads WHERE lead_id IN ({marks})", list(lead_ids))

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
        """How many leads an import created, changed and merged, from the history rows that name it (a scan of
        the history's cause column: an import's page, not a search)."""
        named = f",{import_id},"  # the cause names one import id, or several joined by commas
        row = self._rows(
            "SELECT count(DISTINCT lead_id) FILTER (WHERE field = 'status' AND old_value = '' "
            "                                        AND new_value = 'active') AS created, "
            "       count(DISTINCT lead_id) FILTER (WHERE field = 'merged_into' AND new_value <> '') AS merged, "
            "       count(DISTINCT lead_id) AS touched "
            "FROM history WHERE contains(',' || cause || ',', ?)", [named])[0]
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
            ") AS counted GROUP BY day ORDER BY day", [since, since])
