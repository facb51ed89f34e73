"""The per-change path's SQL: one text for every lead store backend.

Standard SQL that DuckDB (>= 1.4) and PostgreSQL 15 run alike (tests/test_change_path_sql.py runs it on
both). Each statement joins small key tables the caller provides (a registered frame in DuckDB, a
temporary table in PostgreSQL) to the store tables, on the columns `schema.CHANGE_PATH_INDEXES` indexes,
so a change reads and writes the keys it touches, not the base.
"""

from __future__ import annotations


def by_key(table: str) -> str:
    """The mark of a statement that looks up the rows of `table`, a change-sized key table, in the base by
    index. A comment to DuckDB; PostgreSQL plans the statement with index lookups while the key table is
    small (store/postgres/connection.py): its planner prices a cached index probe too high, and for 60k keys
    hashed the whole of a 2.6M-row table instead (2-3x slower)."""
    return f"/* by key: {table} */ "


def count_values(sign: int) -> list[str]:
    """Add (sign 1) or take away (sign -1) the values in the key table `counted` (col, value, surname)
    to or from the counters: how many records carry each value (value_counts.n_records), and per surname
    (value_names) so that how many surnames carry it (value_counts.n_names) stays exact: a surname
    appears where value_names gets the row, vanishes where it loses it. A count that reaches zero is
    deleted: the counters hold exactly the values some active record carries."""
    sign = 1 if sign > 0 else -1
    return [
        "DROP TABLE IF EXISTS value_delta",
        "DROP TABLE IF EXISTS name_delta",
        # per (col, value, surname): the change, and whether it makes the surname appear (+1) or vanish (-1)
        by_key("counted") + f"""CREATE TEMPORARY TABLE name_delta AS
            SELECT d.col, d.value, d.surname, d.n,
                   CASE WHEN s.n_records IS NULL AND d.n > 0 THEN 1
                        WHEN s.n_records IS NOT NULL AND s.n_records + d.n <= 0 THEN -1 ELSE 0 END AS names_moved
            FROM (SELECT col, value, surname, {sign} * count(*) AS n FROM counted WHERE surname IS NOT NULL
                  GROUP BY col, value, surname) d
            LEFT JOIN value_names s ON s.col = d.col AND s.value = d.value AND s.surname = d.surname""",
        f"""CREATE TEMPORARY TABLE value_delta AS
            SELECT v.col, v.value, v.n, CAST(coalesce(m.names, 0) AS BIGINT) AS names
            FROM (SELECT col, value, {sign} * count(*) AS n FROM counted GROUP BY col, value) v
            LEFT JOIN (SELECT col, value, sum(names_moved) AS names FROM name_delta GROUP BY col, value) m
                   ON m.col = v.col AND m.value = v.value""",
        by_key("name_delta") + """MERGE INTO value_names t USING name_delta d ON t.col = d.col AND t.value = d.value AND t.surname = d.surname
            WHEN MATCHED AND t.n_records + d.n <= 0 THEN DELETE
            WHEN MATCHED THEN UPDATE SET n_records = t.n_records + d.n
            WHEN NOT MATCHED AND d.n > 0 THEN INSERT (col, value, surname, n_records) VALUES (d.col, d.value, d.surname, d.n)""",
        by_key("value_delta") + """MERGE INTO value_counts t USING value_delta d ON t.col = d.col AND t.value = d.value
            WHEN MATCHED AND t.n_records + d.n <= 0 THEN DELETE
            WHEN MATCHED THEN UPDATE SET n_records = t.n_records + d.n, n_names = t.n_names + d.names
            WHEN NOT MATCHED AND d.n > 0 THEN INSERT (col, value, n_records, n_names) VALUES (d.col, d.value, d.n, d.names)""",
        "DROP TABLE value_delta",
        "DROP TABLE name_delta",
    ]


#: the counters counted again over all link values (a full pass rebuilds them): the values are grouped
#: once per (col, value, surname), and value_counts summed from those groups (one pass over link_values,
#: no count(DISTINCT surname))
RECOUNT_VALUES = [
    "DELETE FROM value_names",
    "DELETE FROM value_counts",
    "DROP TABLE IF EXISTS recount",
    "CREATE TEMPORARY TABLE recount AS SELECT col, value, surname, count(*) AS n FROM link_values "
    "GROUP BY col, value, surname",
    "INSERT INTO value_names SELECT col, value, surname, n FROM recount WHERE surname IS NOT NULL",
    "INSERT INTO value_counts SELECT col, value, sum(n), count(surname) FROM recount GROUP BY col, value",
    "DROP TABLE recount",
]

