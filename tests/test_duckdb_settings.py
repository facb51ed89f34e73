"""Every DuckDB database the project opens gets the memory budget and an on-disk spill folder."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from datafactory_pipelines import duckdb_settings
from datafactory_pipelines.store.duckdb import DuckDBLeadStore


def _settings(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    return con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()


def _shown(limit: str) -> str:
    """How DuckDB shows a memory_limit (e.g. 300MB -> 286.1 MiB)."""
    con = duckdb.connect(config={"memory_limit": limit})
    try:
        return _settings(con)[0]
    finally:
        con.close()


def test_memory_limit_from_the_environment_and_spill_folders(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(duckdb_settings.MEMORY_LIMIT_ENV, "300MB")
    monkeypatch.setenv(duckdb_settings.TEMP_DIRECTORY_ENV, str(tmp_path / "scratch"))
    scratch = duckdb_settings.connect()
    try:
        limit, temp = _settings(scratch)
        assert limit == _shown("300MB")
        assert Path(temp) == tmp_path / "scratch"
        # a sort of ~0.5 GB under a 300 MB budget completes: it spills there (without a folder it fails)
        assert scratch.execute("SELECT count(*) FROM (SELECT range AS x, md5(range::VARCHAR) AS h "
                           "FROM range(10000000) ORDER BY h)").fetchone()[0] == 10_000_000
    finally:
        scratch.close()

    store = DuckDBLeadStore(tmp_path / "leads.duckdb")
    con = store._connect()
    try:
        limit, temp = _settings(con)
        assert limit == _shown("300MB")
        assert Path(temp) == tmp_path / "leads.duckdb.tmp"  # beside the store, not in the current folder
    finally:
        con.close()


def test_default_budget_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(duckdb_settings.MEMORY_LIMIT_ENV, raising=False)
    con = duckdb_settings.connect()
    try:
        assert _settings(con)[0] == _shown(duckdb_settings.DEFAULT_MEMORY_LIMIT)
        assert _settings(con)[0] != _settings(duckdb.connect())[0]  # not DuckDB's own 80% of RAM
    finally:
        con.close()


def test_memory_budget_lowers_the_cap_within_a_change_and_restores_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(duckdb_settings.MEMORY_LIMIT_ENV, "300MB")
    store = DuckDBLeadStore(tmp_path / "leads.duckdb")
    with store.exclusive("test", atomic=True):
        con = store._shared
        # blocks the query leaves cached in the buffer pool
        con.execute("CREATE TABLE filler AS SELECT range AS x, md5(range::VARCHAR) AS h FROM range(2000000)")
        used = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]
        with store.memory_budget("16MB"):
            assert _settings(con)[0] == _shown("16MB")
            lowered = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]
        assert _settings(con)[0] == _shown("300MB")  # the configured cap again
        assert con.execute("SELECT count(*) FROM filler").fetchone()[0] == 2_000_000  # nothing lost
    assert lowered < used
    with store.memory_budget("16MB"):  # outside a change: no connection is kept, nothing to cap
        assert store._shared is None
