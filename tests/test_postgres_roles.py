"""The store's roles on PostgreSQL (store/postgres/roles.sql), set up the way docs/production.md says.

A database owned by a role of its own; the owner opens the store (the migrations) and runs roles.sql with
psql; login roles join the groups. The application's login imports a file and sets a field through the real
command line, and cannot change the history or the schema; the reader's login reads `curated_leads` and
nothing else.
"""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

import psycopg
import pytest

from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store
from tests.pg_processes import Home, history_verified, new_database, rows
from tests.postgres_server import postgres_bin

ROLES_SQL = resources.files("datafactory_pipelines.store.postgres").joinpath("roles.sql")


def _as(url: str, user: str) -> str:
    """The same database, logged in as `user` (the test server trusts local logins)."""
    head, tail = url.split("@", 1)
    return f"{head.rsplit('//', 1)[0]}//{user}@{tail}"


def _refused(url: str, sql: str) -> str:
    with psycopg.connect(url, autocommit=True) as con, pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
        con.execute(sql)
    return str(err.value)


def _psql(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(postgres_bin() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
                          capture_output=True, text=True, check=False)


def test_the_app_role_runs_datafactory_and_the_reader_reads_the_contract_only(pg_admin_url: str,
                                                                             tmp_path: Path) -> None:
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute('DROP DATABASE IF EXISTS "roles_store" WITH (FORCE)')
        for role in ("df_owner", "df_worker", "crm", "datafactory_app", "datafactory_reader"):
            admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute("CREATE ROLE df_owner LOGIN CREATEROLE")
    owner = new_database(pg_admin_url, "roles_store", owner="df_owner")
    open_store(owner, side_dir=tmp_path / "owner.pg").close()  # the owner applies the migrations
    for _ in range(2):  # running it again changes nothing
        applied = _psql(owner, "-f", str(ROLES_SQL))
        assert applied.returncode == 0, applied.stderr
    made = _psql(owner, "-c", "CREATE ROLE df_worker LOGIN IN ROLE datafactory_app",
                 "-c", "CREATE ROLE crm LOGIN IN ROLE datafactory_reader")
    assert made.returncode == 0, made.stderr
    worker, crm = _as(owner, "df_worker"), _as(owner, "crm")

    # the application's login: an import and an edit through the command line, the chain intact
    sample = write_sample_files(tmp_path / "files", people=60, records=120, files=1, seed=71)
    home = Home(tmp_path / "home", worker)
    imported = home.run("import", str(sample.files[0]))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    (lead_id,), = rows(worker, "SELECT lead_id FROM leads WHERE status = 'active' ORDER BY lead_id LIMIT 1")
    edited = home.run("lead", "set", lead_id, "title=采购总监", "--by", "李娜", "--note", "客户来电")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert rows(worker, "SELECT title FROM leads WHERE lead_id = %s", [lead_id]) == [("采购总监",)]
    assert history_verified(worker) > 0
    assert rows(worker, "SELECT current_user")[0][0] == "df_worker"

    # … which appends history but cannot change it, and changes no definition
    for statement in ("UPDATE history SET actor = 'someone else'", "DELETE FROM history",
                      "TRUNCATE history", "CREATE TABLE leads_copy (lead_id TEXT)", "DROP TABLE leads",
                      "ALTER TABLE leads ADD COLUMN note TEXT", "DROP TRIGGER history_no_truncate ON history",
                      "INSERT INTO schema_migrations (version, name) VALUES (99, 'mine')"):
        _refused(worker, statement)
    with psycopg.connect(worker, autocommit=True) as con:  # its joins' temporary tables
        con.execute("CREATE TEMPORARY TABLE wanted (lead_id TEXT)")

    # the reader's login: the read contract, nothing else
    active = rows(owner, "SELECT count(*) FROM leads WHERE status = 'active'")[0][0]
    assert rows(crm, "SELECT count(*) FROM curated_leads") == [(active,)]
    assert rows(crm, "SELECT title FROM curated_leads WHERE lead_id = %s", [lead_id]) == [("采购总监",)]
    for table in ("records", "leads", "history", "imports", "events", "quarantine"):
        assert "permission denied" in _refused(crm, f"SELECT * FROM {table} LIMIT 1")
    for statement in ("UPDATE curated_leads SET title = 'x'", "CREATE TEMPORARY TABLE mine (x INT)",
                      "CREATE TABLE mine (x INT)"):
        _refused(crm, statement)
