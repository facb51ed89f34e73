"""The PostgreSQL lead store's own guarantees: migrations recorded once, the history guard, no password in
what the command line says."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.store import open_store
from datafactory_pipelines.store.postgres.migrations import LATEST
from tests.backends import location_in
from tests.conftest import write_xlsx
from tests.test_cli import CLI

ROWS = [["姓名", "手机", "公司"], ["张伟", "13800138000", "星海科技"], ["李娜", "13900139000", "云帆贸易"]]


@pytest.fixture
def url(pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATAFACTORY_TEST_PG_ADMIN", pg_admin_url)
    return str(location_in(tmp_path))


def test_migrations_are_recorded_once_and_the_history_refuses_change(url: str, tmp_path: Path) -> None:
    store = open_store(url, side_dir=tmp_path / "side")
    import_file(store, write_xlsx(tmp_path / "a.xlsx", ROWS))
    relink_and_curate(store)
    open_store(url, side_dir=tmp_path / "side")  # a second open applies nothing again
    with psycopg.connect(url, autocommit=True) as con:
        assert con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall() == \
            [(v,) for v in range(1, LATEST + 1)]
        assert con.execute("SELECT count(*) FROM history").fetchone()[0] > 0
        for statement in ("UPDATE history SET new_value = 'x'", "DELETE FROM history", "TRUNCATE history"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                con.execute(statement)
        # the read contract: the active leads, in its own columns
        assert con.execute("SELECT count(*) FROM curated_leads").fetchone()[0] == 2


def test_the_command_line_never_shows_the_password(url: str, tmp_path: Path) -> None:
    with_password = url.replace("postgres@", "postgres:s3cret-pw@")  # trust auth: any password is let in
    env = {**os.environ, "DATAFACTORY_HOME": str(tmp_path / "home"), "DATAFACTORY_DB_URL": with_password}
    imported = subprocess.run([CLI, "import", str(write_xlsx(tmp_path / "a.xlsx", ROWS))], env=env,
                              capture_output=True, text=True, timeout=300)
    status = subprocess.run([CLI, "status"], env=env, capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0 and status.returncode == 0, imported.stderr + status.stderr
    assert f"lead store: {with_password.replace('s3cret-pw', '***')}" in status.stdout  # named, masked
    assert re.search(r"active leads\s+2\b", status.stdout), status.stdout
    for done in (imported, status):
        assert "s3cret-pw" not in done.stdout + done.stderr
