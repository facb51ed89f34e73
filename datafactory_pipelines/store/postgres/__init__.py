"""The production backend of the lead store: PostgreSQL (see docs/store.md and docs/production.md)."""

from __future__ import annotations

from datafactory_pipelines.store.postgres.lead_store import PostgresLeadStore

__all__ = ["PostgresLeadStore"]
