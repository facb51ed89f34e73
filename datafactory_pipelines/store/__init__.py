"""The lead store: imports, every source record, and the curated leads, behind one interface."""

from __future__ import annotations

from pathlib import Path

from datafactory_pipelines.store.base import DuplicateImportError, ImportMeta, LeadChanges, LeadStore
from datafactory_pipelines.store.duckdb import DuckDBLeadStore


def is_database_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path, side_dir: str | Path | None = None) -> LeadStore:
    """Open the lead store: a DuckDB file path (the embedded default), or a PostgreSQL URL
    (`postgresql://user@host/db`). `side_dir`: where a PostgreSQL store keeps this host's side files
    (markers, the dispatcher's journal); by default a folder named after the database under
    DATAFACTORY_HOME."""
    if is_database_url(location):
        from datafactory_pipelines.store.postgres import PostgresLeadStore

        return PostgresLeadStore(str(location), Path(side_dir) if side_dir else pg_side_dir(str(location)))
    return DuckDBLeadStore(location)


def pg_side_dir(url: str) -> Path:
    """DATAFACTORY_HOME/leads.<host>-<port>-<database>.pg: one folder per database this host works on."""
    import os
    import re
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    name = f"{parts.hostname or 'local'}-{parts.port or 5432}-{parts.path.lstrip('/') or 'postgres'}"
    home = Path(os.environ.get("DATAFACTORY_HOME") or "data").resolve()
    return home / f"leads.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.pg"


__all__ = ["DuckDBLeadStore", "DuplicateImportError", "ImportMeta", "LeadChanges", "LeadStore", "is_database_url",
           "open_store"]
