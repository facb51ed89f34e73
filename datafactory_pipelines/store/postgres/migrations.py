"""The PostgreSQL store's schema, as numbered migrations applied on open and recorded in `schema_migrations`.

Migration 1 is the whole schema of store/schema.py (the one DDL both backends run), the change path's
indexes (schema.CHANGE_PATH_INDEXES), the history guard (triggers refusing UPDATE, DELETE and TRUNCATE on
the history: store/postgres_history.sql) and the `curated_leads` read contract. A later change to the
schema is a new migration appended here, never an edit of an applied one. Processes opening the store at
once take turns (an advisory lock): each migration is applied once, in its own transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

from datafactory_pipelines.store.postgres.advisory_lock import MIGRATION_KEY
from datafactory_pipelines.store.postgres.connection import PgConnection
from datafactory_pipelines.store.schema import CHANGE_PATH_INDEXES, DDL, SCHEMA_VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _history_guard() -> tuple[str, ...]:
    text = resources.files("datafactory_pipelines.store").joinpath("postgres_history.sql").read_text("utf-8")
    # the file is statements separated by blank-line-free semicolons, with one $$ function body
    statements, current = [], []
    in_body = False
    for line in text.splitlines():
        if line.strip().startswith("--") and not current:
            continue
        current.append(line)
        if "$$" in line:
            in_body = line.count("$$") == 1 and not in_body
        if line.rstrip().endswith(";") and not in_body:
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    return tuple(s for s in statements if s.strip())


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the lead store: tables, change-path indexes, history guard, read contract",
              (*DDL, *CHANGE_PATH_INDEXES, *_history_guard(),
               f"INSERT INTO store_meta VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING")),
    # an import's records by its id: undo, its preview and the import's own counts read them (a scan of the
    # whole base at 1M records: 0.6 s each, several per undo)
    Migration(2, "records by import", ("CREATE INDEX IF NOT EXISTS records_by_import ON records (import_id)",)),
    # the change path's lookups answered from the indexes alone (no visit of the link values' rows), and the
    # store's counts (change_path_state) without a scan of the records or the leads: 1.5-2 s at 1M records
    Migration(3, "index-only change path and counts", (
        "CREATE INDEX IF NOT EXISTS link_values_by_record_with_values ON link_values (record_id) "
        "INCLUDE (col, value, surname)",
        "DROP INDEX IF EXISTS link_values_by_record",
        "CREATE INDEX IF NOT EXISTS link_values_by_key_with_record ON link_values (col, value) INCLUDE (record_id)",
        "DROP INDEX IF EXISTS link_values_by_key",
        "CREATE INDEX IF NOT EXISTS records_retired ON records (record_id) WHERE retired_by IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS leads_not_active ON leads (lead_id) WHERE status IS DISTINCT FROM 'active'",
        "CREATE INDEX IF NOT EXISTS leads_by_number ON leads ((CAST(substr(lead_id, 2) AS BIGINT)))",
        "CREATE INDEX IF NOT EXISTS match_links_left_with_right ON match_links (record_l) INCLUDE (record_r)",
        "DROP INDEX IF EXISTS match_links_left",
        "CREATE INDEX IF NOT EXISTS match_links_right_with_left ON match_links (record_r) INCLUDE (record_l)",
        "DROP INDEX IF EXISTS match_links_right",
        # room on each page for a row's next version: a change updates 60k counters and 10-20k leads in
        # place (HOT: no new index entries) instead of moving each row and indexing it again
        "ALTER TABLE value_counts SET (fillfactor = 90)",
        "ALTER TABLE value_names SET (fillfactor = 90)",
        "ALTER TABLE leads SET (fillfactor = 90)",
    )),
)
LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""


def applied_version(con: PgConnection) -> int:
    exists = con.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchall()[0][0]
    if not exists:
        return 0
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0])


def migrate(con: PgConnection) -> list[int]:
    """Apply the migrations this database lacks (outside any transaction of the caller); returns them."""
    if applied_version(con) >= LATEST:
        return []
    applied: list[int] = []
    con.execute("SELECT pg_advisory_lock(?)", [MIGRATION_KEY]).fetchall()
    try:
        con.execute(_VERSION_TABLE)
        done = applied_version(con)
        for migration in MIGRATIONS:
            if migration.version <= done:
                continue
            con.execute("BEGIN")
            try:
                for statement in migration.statements:
                    con.execute(statement)
                con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                            [migration.version, migration.name])
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            log.info("lead store migration %d applied: %s", migration.version, migration.name)
            applied.append(migration.version)
    finally:
        con.execute("SELECT pg_advisory_unlock(?)", [MIGRATION_KEY]).fetchall()
    return applied
