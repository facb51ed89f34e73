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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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


INDEX_FORMAT = 2  # 2: each key carries its record's lead, and the leads' result columns are kept beside the keys
# small row groups: DuckDB skips a row group by its min/max, so a sorted table is read a few thousand rows at a
# time around each value looked up (measured at 1M records: 2.5 ms for a name's leads, 30 ms at the default size)
INDEX_ROW_GROUP_SIZE = 2048


class _SearchIndex:
    """The search index file, opened read-only and reopened when a new build replaced it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.con: duckdb.DuckDBPyConnection | None = None
        self.stamp: float | None = None
        self.marks: IndexMarks | None = None
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
        if stamp is None:
            return
        self.con = duckdb.connect(str(self.path), read_only=True)
        try:
            row = self.con.execute("SELECT record_id, seq, updated_at, head_hash FROM marks "
                                   "WHERE format = ?", [INDEX_FORMAT]).fetchall()
        except duckdb.Error:  # an index of an older format: not used until a build replaces it
            row = []
        if not row:
            self.disown()
            return
        record_id, seq, updated_at, head_hash = row[0]
        self.marks, self.head_hash = IndexMarks(int(record_id), int(seq), str(updated_at or "")), str(head_hash or "")

    def disown(self) -> None:
        """Not this store's: searches scan instead, until a build replaces the file (its time stamp changes)."""
        if self.con is not None:
            self.con.close()
        self.con, self.marks = None, None

    def lookup(self, keys: list[str], limit: int) -> list[tuple[int | None, str | None]]:
        """(record_id, lead_id as at the build) of each indexed value equal to one of the keys; a value a person
        or a rule set by hand has no record id."""
        if self.con is None:
            return []
        # parameters one by one, not unnest(?): DuckDB then checks each against a row group's min/max
        return self.con.cursor().execute(f"SELECT record_id, lead_id FROM search_keys WHERE key IN ({_marks(keys)}) "
                                         f"LIMIT {int(limit)}", keys).fetchall()

    def leads(self, lead_ids: Iterable[str]) -> dict[str, dict]:
        """The result columns of these leads as they were at the build, by lead id (absent: not in the index)."""
        wanted = sorted(lead_ids)
        if self.con is None or not wanted:
            return {}
        cursor = self.con.cursor()
        result = cursor.execute(f"SELECT {', '.join(RESULT_COLUMNS)} FROM search_leads "
                                f"WHERE lead_id IN ({_marks(wanted)})", wanted)
        names = [d[0] for d in result.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in result.fetchall()}


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


