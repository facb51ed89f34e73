"""Dagster on PostgreSQL: with DAGSTER_PG_URL set, datafactory's runs and event logs land in a real PostgreSQL,
and DAGSTER_HOME holds no SQLite run storage. Also: which dagster.yaml is written, rewritten or left alone."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
import yaml

from datafactory_pipelines.dagster_config import (
    MARKER,
    DagsterConfigError,
    dagster_pg_url,
    dagster_yaml,
    write_dagster_yaml,
)
from tests.postgres_server import postgres_bin, postgres_server

CLI = str(Path(sys.executable).with_name("datafactory"))


def _dagster_database(admin_url: str) -> str:
    """A `dagster` login role owning its own database, as docs/production.md sets it up."""
    con = psycopg2.connect(admin_url)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute("CREATE ROLE dagster LOGIN PASSWORD 'dagster-secret'")
        cur.execute("CREATE DATABASE dagster OWNER dagster")
    con.close()
    return admin_url.replace("postgres@", "dagster:dagster-secret@").rsplit("/", 1)[0] + "/dagster"


def _runs_through_postgres_db_form(pg_url: str, dagster_home: Path) -> tuple[int, object]:
    """The runs a Dagster instance sees when configured by the separate variables instead of the URL, and
    its run queue's settings."""
    import dagster as dg
    from psycopg2.extensions import parse_dsn

    dsn = parse_dsn(pg_url)
    env = {"DAGSTER_PG_HOST": dsn["host"], "DAGSTER_PG_PORT": dsn["port"], "DAGSTER_PG_USER": dsn["user"],
           "DAGSTER_PG_PASSWORD": dsn["password"], "DAGSTER_PG_DB": dsn["dbname"], "DATAFACTORY_MAX_RUNS": "3"}
    dagster_home.mkdir()
    write_dagster_yaml(dagster_home, env)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            # what the daemon dequeues by (QueuedRunCoordinatorDaemon reads the same call)
            return len(instance.get_runs()), instance.get_concurrency_config().run_queue_config
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL binaries are not installed")
def test_run_inbox_keeps_dagster_runs_and_event_logs_in_postgres(tmp_path: Path) -> None:
    home, dagster_home = tmp_path / "data", tmp_path / "dagster_home"
    with postgres_server() as admin_url:
        pg_url = _dagster_database(admin_url)
        done = subprocess.run(
            [CLI, "demo", "--people", "30", "--records", "60", "--files", "2", "--exports", "0"],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "DATAFACTORY_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
                 "DATAFACTORY_INBOX_SETTLE_SECONDS": "0", "DAGSTER_PG_URL": pg_url})
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "2 file(s) imported" in done.stdout

        config = yaml.safe_load((dagster_home / "dagster.yaml").read_text(encoding="utf-8"))
        assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
        assert "dagster-secret" not in (dagster_home / "dagster.yaml").read_text(encoding="utf-8")

        con = psycopg2.connect(pg_url)
        with con.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM runs GROUP BY status")
            statuses = dict(cur.fetchall())
            cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
            materializations = cur.fetchone()[0]
            cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'runs'")
            owner = cur.fetchone()[0]
        con.close()
        runs_seen, queue = _runs_through_postgres_db_form(pg_url, tmp_path / "other_dagster_home")
    assert statuses == {"SUCCESS": 2}  # one run per dropped file, both finished
    assert materializations >= 2
    assert owner == "dagster"  # dagster-postgres created its tables as the dagster role, in its own database
    assert runs_seen == 2  # the DAGSTER_PG_HOST/_USER/_PASSWORD/_DB/_PORT form reaches the same database
    assert queue.max_concurrent_runs == 3  # the QueuedRunCoordinator, DATAFACTORY_MAX_RUNS at once …
    assert queue.tag_concurrency_limits == [{"key": "datafactory/lead_store", "limit": 1}]  # … the store alone
    sqlite_files = sorted(p.relative_to(dagster_home).as_posix() for p in dagster_home.rglob("*.db"))
    assert sqlite_files == []  # no runs.db, no event-log or schedule SQLite under DAGSTER_HOME


