"""The old import path of the DuckDB lead store, which now lives in the package `store/duckdb/`.

`from datafactory_pipelines.store import duckdb_store` and `...store.duckdb_store import DuckDBLeadStore`
keep working: this name is the module `store.duckdb.lead_store` itself (not a copy), so a test or benchmark
that sets one of its constants (HISTORY_SLICE_LEADS) changes what the store reads.
"""

from __future__ import annotations

import sys

from datafactory_pipelines.store.duckdb import lead_store

sys.modules[__name__] = lead_store
