"""Setting up a DuckDB store's tables, and bringing a store made by an older version up to date."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from datafactory_pipelines.fields import LEAD_COLUMN_TYPES
from datafactory_pipelines.store.schema import (
    DDL,
    IMPORT_COLUMNS,
    LEAD_COLUMNS,
    RECORD_COLUMNS,
    SCHEMA_VERSION,
)

# The DDL this code creates: a store set up with the same needs no catalog writes when it is opened.
DDL_FINGERPRINT = hashlib.sha256("\n".join([str(SCHEMA_VERSION), *DDL]).encode()).hexdigest()[:16]


class DuckDBSchemaSetup:
    path: Path

    @classmethod
    def _set_up(cls, con: duckdb.DuckDBPyConnection) -> None:
        """The tables, views and indexes of this version (nothing is written when they are already there)."""
        if cls._schema_is_current(con):  # every command opens the store: the catalog is written only on change
            return
        for statement in DDL:
            if statement.lstrip().startswith("CREATE OR REPLACE VIEW"):
                cls._add_missing_columns(con)  # a store made by an older version
            con.execute(statement)
        con.execute(
            "INSERT INTO store_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [str(SCHEMA_VERSION)]
        )
        con.execute("INSERT OR REPLACE INTO store_meta VALUES ('schema_ddl', ?)", [DDL_FINGERPRINT])


    @staticmethod
    def _schema_is_current(con: duckdb.DuckDBPyConnection) -> bool:
        """Whether this store was last set up with exactly this DDL (then there is nothing to create or add)."""
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                           "AND table_name = 'store_meta'").fetchall()[0][0]:
            return False
        found = con.execute("SELECT value FROM store_meta WHERE key = 'schema_ddl'").fetchall()
        return bool(found) and found[0][0] == DDL_FINGERPRINT


    @staticmethod
    def _add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
        DuckDBSchemaSetup._content_unique_among_live_imports(con)
        DuckDBSchemaSetup._leads_without_key_index(con)
        for table, columns in (("records", RECORD_COLUMNS), ("leads", LEAD_COLUMNS), ("imports", IMPORT_COLUMNS)):
            present = {row[0] for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
            for column in columns:
                if column not in present:
                    kind = "BIGINT" if column in ("record_id", "source_row") else \
                        "TIMESTAMP" if column == "undone_at" else LEAD_COLUMN_TYPES.get(column, "VARCHAR")
                    con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {kind}')


    @staticmethod
    def _content_unique_among_live_imports(con: duckdb.DuckDBPyConnection) -> None:
        """Older stores made content_sha256 UNIQUE, which kept an undone file out forever: rebuild that table."""
        unique = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'imports' AND constraint_type = 'UNIQUE' "
            "AND list_contains(constraint_column_names, 'content_sha256')").fetchall()[0][0]
        if unique:
            DuckDBSchemaSetup._rebuild_from_ddl(con, "imports", IMPORT_COLUMNS)


    @staticmethod
    def _leads_without_key_index(con: duckdb.DuckDBPyConnection) -> None:
        """Older stores made lead_id the leads' PRIMARY KEY, whose index DuckDB rewrites whole at every
        checkpoint after a change: the table is rebuilt once without it (same rows; see schema.DDL)."""
        keyed = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'leads' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()[0][0]
        if keyed:
            DuckDBSchemaSetup._rebuild_from_ddl(con, "leads", LEAD_COLUMNS)


    @staticmethod
    def _rebuild_from_ddl(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> None:
        """`table` made again from today's DDL (without a constraint an older version gave it), with the same
        rows: the columns it has of `columns` are copied, in the database (no frame)."""
        present = {row[0] for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_before_rebuild")
        con.execute(next(statement for statement in DDL if f"TABLE IF NOT EXISTS {table} (" in statement))
        copied = ", ".join(f'"{c}"' for c in columns if c in present)
        con.execute(f"INSERT INTO {table} ({copied}) SELECT {copied} FROM {table}_before_rebuild")
        con.execute(f"DROP TABLE {table}_before_rebuild")
