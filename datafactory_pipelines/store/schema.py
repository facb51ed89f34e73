"""Lead store tables. Plain SQL that DuckDB and PostgreSQL both accept."""

from datafactory_pipelines.fields import (
    CURATED_LEAD_COLUMNS,
    INPUT_FIELDS,
    LEAD_COLUMN_TYPES,
    LEAD_COLUMNS,
    STANDARD_COLUMNS,
)

SCHEMA_VERSION = 1

_BOOL_COLUMNS = {"name_partial", "email_role", "reachable"}
RAW_FIELD_COLUMNS = [f"{f}_raw" for f in INPUT_FIELDS]
RECORD_COLUMNS = [
    "record_id", "import_id", "source_file", "sheet", "source_row", *RAW_FIELD_COLUMNS, "extra",
    *STANDARD_COLUMNS, "imported_at", "lead_id", "retired_by", "first_lead_id",
]


#: the columns linking and curation read (not the cells as read, which only show what came in)
LINKAGE_RECORD_COLUMNS = [c for c in RECORD_COLUMNS if c not in RAW_FIELD_COLUMNS and c != "extra"]


def _record_column_type(col: str) -> str:
    if col in ("record_id", "source_row"):
        return "BIGINT"
    if col in _BOOL_COLUMNS:
        return "BOOLEAN"
    if col == "imported_at":
        return "TIMESTAMP"
    return "VARCHAR"


CONFLICT_COLUMNS = ["conflict_id", "group_id", "lead_id", "field", "kind", "current_value", "incoming_value",
                    "incoming_record", "source", "import_id", "status", "created_at", "decided_by", "decided_at",
                    "decision"]
CONTACT_FLAG_COLUMNS = ["lead_id", "channel", "value", "status", "reason", "event_seq", "rule", "flagged_at"]
OVERRIDE_COLUMNS = ["lead_id", "field", "value", "decided_by", "note", "decided_at", "origin", "conflict_id"]
#: the match_links table's columns: why records are one lead
MATCH_LINK_COLUMNS = ["record_l", "record_r", "match_weight", "match_probability", "contributions"]
SHARED_CONTACT_COLUMNS = ["kind", "value", "n_records", "n_names"]
# An import's content is unique among live imports only: once undone, the same file may come back.
IMPORT_COLUMNS = ["import_id", "file_name", "content_sha256", "sheets", "header_map", "rows_read", "rows_unreachable",
                  "blank_rows", "imported_at", "imported_by", "undone_by", "undone_at"]

