"""The lead store: imports, every source record, and the curated leads, behind one interface."""

from __future__ import annotations

from pathlib import Path

from datafactory_pipelines.store.base import DuplicateImportError, ImportMeta, LeadChanges, LeadStore
from datafactory_pipelines.store.duckdb import DuckDBLeadStore


def open_store(path: str | Path) -> LeadStore:
    """Open the lead store at a DuckDB file path (PostgreSQL URLs come with the postgres backend)."""
    text = str(path)
    if text.startswith(("postgresql://", "postgres://")):
        raise ValueError("the PostgreSQL lead store is not available in this version; use a DuckDB file path")
    return DuckDBLeadStore(path)


__all__ = ["DuckDBLeadStore", "DuplicateImportError", "ImportMeta", "LeadChanges", "LeadStore", "open_store"]
