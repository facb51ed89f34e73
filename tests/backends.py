"""Both lead store backends under one set of tests.

A module runs its tests on DuckDB and on a real PostgreSQL with `pytestmark = both_backends` (from here);
its tests open stores with `store_in(folder)` (or ask for the `store` fixture) instead of naming a DuckDB
file. On PostgreSQL each folder a test uses gets its own database on the session's server, and
DATAFACTORY_DB_URL points at the database of the test's home (tmp_path / "home"), so the CLI, the pipeline
and Dagster runs started by the test use it too. `--backend duckdb|postgres|both` (or DATAFACTORY_TEST_BACKEND)
picks the backends; CI runs both.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from datafactory_pipelines.store import LeadStore, open_store

#: set by the `backend` fixture while a test runs on PostgreSQL: the server's admin URL
PG_ADMIN_ENV = "DATAFACTORY_TEST_PG_ADMIN"

both_backends = pytest.mark.usefixtures("backend")


def location_in(folder: Path) -> Path | str:
    """Where the store of `folder` lives on the backend the test runs on."""
    admin = os.environ.get(PG_ADMIN_ENV)
    if not admin:
        return Path(folder) / "leads.duckdb"
    name = "t_" + hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:20]
    import psycopg

    with psycopg.connect(admin, autocommit=True) as con:
        if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            con.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


def store_in(folder: Path) -> LeadStore:
    """The lead store of `folder` (a DuckDB file in it, or its own PostgreSQL database)."""
    location = location_in(folder)
    return open_store(location, side_dir=Path(folder) / "leads.pg") if isinstance(location, str) \
        else open_store(location)


def drop_database(admin: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
