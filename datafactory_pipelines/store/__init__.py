"""The lead store: imports, every source record, and the curated leads, behind one interface."""

from __future__ import annotations

from pathlib import Path

from datafactory_pipelines.store.base import DuplicateImportError, ImportMeta, LeadChanges, LeadStore
from datafactory_pipelines.store.duckdb import DuckDBLeadStore


def is_database_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def store_label(location: str | Path) -> str:
    """The store's location for messages and logs: a URL without its password."""
    if is_database_url(location):
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(str(location))
        if parts.password:
            return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return str(location)


def open_store(location: str | Path, side_dir: str | Path | None = None) -> LeadStore:
    """Open the lead store: a DuckDB file path (the embedded default), or a PostgreSQL URL
    (`postgresql://user@host/db`). `side_dir`: where a PostgreSQL store keeps this host's side files
    (markers, the dispatcher's journal); by default DATAFACTORY_HOME/leads.pg."""
    if is_database_url(location):
        from datafactory_pipelines.store.postgres import PostgresLeadStore

        return PostgresLeadStore(str(location), Path(side_dir) if side_dir else pg_side_dir(str(location)))
    return DuckDBLeadStore(location)


def pg_side_dir(url: str) -> Path:
    """DATAFACTORY_HOME/leads.pg: this host's side files of the home's PostgreSQL store (one store per home,
    as with leads.duckdb)."""
    import os

    return Path(os.environ.get("DATAFACTORY_HOME") or "data").resolve() / "leads.pg"


__all__ = ["DuckDBLeadStore", "DuplicateImportError", "ImportMeta", "LeadChanges", "LeadStore", "is_database_url",
           "open_store",
           "store_label"]
