from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import dagster as dg
import openpyxl
import pandas as pd
import pytest
from hypothesis import settings

from datafactory_pipelines.config import Paths
from tests.backends import PG_ADMIN_ENV, database_names, drop_databases, location_in, make_template, store_in
from tests.postgres_server import THROWAWAY_SETTINGS, postgres_bin, postgres_server
from tests.shards import deal, parse_shard, part_of


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "线索") -> Path:
    """A real workbook written cell by cell, as an operator's export would be."""
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    for cells in ws.iter_rows():
        for cell in cells:  # text typed into a cell stays text, even when it starts with "="
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
    workbook.save(path)
    return path


def write_csv(path: Path, rows: list[list[object]], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows[1:], columns=rows[0]).to_csv(path, index=False, encoding=encoding)
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", choices=["duckdb", "postgres", "both"],
                     default=os.environ.get("DATAFACTORY_TEST_BACKEND", "both"),
                     help="the lead store backends the two-backend tests run on (tests/backends.py)")
    parser.addoption("--shard", default=None, metavar="K/N",
                     help="run the K-th of N shards of about equal time (tests/shards.py; tests/run.py runs all N)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend")
        backends = ["duckdb", "postgres"] if chosen == "both" else [chosen]
        metafunc.parametrize("backend", backends, indirect=True)


#: test modules that start or use a real PostgreSQL of their own (besides the two-backend modules' [postgres])
POSTGRES_MODULES = {"test_change_path_sql", "test_dagster_postgres", "test_parallel_runs", "test_postgres_concurrency",
                    "test_postgres_faults", "test_postgres_history", "test_postgres_roles", "test_postgres_store",
                    "test_read_contract", "test_survivorship_sql"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL `postgres`; with --shard K/N keep the K-th shard's tests alone."""
    parts = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("backend") == "postgres"
        if on_postgres or item.module.__name__.rsplit(".", 1)[-1] in POSTGRES_MODULES:
            item.add_marker(pytest.mark.postgres)
            on_postgres = True
        parts[item] = part_of(item.path.name, on_postgres)
    if config.getoption("shard"):
        shard, shards = parse_shard(config.getoption("shard"))
        placed = deal(Counter(parts.values()), shards)
        kept = [item for item in items if placed[parts[item]] == shard]
        config.hook.pytest_deselected(items=[item for item in items if placed[parts[item]] != shard])
        items[:] = kept


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory):
    """One real PostgreSQL 15 for the session (initdb + pg_ctl in a temporary folder; tests/postgres_server.py)."""
    if postgres_bin() is None:
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL binaries are missing; .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL binaries are not installed (apt-get install postgresql); --backend duckdb skips "
                    "this message")
    with postgres_server(settings=THROWAWAY_SETTINGS) as url:
        make_template(url, tmp_path_factory.mktemp("pg-template"))
        yield url


@pytest.fixture(autouse=True)
def _pg_databases_dropped_after_the_test(request: pytest.FixtureRequest):
    """A test's databases on the session's PostgreSQL are dropped when it ends: nothing uses them again, and a
    server that kept every test's copies grew to gigabytes that its teardown then spent minutes deleting."""
    callspec = getattr(request.node, "callspec", None)
    on_postgres = callspec is not None and callspec.params.get("backend") == "postgres"
    if not on_postgres and "pg_admin_url" not in request.fixturenames:
        yield
        return
    admin = request.getfixturevalue("pg_admin_url")
    before = database_names(admin)
    yield
    drop_databases(admin, database_names(admin) - before)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The lead store backend this test runs on (parametrized by pytest_generate_tests)."""
    name = getattr(request, "param", "duckdb")
    if name == "postgres":
        monkeypatch.setenv(PG_ADMIN_ENV, request.getfixturevalue("pg_admin_url"))
        monkeypatch.setenv("DATAFACTORY_DB_URL", str(location_in(tmp_path / "home")))
        # in this process each home has its own database, as each home has its own DuckDB file
        monkeypatch.setattr(Paths, "store", property(lambda paths: location_in(paths.home)))
    yield name
    if name == "postgres":  # this test's databases are not used again: their writer-lock sessions close
        import gc

        from datafactory_pipelines.store.postgres.advisory_lock import AdvisoryLock

        AdvisoryLock.close_all()
        gc.collect()  # the test's store objects, and their pooled sessions with them


@pytest.fixture
def store(tmp_path: Path, backend: str):
    return store_in(tmp_path)


@pytest.fixture
def instance(tmp_path: Path):
    """A real Dagster instance on disk (runs, event logs and schedules in SQLite under tmp_path)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as inst:
        yield inst


@pytest.fixture
def datafactory_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DATAFACTORY_HOME", str(home))
    monkeypatch.setenv("DATAFACTORY_INBOX_SETTLE_SECONDS", "0")
    return home


def pairwise_f1(truth: pd.Series, predicted: pd.Series) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1, computed the way the shared benchmark's score.py does."""
    frame = pd.DataFrame({"t": truth.to_numpy(), "p": predicted.to_numpy()})

    def pairs(sizes: pd.Series) -> int:
        n = sizes.to_numpy().astype("int64")
        return int((n * (n - 1) // 2).sum())

    tp = pairs(frame.groupby(["t", "p"]).size())
    pp = pairs(frame.groupby("p").size())
    ap = pairs(frame.groupby("t").size())
    precision = tp / pp if pp else 1.0
    recall = tp / ap if ap else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

# CI replays the same examples every run (no flaky red from a new random draw); a developer's run
# explores new ones: HYPOTHESIS_PROFILE=ci in .ci/run.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
