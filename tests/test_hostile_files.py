"""Hostile files harm nothing: zip bombs and DTDs are refused before any reader unpacks them, exports carry
no formulas, standardized values carry no control or bidi characters."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from datafactory_pipelines.exporting import write_table
from datafactory_pipelines.ingest import IngestError, read_file
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.store import open_store
from tests.conftest import write_csv, write_xlsx
from tests.hostile import write_cell_bomb, write_entity_xlsx

CLI = str(Path(sys.executable).with_name("datafactory"))


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 GB single-cell zip bomb, built once for this module: a few MB on disk."""
    return write_cell_bomb(tmp_path_factory.mktemp("bomb") / "线索.xlsx", 2 << 30)


def test_a_2gb_single_cell_zip_bomb_is_refused_unread(bomb: Path) -> None:
    assert bomb.stat().st_size < 20 << 20
    with pytest.raises(IngestError) as refused:
        read_file(bomb)
    reason = refused.value.describe()
    assert "xl/sharedStrings.xml" in reason and "2,048.0 MB" in reason and "DATAFACTORY_XLSX_MAX_PART_BYTES" in reason


def test_the_bomb_stays_within_a_memory_cap(bomb: Path) -> None:
    """Under a 3 GB address-space cap the bomb is refused with a reason (before: a Rust out-of-memory abort)."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "from datafactory_pipelines.ingest import IngestError, read_file\n"
            "try:\n    read_file(sys.argv[1])\nexcept IngestError as err:\n    print('refused:', err.reason)\n")
    done = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("refused:") and "sharedStrings" in done.stdout


def test_one_cell_above_the_cell_limit_is_refused(tmp_path: Path) -> None:
    bomb = write_cell_bomb(tmp_path / "long_cell.xlsx", 1 << 20)  # 1 MiB: under the part limit
    with pytest.raises(IngestError) as refused:
        read_file(bomb)
    assert "in one cell" in refused.value.describe() and "DATAFACTORY_XLSX_MAX_CELL_BYTES" in refused.value.describe()


def test_limits_are_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ordinary = write_xlsx(tmp_path / "ordinary.xlsx", [["姓名", "手机"], ["王芳", "13700137000"]])
    assert read_file(ordinary).rows_read == 1
    monkeypatch.setenv("DATAFACTORY_XLSX_MAX_PART_BYTES", "200")
    with pytest.raises(IngestError, match="above the limit of 200 bytes"):
        read_file(ordinary)
    monkeypatch.delenv("DATAFACTORY_XLSX_MAX_PART_BYTES")
    monkeypatch.setenv("DATAFACTORY_XLSX_MAX_CELL_BYTES", str(4 << 20))
    assert read_file(write_cell_bomb(tmp_path / "long.xlsx", 1 << 20)).rows_read == 1


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE sst [<!ENTITY x SYSTEM "file:///etc/passwd">]>',  # XXE
    '<!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY x "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',  # billion laughs
])
def test_xxe_and_billion_laughs_are_refused(tmp_path: Path, doctype: str) -> None:
    with pytest.raises(IngestError) as refused:
        read_file(write_entity_xlsx(tmp_path / "entities.xlsx", doctype))
    assert "declares a DTD" in refused.value.describe()
    assert "root:" not in refused.value.describe()


def test_exports_carry_no_formulas(tmp_path: Path, datafactory_home: Path) -> None:
    """CSV cells that start like a formula get a leading apostrophe; .xlsx cells keep the text as text."""
    store = open_store(datafactory_home / "leads.duckdb")
    payload = '=HYPERLINK("http://evil.example","点我")'
    write_xlsx(tmp_path / "a.xlsx", [["姓名", "手机", "公司", "职位"],
                                     ["王芳", "13700137000", payload, "@SUM(1+1)"],
                                     ["李娜", "13900139000", "+cmd|' /C calc'!A0", "-2+3"]])
    assert import_file(store, tmp_path / "a.xlsx").status == "imported"
    relink_and_curate(store)
    leads = store.leads().set_index("name")
    assert leads.loc["王芳", "company"].startswith("=")  # the store keeps what was typed
    out = tmp_path / "leads.csv"
    done = subprocess.run([CLI, "export", "leads", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DATAFACTORY_HOME": str(datafactory_home)})
    assert done.returncode == 0, done.stderr
    cells = [c for row in csv.reader(out.read_text("utf-8-sig").splitlines()) for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))]
    assert len([c for c in cells if c.startswith("'")]) >= 4
    exported = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig").set_index("name")
    assert exported.loc["王芳", "company"] == "'" + leads.loc["王芳", "company"]
    assert exported.loc["王芳", "title"] == "'@SUM(1+1)"

    xlsx = write_table(store.leads(), tmp_path / "leads.xlsx")
    sheet = openpyxl.load_workbook(xlsx).active
    formula_like = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, str) and c.value[:1] in "=+-@"]
    assert len(formula_like) >= 4
    assert all(c.data_type == "s" and c.quotePrefix for c in formula_like)
    assert leads.loc["王芳", "company"] in {c.value for c in formula_like}  # the text itself, unchanged


def test_workbooks_write_text_cells_through_the_export_writer() -> None:
    import datafactory_pipelines.workbooks as workbooks
    from datafactory_pipelines import exporting

    assert workbooks.write_text_cell is exporting.write_text_cell


def test_standardized_values_drop_control_and_bidi_characters(tmp_path: Path, store) -> None:
    write_csv(tmp_path / "hostile.csv", [
        ["姓名", "手机", "邮箱", "公司", "职位"],
        ["张伟\x07", "13800138000", "", "星海\x1b科技", "销售\u202e经理"],
        ["\u202e王芳", "1390013\x079000", "", "", ""],
        ["李\u200b娜", "13600136000", "l\u202en@163.com", "", ""],
    ])
    assert import_file(store, tmp_path / "hostile.csv").status == "imported"
    relink_and_curate(store)
    leads = store.leads().set_index("mobile")
    assert sorted(leads["name"]) == ["张伟", "李娜", "王芳"]
    assert leads.loc["13900139000", "name"] == "王芳"
    assert leads.loc["13800138000", "company"] == "星海科技" and leads.loc["13800138000", "title"] == "销售经理"
    assert leads.loc["13600136000", "email"] == "ln@163.com"
    every_value = "".join(str(v) for v in leads.to_numpy().ravel())
    assert not any(ch in every_value for ch in "\x07\x1b\u202e\u200b")
    kept = store.lead_records(leads.loc["13900139000", "lead_id"])
    assert list(kept["name_raw"]) == ["\u202e王芳"]  # the raw value keeps what was typed
