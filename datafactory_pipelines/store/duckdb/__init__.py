"""The embedded backend of the lead store: one DuckDB file (see docs/store.md)."""

from __future__ import annotations

from datafactory_pipelines.store.duckdb.lead_store import DuckDBLeadStore

__all__ = ["DuckDBLeadStore"]
