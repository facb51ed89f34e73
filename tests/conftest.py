from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import openpyxl
import pandas as pd
import pytest
from hypothesis import settings

from datafactory_pipelines.store import open_store


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


@pytest.fixture
def store(tmp_path: Path):
    return open_store(tmp_path / "leads.duckdb")


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
