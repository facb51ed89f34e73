"""Whole-table reads and writes for backups, with every identifier checked against the store's own catalog.

A backup's manifest is input like any other: a table or column name that came from it is never pasted into
SQL. Each name must be one the catalog of this store lists, and it is quoted as an identifier all the same
(a name that passed the check cannot break out of its quotes either).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pandas as pd


class UnknownIdentifierError(ValueError):
    """A table or column the store's catalog does not have."""


def quote_identifier(name: str) -> str:
    """`name` as a SQL identifier: in double quotes, a double quote inside doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def catalog_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every base table of the store and its columns, in catalog order."""
    rows = con.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema "
        "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> 'schema_migrations' "
        "ORDER BY c.table_name, c.ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _checked(catalog: dict[str, list[str]], table: str, columns: list[str] | None = None) -> None:
    if table not in catalog:
        raise UnknownIdentifierError(f"{table!r:.80} is not a table of this store")
    unknown = [c for c in (columns or []) if c not in catalog[table]]
    if unknown:
        raise UnknownIdentifierError(f"{table}: column {unknown[0]!r:.80} is not a column of this table")


def read_tables(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, pd.DataFrame]:
    """Every named table, whole (inside the caller's transaction, so they agree with each other)."""
    catalog = catalog_columns(con)
    for table in tables:
        _checked(catalog, table)
    return {table: con.execute(f"SELECT * FROM {quote_identifier(table)}").df() for table in tables}


def row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per base table of the store."""
    return {table: int(con.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchall()[0][0])
            for table in catalog_columns(con)}


def load_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame]) -> None:
    """Fill an empty store's tables (inside the caller's transaction). Every table and column is checked
    against the catalog before the first row is written."""
    catalog = catalog_columns(con)
    for table, frame in tables.items():
        _checked(catalog, table, [str(c) for c in frame.columns])
    used = con.execute("SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM leads) + "
                       "(SELECT count(*) FROM history)").fetchall()[0][0]
    if used:
        raise ValueError("the store is not empty; restore a backup into a new store")
    con.execute("DELETE FROM store_meta")
    for table, frame in tables.items():
        columns = ", ".join(quote_identifier(str(c)) for c in frame.columns)
        con.register("snapshot_part", frame)
        try:
            con.execute(f"INSERT INTO {quote_identifier(table)} ({columns}) SELECT {columns} FROM snapshot_part")
        finally:
            con.unregister("snapshot_part")