@dataclass(frozen=True)
class IndexMarks:
    """Where the store stood when the index was built: its last record id, last history seq, latest leads'
    updated_at. Everything after them is the store's own tail, read at search time."""

    record_id: int
    seq: int
    updated_at: str


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
        person or a rule set by hand), sorted by value, each with the lead its record belonged to, so that
        DuckDB's per-row-group min/max skips all but the row group holding a value; and every lead's result
        columns (what a result list shows), sorted by lead id. Built from one snapshot of the store, then
        swapped in whole. Changes after it are found from the store's own tails (records after its last record
        id, history after its last seq, leads written after its latest updated_at): the index is derived data,
        never the truth, and can be deleted at any time."""
        final = self.search_index_path
        building = final.with_name(final.name + ".building")
        building.unlink(missing_ok=True)
        records = " UNION ALL ".join(
            f"SELECT {c} AS key, record_id, lead_id FROM records "
            f"WHERE record_id <= $w AND coalesce({c}, '') <> ''" for c in SEARCH_RECORD_COLUMNS)
        by_hand = "SELECT value, NULL::BIGINT, lead_id FROM lead_overrides WHERE coalesce(value, '') <> ''"
        con = self._connect()
        try:
            con.execute("SET enable_progress_bar = false")  # (a build of seconds would draw one on the console)
            con.execute("BEGIN TRANSACTION")
            marks = con.execute("SELECT coalesce((SELECT max(record_id) FROM records), 0), "
                                "coalesce((SELECT max(seq) FROM history), 0), "
                                "coalesce((SELECT max(updated_at) FROM leads), '')").fetchall()[0]
            head = con.execute("SELECT hash FROM history WHERE seq = ?", [marks[1]]).fetchall()
            con.execute(f"ATTACH '{building}' AS search_build (ROW_GROUP_SIZE {INDEX_ROW_GROUP_SIZE})")
            try:
                con.execute(f"CREATE TABLE search_build.search_keys AS SELECT DISTINCT key, record_id, lead_id "
                            f"FROM ({records} UNION ALL {by_hand}) ORDER BY key".replace("$w", str(int(marks[0]))))
                con.execute(f"CREATE TABLE search_build.search_leads AS SELECT {', '.join(RESULT_COLUMNS)} "
                            "FROM leads ORDER BY lead_id")
                # the history row it was built after, by hash: an index of another store (or of this one
                # before a restore) is told apart and not used
                con.execute("CREATE TABLE search_build.marks AS SELECT ?::INTEGER AS format, ?::BIGINT AS record_id, "
                            "?::BIGINT AS seq, ?::VARCHAR AS updated_at, ?::VARCHAR AS head_hash",
                            [INDEX_FORMAT, int(marks[0]), int(marks[1]), str(marks[2]),
                             head[0][0] if head else ""])
                rows = con.execute("SELECT count(*) FROM search_build.search_keys").fetchall()[0][0]
                con.execute("COMMIT")
            finally:
                con.execute("DETACH search_build")
        finally:
            con.close()
        os.replace(building, final)
        return {"keys": int(rows), "record_id": int(marks[0]), "seq": int(marks[1])}

    def search_index_lag(self) -> dict[str, int] | None:
        """How far the store has moved past the index: records, history rows and leads written after its marks
        (None: no index)."""
        marks = self._search_index().marks
        if marks is None:
            return None
        row = self._tuples("SELECT (SELECT count(*) FROM records WHERE record_id > ?), "
                           "(SELECT count(*) FROM history WHERE seq > ?), "
                           "(SELECT count(*) FROM leads WHERE updated_at > ?)",
                           [marks.record_id, marks.seq, marks.updated_at])[0]
        return {"records": int(row[0]), "history": int(row[1]), "leads": int(row[2])}

    def _search_index(self) -> _SearchIndex:
        index = getattr(self, "_search_index_handle", None)
        if index is None:
            index = _SearchIndex(self.search_index_path)
            self._search_index_handle = index
        index.refresh()
        if index.marks is not None:
            found = self._tuples("SELECT hash FROM history WHERE seq = ?", [index.marks.seq])
            if (found[0][0] if found else "") != index.head_hash:
                index.disown()  # built from another history: ignored until built again
        return index

    def find_leads(self, record_keys: Mapping[str, Sequence[str]], lead_keys: Mapping[str, Sequence[str]],
                   limit: int = 50) -> list[dict]:
        """Leads whose records or golden values equal one of the given keys (column -> values), each
        merged lead replaced by the lead it was merged into; active leads first, then by name.

        With the search index: its sorted keys give the leads as they were at the build, with their result
        columns; then the store's tails (records, history rows and leads written since the build) correct
        what changed, so the cost follows the change: while nothing changed, the store is not read beyond
        its tails. Without it, the same question is a scan of the records and leads columns."""
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
        if index.marks is None:
            lead_ids = self._scan_for_leads(record_keys, lead_keys, keys)
            rows = {row["lead_id"]: row for row in self._leads_by_ids(sorted(lead_ids)[:MAX_RECORD_HITS])}
            read = self._leads_by_ids
        else:
            lead_ids, stale = self._indexed_leads(index, index.marks, record_keys, keys)
            lead_ids |= set(lead_keys.get("lead_id", []))

            def read(wanted: list[str]) -> list[dict]:  # the index's rows, the store's for leads changed since
                changed = set() if stale is None else stale | self._leads_changed_since(index.marks, wanted)
                kept = index.leads(set(wanted) - changed)
                return [*kept.values(), *self._leads_by_ids(sorted(set(wanted) - set(kept)))]

            rows = {row["lead_id"]: row for row in read(sorted(lead_ids)[:MAX_RECORD_HITS])}
        survivors = {row["merged_into"] for row in rows.values() if row["merged_into"]} - set(rows)
        rows.update({row["lead_id"]: row for row in read(sorted(survivors))})
        shown = [row for row in rows.values() if not row["merged_into"]]
        return sorted(shown, key=lambda r: (r["status"] != "active", r["name"] or "", r["lead_id"]))[:limit]

    def _indexed_leads(self, index: _SearchIndex, marks: IndexMarks, record_keys: Mapping[str, Sequence[str]],
                       keys: list[str]) -> tuple[set[str], set[str] | None]:
        """The leads the index and the tails after it find, and those of them known to have changed since
        (None: nothing was written since the build)."""
        hits = index.lookup(keys, MAX_RECORD_HITS)
        moved = self._tuples("SELECT (SELECT count(*) FROM (SELECT 1 FROM records WHERE record_id > $r LIMIT 1)) "
                             "+ (SELECT count(*) FROM (SELECT 1 FROM history WHERE seq > $s LIMIT 1)) "
                             "+ (SELECT count(*) FROM (SELECT 1 FROM leads WHERE updated_at > $u LIMIT 1))",
                             {"r": marks.record_id, "s": marks.seq, "u": marks.updated_at})[0][0]
        if not moved:  # nothing written since the build: the index is the store
            return {lead for _, lead in hits if lead}, None
        # a record may belong to another lead now (relinked, unmerged, its import undone): the hits are
        # resolved by record id again, as the store has them now
        record_ids = sorted({int(r) for r, _ in hits if r is not None})
        lead_ids = {lead for r, lead in hits if r is None and lead}
        if record_ids:
            listed = ", ".join(str(r) for r in record_ids)  # constants: DuckDB answers them from the key index
            lead_ids |= {r[0] for r in self._tuples(
                f"SELECT lead_id FROM records WHERE record_id IN ({listed}) AND lead_id IS NOT NULL")}
        record_filter = " OR ".join(f"{c} IN (SELECT unnest($keys))" for c, v in record_keys.items() if v)
        if record_filter:  # records written since the build
            lead_ids |= {r[0] for r in self._tuples(
                f"SELECT lead_id FROM records WHERE record_id > $since AND ({record_filter}) "
                f"AND lead_id IS NOT NULL LIMIT {MAX_RECORD_HITS}", {"since": marks.record_id, "keys": keys})}
        # golden values set since the build (edits, decisions, rules) are in the history's tail
        found = {r[0] for r in self._tuples(
            "SELECT DISTINCT lead_id FROM history WHERE seq > $since AND (new_value IN (SELECT unnest($keys)) "
            "OR list_has_any(string_split(new_value, ';'), $keys))", {"since": marks.seq, "keys": keys})}
        return lead_ids | found, found

    def _leads_changed_since(self, marks: IndexMarks, lead_ids: list[str]) -> set[str]:
        """Which of these leads were written after the index was built (a new updated_at, or a history row)."""
        if not lead_ids:
            return set()
        return {r[0] for r in self._tuples(
            "SELECT lead_id FROM leads WHERE updated_at > $u AND lead_id IN (SELECT unnest($ids)) UNION "
            "SELECT lead_id FROM history WHERE seq > $s AND lead_id IN (SELECT unnest($ids))",
            {"u": marks.updated_at, "s": marks.seq, "ids": lead_ids})}

    def _scan_for_leads(self, record_keys: Mapping[str, Sequence[str]], lead_keys: Mapping[str, Sequence[str]],
                        keys: list[str]) -> set[str]:
        """Without an index: the records' and the leads' key columns scanned for the keys."""
        lead_ids = set(lead_keys.get("lead_id", []))
        record_filter = " OR ".join(f"{c} IN (SELECT unnest($keys))" for c, v in record_keys.items() if v)
        if record_filter:
            lead_ids |= {r[0] for r in self._tuples(
                f"SELECT DISTINCT lead_id FROM (SELECT lead_id FROM records WHERE ({record_filter}) "
                f"AND lead_id IS NOT NULL LIMIT {MAX_RECORD_HITS}) AS hits", {"keys": keys})}
        lead_filter = " OR ".join(f"{c} IN (SELECT unnest($keys))" for c, v in lead_keys.items()
                                  if v and c != "lead_id")
        if lead_filter:
            lead_ids |= {r[0] for r in self._tuples(f"SELECT lead_id FROM leads WHERE {lead_filter}",
                                                    {"keys": keys})}
        return lead_ids

    def _leads_by_ids(self, lead_ids: list[str]) -> list[dict]:
        """The result columns of these leads, from the store (a scan of its lead_id column: no key index)."""
        if not lead_ids:
            return []
        return self._rows(f"SELECT {', '.join(RESULT_COLUMNS)} FROM leads WHERE lead_id IN ({_marks(lead_ids)})",
                          list(lead_ids))

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
            "GROUP BY o.outbox_id, o.message_id, o.created_at, o.owner, o.previous_owner, o.n_changes, o.first_seq, "
            "o.last_seq, o.notes, o.routed_at ORDER BY o.outbox_id DESC", [lead_id])

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
