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
            # a copy of the migrated empty store (made once per server): no migrations per test
            # FILE_COPY: the template's files copied as they are, instead of every block through the WAL
            # (twice as fast on a server without fsync, and no WAL to write and recycle)
            con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}" STRATEGY FILE_COPY')
    return admin.rsplit("/", 1)[0] + "/" + name


TEMPLATE_DATABASE = "datafactory_template"


def make_template(admin: str, side_dir: Path) -> None:
    """The empty, migrated lead store every test database is copied from."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DATABASE}"')
        con.execute(f'CREATE DATABASE "{TEMPLATE_DATABASE}"')
    store = open_store(admin.rsplit("/", 1)[0] + "/" + TEMPLATE_DATABASE, side_dir=side_dir)
    store.close()


def store_in(folder: Path) -> LeadStore:
    """The lead store of `folder` (a DuckDB file in it, or its own PostgreSQL database)."""
    location = location_in(folder)
    return open_store(location, side_dir=Path(folder) / "leads.pg") if isinstance(location, str) \
        else open_store(location)


def database_names(admin: str) -> set[str]:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as con:
        return {name for (name,) in con.execute("SELECT datname FROM pg_database")}


def drop_databases(admin: str, names: set[str]) -> None:
    """The databases dropped, whoever is still connected (a test's leftover sessions or processes)."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as con:
        for name in sorted(names):
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_database(admin: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def home_env(home: Path) -> dict[str, str]:
    """The environment of a `datafactory` process working in `home`: its store on the test's backend."""
    env = {"DATAFACTORY_HOME": str(home)}
    if os.environ.get(PG_ADMIN_ENV):
        env["DATAFACTORY_DB_URL"] = str(location_in(home))
    return env


def store_digest(store: LeadStore) -> str:
    """A digest of everything the store holds: the DuckDB file byte for byte; on PostgreSQL every table's
    rows (in a fixed order) and the schema's migrations."""
    if not isinstance(getattr(store, "url", None), str):
        return hashlib.sha256(Path(store.path).read_bytes()).hexdigest()
    digest = hashlib.sha256()
    snapshot = store.table_snapshot(store.table_names())
    for name in sorted(snapshot):
        frame = snapshot[name]
        digest.update(name.encode())
        if len(frame.columns):
            frame = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        digest.update(frame.to_csv(index=False).encode())
    return digest.hexdigest()


def tamper(store: LeadStore, sql: str, params: list) -> None:
    """What someone with the database's own keys does: the DuckDB file opened directly; on PostgreSQL a
    superuser session switching the history guard's triggers off (`session_replication_role = replica`)
    after the application's own UPDATE was refused."""
    url = getattr(store, "url", None)
    if not isinstance(url, str):
        import duckdb

        with duckdb.connect(str(store.path)) as con:
            con.execute(sql, params)
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        try:
            con.execute(sql.replace("?", "%s"), params)
        except psycopg.errors.RaiseException as refused:
            assert "append-only" in str(refused)
        else:
            raise AssertionError("the history guard let an UPDATE through")
        con.execute("SET session_replication_role = replica")
        con.execute(sql.replace("?", "%s"), params)


def copy_store(store: LeadStore, folder: Path) -> LeadStore:
    """A copy of the whole store, as the store of `folder` (DuckDB: the file copied; PostgreSQL: a new
    database made from the store's as its template, once the store's sessions are closed)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    url = getattr(store, "url", None)
    if not isinstance(url, str):
        shutil.copy(store.path, folder / "leads.duckdb")
        return open_store(folder / "leads.duckdb")
    import psycopg

    store.close()
    admin = os.environ[PG_ADMIN_ENV]
    source, target = url.rsplit("/", 1)[1], str(location_in(folder)).rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{target}"')
        con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()", [source])
        con.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    return store_in(folder)
