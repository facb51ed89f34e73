"""One place that opens DuckDB databases with a memory budget.

DuckDB's default buffer memory limit is 80% of RAM, per database: the store and every in-memory linkage
database would each grow towards it on a big join or sort instead of spilling to disk. Every DuckDB
connection of the project is made here, with `memory_limit` from `DATAFACTORY_DUCKDB_MEMORY_LIMIT`
(a DuckDB size such as "1.5GB"; default below) and `temp_directory` on disk: beside the store file for
the store, in `DATAFACTORY_DUCKDB_TEMP_DIRECTORY` or the system temporary folder for in-memory databases
(DuckDB's own default for those is `.tmp` in the current folder).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb

MEMORY_LIMIT_ENV = "DATAFACTORY_DUCKDB_MEMORY_LIMIT"
TEMP_DIRECTORY_ENV = "DATAFACTORY_DUCKDB_TEMP_DIRECTORY"
# Per database. A base import holds the store and one linkage database open at once, beside the Python
# frames. Measured on the 1M-record base import: at 2 GB the store's buffers put the conflicts phase at
# 4.4 GB peak RSS; at 1 GB 3.65 GB, but the golden-record SQL spills and the whole import took 124 s
# instead of 94 s, and a 10k-row import 8.6 s instead of 6.2 s; 2 GB is the default, set lower to save memory.
DEFAULT_MEMORY_LIMIT = "2GB"
# The store's cap while a full pass holds its curation frames in Python (conflicts, match links): lowering it
# evicts what the golden-record SQL left cached. At 1M records: 1.4 GB given back, the conflicts phase's
# peak 4.9 -> 3.6 GB, no slower (those phases run no big query).
FRAMES_MEMORY_LIMIT = "256MB"
# The store's cap during a full pass's write (the leads, history and links of every lead), beside the frames
# it writes. At 1M records, back to back on the same (busy) machine: at 2GB the write took 18.3 s and the
# import peaked at 4.33 GB; at 1GB 17.8 s and 3.92 GB.
WRITE_MEMORY_LIMIT = "1GB"


def memory_limit() -> str:
    return os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT


def _scratch_temp_directory() -> Path:
    configured = os.environ.get(TEMP_DIRECTORY_ENV, "").strip()
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"datafactory-duckdb-{os.getuid()}"


def connect(path: str | Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the project's memory budget: the database file at `path`, or an
    in-memory database when `path` is None."""
    config = {"memory_limit": memory_limit()}
    if path is None:
        temp = _scratch_temp_directory()
        temp.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(temp)
        return duckdb.connect(config=config)
    path = Path(path)
    config["temp_directory"] = str(path.with_name(path.name + ".tmp"))  # DuckDB's own default for a file
    return duckdb.connect(str(path), read_only=read_only, config=config)