#: keys: added (record_id), removed (col, value, surname). Every (col, value) the change adds (the stored
#: values of the added records) or removes, with n_added, n_removed, the counters now (n_records,
#: n_names) and how many of its surnames the change made appear (no record carried the value with that
#: surname before, one does now) or vanish: how many surnames carried it before is n_names - appeared +
#: vanished, and nothing is counted over the base.
CHANGE_COUNTS = by_key("added") + """
    WITH changed AS (
        SELECT v.col, v.value, v.surname, 1 AS n_added, 0 AS n_removed
        FROM (SELECT DISTINCT record_id FROM added) a JOIN link_values v ON v.record_id = a.record_id
        UNION ALL SELECT col, value, surname, 0, 1 FROM removed),
    per_name AS (SELECT col, value, surname, sum(n_added) AS n_added, sum(n_removed) AS n_removed
                 FROM changed GROUP BY col, value, surname),
    moved_names AS (
        SELECT p.col, p.value, p.n_added, p.n_removed,
               CASE WHEN p.surname IS NOT NULL AND coalesce(s.n_records, 0) > 0
                         AND coalesce(s.n_records, 0) - p.n_added + p.n_removed <= 0 THEN 1 ELSE 0 END AS appeared,
               CASE WHEN p.surname IS NOT NULL AND coalesce(s.n_records, 0) <= 0
                         AND coalesce(s.n_records, 0) - p.n_added + p.n_removed > 0 THEN 1 ELSE 0 END AS vanished
        FROM per_name p
        LEFT JOIN value_names s ON s.col = p.col AND s.value = p.value AND s.surname = p.surname),
    per_value AS (SELECT col, value, sum(n_added) AS n_added, sum(n_removed) AS n_removed,
                         sum(appeared) AS appeared, sum(vanished) AS vanished
                  FROM moved_names GROUP BY col, value)
    SELECT v.col, v.value, CAST(v.n_added AS BIGINT) AS n_added, CAST(v.n_removed AS BIGINT) AS n_removed,
           coalesce(c.n_records, 0) AS n_records, coalesce(c.n_names, 0) AS n_names,
           CAST(v.appeared AS BIGINT) AS appeared, CAST(v.vanished AS BIGINT) AS vanished
    FROM per_value v
    LEFT JOIN value_counts c ON c.col = v.col AND c.value = v.value"""

#: keys: wanted (col, value). The counters of these values.
VALUE_STATS = by_key("wanted") + """
    SELECT c.col, c.value, c.n_records, c.n_names FROM value_counts c
    JOIN (SELECT DISTINCT col, value FROM wanted) w ON c.col = w.col AND c.value = w.value"""

#: keys: wanted (record_id). The counters of every value these records carry (each value once: made
#: distinct before the counters are joined, which at 1M records joins 145k values, not their 400k rows).
NEIGHBOURHOOD_STATS = by_key("wanted") + """
    SELECT c.col, c.value, c.n_records, c.n_names FROM (
        SELECT DISTINCT v.col, v.value FROM (SELECT DISTINCT record_id FROM wanted) w
        JOIN link_values v ON v.record_id = w.record_id) k
    JOIN value_counts c ON c.col = k.col AND c.value = k.value"""

#: keys: wanted (col, value). The records carrying any of these values, with their lead (each record looked
#: up once: a record carries several of a change's values, 4 per record at 1M)
RECORDS_SHARING = by_key("wanted") + """
    SELECT s.record_id, r.lead_id FROM (
        SELECT DISTINCT v.record_id FROM link_values v
        JOIN (SELECT DISTINCT col, value FROM wanted) w ON v.col = w.col AND v.value = w.value) s
    JOIN records r ON r.record_id = s.record_id"""

#: keys: wanted_records (record_id), wanted_leads (lead_id). record_id, lead_id of the active records
#: with these ids or in these leads.
RECORD_LEADS_OF = by_key("wanted_records") + """
    SELECT r.record_id, r.lead_id FROM (SELECT DISTINCT record_id FROM wanted_records) w
    JOIN records r ON r.record_id = w.record_id WHERE r.retired_by IS NULL
    UNION
    SELECT r.record_id, r.lead_id FROM (SELECT DISTINCT lead_id FROM wanted_leads) w
    JOIN records r ON r.lead_id = w.lead_id WHERE r.retired_by IS NULL"""

#: keys: wanted (record_id). The stored accepted links with either end among these records.
LINKS_TOUCHING = by_key("wanted") + """
    SELECT m.record_l AS id_l, m.record_r AS id_r FROM (SELECT DISTINCT record_id FROM wanted) w
    JOIN match_links m ON m.record_l = w.record_id
    UNION
    SELECT m.record_l AS id_l, m.record_r AS id_r FROM (SELECT DISTINCT record_id FROM wanted) w
    JOIN match_links m ON m.record_r = w.record_id"""

#: keys: relinked_ids (record_id). Every stored link with an end among these records, whole (each once).
LINKS_OF_RELINKED = by_key("relinked_ids") + """
    SELECT m.* FROM (SELECT DISTINCT record_id FROM relinked_ids) w JOIN match_links m ON m.record_l = w.record_id
    UNION ALL
    SELECT m.* FROM (SELECT DISTINCT record_id FROM relinked_ids) w JOIN match_links m ON m.record_r = w.record_id
    WHERE m.record_l NOT IN (SELECT record_id FROM relinked_ids)"""

#: keys: stale_links (record_l, record_r). The stored links of these pairs, deleted.
DELETE_STALE_LINKS = by_key("stale_links") + """
    DELETE FROM match_links WHERE EXISTS (SELECT 1 FROM stale_links s
        WHERE s.record_l = match_links.record_l AND s.record_r = match_links.record_r)"""

#: id_l, id_r: every active record of a split lead against every one of the lead it was split from
#: (operators' unmerges): the full pass's pairs.
KEPT_APART_ALL = """
    SELECT a.record_id AS id_l, b.record_id AS id_r FROM lead_splits s
    JOIN records a ON a.lead_id = s.lead_a AND a.retired_by IS NULL
    JOIN records b ON b.lead_id = s.lead_b AND b.retired_by IS NULL"""

#: keys: wanted_leads (lead_id). The kept-apart pairs of the splits whose two leads are both among these
#: (a change's neighbourhood holds every record of its leads and no record of any other lead).
KEPT_APART = """
    SELECT a.record_id AS id_l, b.record_id AS id_r FROM (SELECT DISTINCT lead_id FROM wanted_leads) w
    JOIN lead_splits s ON s.lead_a = w.lead_id
    JOIN records a ON a.lead_id = s.lead_a AND a.retired_by IS NULL
    JOIN records b ON b.lead_id = s.lead_b AND b.retired_by IS NULL
    WHERE s.lead_b IN (SELECT lead_id FROM wanted_leads)"""
