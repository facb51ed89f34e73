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


def test_a_keyed_statement_is_planned_by_index_while_its_keys_are_few(url: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from datafactory_pipelines.store import change_sql
    from datafactory_pipelines.store.postgres import connection

    store = open_store(url, side_dir=tmp_path / "side")
    con = store._connect()  # noqa: SLF001 - the session the store's statements run on
    try:
        con.register("wanted", pd.DataFrame({"record_id": range(200)}))
        setting = "SELECT current_setting('enable_hashjoin') AS hash, current_setting('enable_mergejoin') AS merge"
        keyed = change_sql.by_key("wanted") + setting
        assert con.execute(keyed).fetchall() == [("off", "off")]
        assert con.execute(keyed).df().to_dict("records") == [{"hash": "off", "merge": "off"}]  # through COPY too
        assert con.execute(setting).fetchall() == [("on", "on")]  # the session's own plan after it
        assert con.execute(change_sql.by_key("unknown_keys") + setting).fetchall() == [("on", "on")]
        monkeypatch.setattr(connection, "BY_KEY_MAX_ROWS", 100)  # more keys than the bound: planned as usual
        assert con.execute(keyed).fetchall() == [("on", "on")]
        con.execute("CREATE TEMPORARY TABLE few AS SELECT record_id FROM wanted LIMIT 50")  # counted when made
        assert con.execute(change_sql.by_key("few") + setting).fetchall() == [("off", "off")]
        con.execute("BEGIN")  # a statement failing inside a transaction: the rollback takes its settings
        with pytest.raises(psycopg.errors.DivisionByZero):
            con.execute(change_sql.by_key("few") + "SELECT 1 / 0 FROM few").fetchall()
        con.execute("ROLLBACK")
        assert con.execute(setting).fetchall() == [("on", "on")]
    finally:
        con.close()


def test_the_counts_read_from_indexes_are_the_counts(url: str, tmp_path: Path) -> None:
    """change_path_state on PostgreSQL reads its figures from indexes (migration 3): after imports, merges
    and an undo they are what counting the rows gives, and what the DuckDB store says of the same files."""
    from datafactory_pipelines.restore import undo_import

    first = write_xlsx(tmp_path / "a.xlsx", ROWS)
    second = write_xlsx(tmp_path / "b.xlsx", [ROWS[0], ["张伟", "13800138000", "星海科技有限公司"],
                                             ["王芳", "13700137000", "金石集团"], ["赵强", "", "无联系方式"]])
    states = []
    for store in (open_store(url, side_dir=tmp_path / "side"), open_store(tmp_path / "leads.duckdb")):
        ids = [import_file(store, path).import_id for path in (first, second)]
        relink_and_curate(store)
        undo_import(store, ids[0], by="test")
        states.append(store.change_path_state())
    with psycopg.connect(url, autocommit=True) as con:
        counted = con.execute(
            "SELECT (SELECT count(*) FROM records WHERE retired_by IS NULL), "
            "(SELECT count(*) FROM leads WHERE status = 'active'), "
            "(SELECT max(CAST(substr(lead_id, 2) AS BIGINT)) FROM leads)").fetchone()
        merged_or_retired = con.execute("SELECT count(*) FROM leads WHERE status <> 'active'").fetchone()[0]
    on_postgres, on_duckdb = states
    assert (on_postgres["active_records"], on_postgres["active_leads"], on_postgres["max_lead_number"]) == counted
    assert merged_or_retired > 0 and on_postgres["any_linked"] == 1  # the undo retired a lead; some are linked
    assert on_postgres == on_duckdb


def test_a_full_pass_leaves_its_tables_vacuumed_and_analyzed(url: str, tmp_path: Path) -> None:
    """After a committed full pass the next change finds the rewritten tables vacuumed (hint bits and the
    visibility map set: index-only lookups) and analyzed; a change only linked incrementally does not pay for it."""
    from datafactory_pipelines.store.postgres.change_path import SETTLED_AFTER_FULL_PASS

    store = open_store(url, side_dir=tmp_path / "side")
    import_file(store, write_xlsx(tmp_path / "a.xlsx", [*ROWS, ["王芳", "13700137000", "金石集团"],
                                                        ["赵强", "13600136000", "远航物流"]]))
    assert relink_and_curate(store).path == "full"

    def vacuumed() -> dict[str, int]:
        with psycopg.connect(url, autocommit=True) as con:
            return dict(con.execute("SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                                    [list(SETTLED_AFTER_FULL_PASS)]).fetchall())

    after_full = vacuumed()
    assert set(after_full) == set(SETTLED_AFTER_FULL_PASS) and all(n >= 1 for n in after_full.values()), after_full
    import_file(store, write_xlsx(tmp_path / "b.xlsx", [ROWS[0], ["孙丽", "13500135000", "青禾食品"]]))
    assert relink_and_curate(store).path == "incremental"
    assert vacuumed() == after_full