def test_sqlite_without_postgres_settings_is_the_file_datafactory_always_wrote() -> None:
    text = dagster_yaml({})
    config = yaml.safe_load(text)
    assert "storage" not in config and "run_coordinator" not in config
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [{"key": "datafactory/lead_store", "limit": 1}]


def test_postgres_settings_give_the_queued_coordinator_and_keep_the_lead_store_limit() -> None:
    config = yaml.safe_load(dagster_yaml({"DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_USER": "dagster",
                                          "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_PASSWORD": "s3cret",
                                          "DATAFACTORY_MAX_RUNS": "6"}))
    assert config["storage"]["postgres"]["postgres_db"] == {
        "username": {"env": "DAGSTER_PG_USER"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"}, "db_name": {"env": "DAGSTER_PG_DB"},
        "scheme": "postgresql+psycopg2"}  # SQLAlchemy 2.1 would pick psycopg 3, which dagster-postgres refuses
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"] == {
        "max_concurrent_runs": 6, "tag_concurrency_limits": [{"key": "datafactory/lead_store", "limit": 1}]}
    assert yaml.safe_load(dagster_yaml({"DAGSTER_PG_URL": "x"}))["concurrency"]["runs"]["max_concurrent_runs"] == 4


def test_written_files_load_as_dagster_instances(tmp_path: Path) -> None:
    """Dagster validates the whole file (storage, coordinator and concurrency together) without connecting."""
    from dagster._core.instance.config import dagster_instance_config

    for env in ({}, {"DAGSTER_PG_URL": "postgresql://u@127.0.0.1:1/d"},
                {"DAGSTER_PG_HOST": "h", "DAGSTER_PG_USER": "u", "DAGSTER_PG_DB": "d", "DAGSTER_PG_PORT": "5433"}):
        folder = tmp_path / str(len(env))
        folder.mkdir()
        write_dagster_yaml(folder, env)
        config, _ = dagster_instance_config(str(folder))
        assert ("storage" in config) == bool(env)


def test_a_bare_postgresql_url_gets_the_psycopg2_driver() -> None:
    assert dagster_pg_url("postgresql://d:pw@db:5432/dagster") == "postgresql+psycopg2://d:pw@db:5432/dagster"
    assert dagster_pg_url("postgres://d@db/dagster") == "postgresql+psycopg2://d@db/dagster"
    assert dagster_pg_url("postgresql+psycopg2://d@db/x") == "postgresql+psycopg2://d@db/x"


def test_incomplete_postgres_settings_name_what_is_missing() -> None:
    with pytest.raises(DagsterConfigError, match="DAGSTER_PG_USER, DAGSTER_PG_DB"):
        dagster_yaml({"DAGSTER_PG_HOST": "db.internal"})
    with pytest.raises(DagsterConfigError, match="DATAFACTORY_MAX_RUNS"):
        dagster_yaml({"DAGSTER_PG_URL": "x", "DATAFACTORY_MAX_RUNS": "many"})


def test_datafactorys_file_is_rewritten_a_hand_written_one_is_left_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_dagster_yaml(tmp_path, {})
    write_dagster_yaml(tmp_path, {"DAGSTER_PG_URL": "x"})
    assert config.read_text(encoding="utf-8") == dagster_yaml({"DAGSTER_PG_URL": "x"})
    write_dagster_yaml(tmp_path, {})  # and back, when the variable is gone
    assert config.read_text(encoding="utf-8") == dagster_yaml({})

    hand_written = "# ours\nstorage:\n  sqlite:\n    base_dir: /srv/dagster\n"
    config.write_text(hand_written, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="datafactory_pipelines.dagster_config"):
        write_dagster_yaml(tmp_path, {"DAGSTER_PG_URL": "x"})
    assert config.read_text(encoding="utf-8") == hand_written
    assert "not written by datafactory" in caplog.text and not hand_written.startswith(MARKER)