DDL = [
    "CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS imports (
        import_id VARCHAR PRIMARY KEY,
        file_name VARCHAR NOT NULL,
        content_sha256 VARCHAR NOT NULL,
        sheets VARCHAR,
        header_map VARCHAR,
        rows_read BIGINT,
        rows_unreachable BIGINT,
        blank_rows BIGINT,
        imported_at TIMESTAMP NOT NULL,
        imported_by VARCHAR,
        undone_by VARCHAR,
        undone_at TIMESTAMP
    )""",
    "CREATE TABLE IF NOT EXISTS records (\n    "
    + ",\n    ".join(
        f"{c} {_record_column_type(c)}" + (" PRIMARY KEY" if c == "record_id" else "") for c in RECORD_COLUMNS
    )
    + "\n)",
    # lead_id is unique, but not a DuckDB PRIMARY KEY: DuckDB writes a table's whole key index again at every
    # checkpoint that follows a change to the table (400k leads: 13 MB and ~0.3 s for a change of 100 leads).
    # The store's single writer keeps lead ids unique (apply_lead_changes refuses a repeated one); PostgreSQL
    # gets a unique index (CHANGE_PATH_INDEXES).
    "CREATE TABLE IF NOT EXISTS leads (\n    "
    + ",\n    ".join(
        f"{c} {LEAD_COLUMN_TYPES[c]}" + (" NOT NULL" if c == "lead_id" else "")
        for c in LEAD_COLUMNS
    )
    + "\n)",
    # Why records are one lead: each accepted pair, its match weight and every comparison's share of it.
    """CREATE TABLE IF NOT EXISTS match_links (
        record_l BIGINT, record_r BIGINT, match_weight DOUBLE PRECISION, match_probability DOUBLE PRECISION, contributions VARCHAR
    )""",
    # Operators' decisions and one-to-one edits; the latest per (lead, field) holds.
    """CREATE TABLE IF NOT EXISTS lead_overrides (
        lead_id VARCHAR, field VARCHAR, value VARCHAR, decided_by VARCHAR, note VARCHAR,
        decided_at TIMESTAMP, origin VARCHAR, conflict_id BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS conflicts (
        conflict_id BIGINT PRIMARY KEY, group_id VARCHAR, lead_id VARCHAR, field VARCHAR, kind VARCHAR,
        current_value VARCHAR, incoming_value VARCHAR, incoming_record BIGINT, source VARCHAR, import_id VARCHAR,
        status VARCHAR, created_at TIMESTAMP, decided_by VARCHAR, decided_at TIMESTAMP, decision VARCHAR
    )""",
    # Every change to a lead, append-only and hash-chained (see history.py). Nothing updates or deletes it.
    # seq has no PRIMARY KEY: the one writer numbers rows on from the last (under the store's writer lock) and
    # verify_chain names a missing or repeated seq; DuckDB's key index for it cost 1.2 GB of memory when a
    # 1M-record base import committed its 4M history rows. Stores made with the key keep it (it still holds).
    """CREATE TABLE IF NOT EXISTS history (
        seq BIGINT, changed_at TIMESTAMP, lead_id VARCHAR, field VARCHAR, old_value VARCHAR, new_value VARCHAR,
        action VARCHAR, actor VARCHAR, cause VARCHAR, prev_hash VARCHAR, hash VARCHAR
    )""",
    # An undo reads the history of the leads its import touched, not the whole history.
    "CREATE INDEX IF NOT EXISTS history_by_lead ON history (lead_id)",
    # Leads an operator split apart (unmerge): their records are never clustered together again.
    "CREATE TABLE IF NOT EXISTS lead_splits (lead_a VARCHAR, lead_b VARCHAR, decided_by VARCHAR, decided_at TIMESTAMP)",
    # Contacts that many different names carry: switchboards, shared mailboxes. Rewritten by each linkage.
    "CREATE TABLE IF NOT EXISTS shared_contacts (kind VARCHAR, value VARCHAR, n_records BIGINT, n_names BIGINT)",
    # Notifications (datafactory_pipelines/notify): one outbox row per lead and transaction, written in the
    # same transaction as the change (its content is the lead's history rows first_seq..last_seq);
    # deliveries per endpoint; every attempt; endpoints disabled by a 410.
    """CREATE TABLE IF NOT EXISTS outbox (
        outbox_id BIGINT PRIMARY KEY, message_id VARCHAR, created_at TIMESTAMP, lead_id VARCHAR, owner VARCHAR,
        previous_owner VARCHAR, n_changes BIGINT, first_seq BIGINT, last_seq BIGINT, txn_key VARCHAR,
        notes VARCHAR, routed_at TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS outbox_deliveries (
        outbox_id BIGINT, endpoint VARCHAR, channel VARCHAR, status VARCHAR, attempts BIGINT,
        next_attempt_at TIMESTAMP, lease_until TIMESTAMP, last_status BIGINT, last_error VARCHAR,
        updated_at TIMESTAMP, delivered_at TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS delivery_attempts (
        outbox_id BIGINT, endpoint VARCHAR, attempt BIGINT, attempted_at TIMESTAMP, status_code BIGINT,
        error VARCHAR, duration_ms DOUBLE PRECISION, next_attempt_at TIMESTAMP
    )""",
    "CREATE TABLE IF NOT EXISTS notify_endpoints (endpoint VARCHAR, disabled_at TIMESTAMP, reason VARCHAR)",
    # Events from other systems (CloudEvents), idempotent on (source, event_id). `seq` is the feed's
    # cursor: assigned in commit order under the store's single writer, so it never goes backwards.
    # No index: DuckDB makes every commit to an indexed table several times dearer, and events are
    # written one request at a time; `key_hash` (of source and id) makes the replay check a fast scan.
    """CREATE TABLE IF NOT EXISTS events (
        seq BIGINT NOT NULL, key_hash BIGINT NOT NULL, source VARCHAR NOT NULL, event_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL, subject VARCHAR, event_time VARCHAR, data VARCHAR NOT NULL, extensions VARCHAR,
        received_at TIMESTAMP NOT NULL, via VARCHAR, status VARCHAR NOT NULL, lead_id VARCHAR, outcome VARCHAR,
        applied_at TIMESTAMP
    )""",
    # Contacts an event marked invalid or unreachable (a bounce): kept, with the reason and the event.
    """CREATE TABLE IF NOT EXISTS contact_flags (
        lead_id VARCHAR, channel VARCHAR, value VARCHAR, status VARCHAR, reason VARCHAR, event_seq BIGINT,
        rule VARCHAR, flagged_at TIMESTAMP
    )""",
    # Tracking links: the code in /t/<code> names one of these rows; the target never comes from a request.
    """CREATE TABLE IF NOT EXISTS tracking_links (
        token VARCHAR PRIMARY KEY, target VARCHAR NOT NULL, channel VARCHAR NOT NULL, utm_source VARCHAR,
        utm_medium VARCHAR, utm_campaign VARCHAR, lead_id VARCHAR, created_at TIMESTAMP, created_by VARCHAR
    )""",
    # What linking needs, kept on write: every value a record is counted or blocked on (see
    # linkage.sql.value_columns), so a change finds its candidates and their counts by key.
    "CREATE TABLE IF NOT EXISTS link_values (col VARCHAR, value VARCHAR, record_id BIGINT, surname VARCHAR)",
    # The counts of those values, kept on write in the transaction that adds or removes the values
    # (save, undo; rebuilt by a full pass): how many active records carry a value (term frequencies,
    # block sizes) and how many surnames (a contact many names share is a switchboard). value_names
    # holds the per-surname counts that keep n_names exact as records come and go.
    """CREATE TABLE IF NOT EXISTS value_counts (
        col VARCHAR NOT NULL, value VARCHAR NOT NULL, n_records BIGINT NOT NULL, n_names BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS value_names (
        col VARCHAR NOT NULL, value VARCHAR NOT NULL, surname VARCHAR NOT NULL, n_records BIGINT NOT NULL
    )""",
    # Changes not linked yet: records added, records removed (with the values they carried), leads
    # whose records moved. The next relink takes them and deletes them in its own transaction.
    """CREATE TABLE IF NOT EXISTS link_queue (
        seq BIGINT, record_id BIGINT, lead_id VARCHAR, change VARCHAR, col VARCHAR, value VARCHAR, surname VARCHAR
    )""",
    # Every restore (undo an import, as of a time, one lead as of a time): its id names it in the history's
    # causes and the overrides' notes, and `restore --undo-restore ID` takes it back (store/restores_sql.py).
    """CREATE TABLE IF NOT EXISTS restores (
        restore_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, target VARCHAR, done_by VARCHAR, done_at TIMESTAMP,
        imports_undone VARCHAR, undone_by VARCHAR, undone_at TIMESTAMP
    )""",
    # the middle band (linkage/review.py): every scored pair between keep-apart and merge, latest score
    """CREATE TABLE IF NOT EXISTS match_reviews (
        id_l BIGINT, id_r BIGINT, match_weight DOUBLE PRECISION, match_probability DOUBLE PRECISION, pattern BIGINT,
        contributions VARCHAR, scored_at TIMESTAMP
    )""",
    # people's answers about pairs, kept forever (the latest per pair binds linking: merge | apart)
    """CREATE TABLE IF NOT EXISTS match_decisions (
        id_l BIGINT, id_r BIGINT, decision VARCHAR, decided_by VARCHAR, decided_at TIMESTAMP, note VARCHAR,
        pattern BIGINT, match_weight DOUBLE PRECISION, contributions VARCHAR
    )""",
    # a merge decision keeps the two leads it joined together: every record of both, as it stood then
    "CREATE TABLE IF NOT EXISTS kept_together (id_l BIGINT, id_r BIGINT, decided_at TIMESTAMP)",
    """CREATE OR REPLACE VIEW quarantine AS
       SELECT import_id, source_file, sheet, source_row, reject_reason, name_raw, mobile_raw, email_raw,
              wechat_raw, qq_raw, douyin_raw, kuaishou_raw, company_raw, record_id
       FROM records WHERE NOT reachable AND lead_id IS NULL AND retired_by IS NULL""",
    # The read contract for other systems (CRM front ends, BI): the active golden leads, stable columns
    # (docs/store.md lists them). On PostgreSQL the read-only role may read this view and nothing else.
    f"""CREATE OR REPLACE VIEW curated_leads AS
       SELECT {', '.join(CURATED_LEAD_COLUMNS)} FROM leads WHERE status = 'active'""",
]

# Indexes the per-change path looks up by (a PostgreSQL store creates them; DuckDB scans its columns,
# which is as fast at these sizes and keeps its writes cheap). Every change-path query joins a small
# set of keys (record ids, lead ids, (col, value) pairs) to one of these.
CHANGE_PATH_INDEXES = [
    "CREATE INDEX IF NOT EXISTS link_values_by_key ON link_values (col, value)",
    "CREATE INDEX IF NOT EXISTS link_values_by_record ON link_values (record_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS value_counts_by_key ON value_counts (col, value)",
    "CREATE UNIQUE INDEX IF NOT EXISTS value_names_by_key ON value_names (col, value, surname)",
    "CREATE INDEX IF NOT EXISTS records_by_lead ON records (lead_id)",
    "CREATE INDEX IF NOT EXISTS records_by_mobile ON records (mobile)",
    "CREATE UNIQUE INDEX IF NOT EXISTS leads_by_id ON leads (lead_id)",
    "CREATE INDEX IF NOT EXISTS leads_by_mobile ON leads (mobile)",
    "CREATE INDEX IF NOT EXISTS match_links_left ON match_links (record_l)",
    "CREATE INDEX IF NOT EXISTS match_links_right ON match_links (record_r)",
    "CREATE INDEX IF NOT EXISTS conflicts_by_lead ON conflicts (lead_id)",
    "CREATE INDEX IF NOT EXISTS overrides_by_lead ON lead_overrides (lead_id)",
    "CREATE INDEX IF NOT EXISTS lead_splits_by_lead ON lead_splits (lead_a, lead_b)",
    "CREATE INDEX IF NOT EXISTS match_reviews_by_pair ON match_reviews (id_l, id_r)",
    "CREATE INDEX IF NOT EXISTS match_decisions_by_pair ON match_decisions (id_l, id_r)",
    "CREATE INDEX IF NOT EXISTS kept_together_by_pair ON kept_together (id_l, id_r)",
    # not a lookup: the history's sequence stays unique where an index costs little (see the history DDL)
    "CREATE UNIQUE INDEX IF NOT EXISTS history_by_seq ON history (seq)",
]

#: every table the DDL creates, in order (the store's catalog must hold exactly these; backups take them all)
TABLE_NAMES = [statement.split("TABLE IF NOT EXISTS", 1)[1].split("(", 1)[0].strip()
               for statement in DDL if "CREATE TABLE IF NOT EXISTS" in statement]

# the outbox's columns, in table order (notify/outbox.py tells what a message is)
OUTBOX_COLUMNS = ["outbox_id", "message_id", "created_at", "lead_id", "owner", "previous_owner", "n_changes",
                  "first_seq", "last_seq", "txn_key", "notes", "routed_at"]
