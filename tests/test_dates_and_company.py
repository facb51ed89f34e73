"""Dates: a record without its own date takes the file's date (never the import time), and the report says
so. Golden company: one display form with full-width brackets for Chinese legal names."""

from __future__ import annotations

import datetime as dt
import os
import re
import zipfile
from pathlib import Path

import openpyxl

from datafactory_pipelines.ingest import read_file
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_exports import spreadsheetml
from datafactory_pipelines.standardize.company import standardize_company
from tests.conftest import write_csv


def test_undated_xlsx_rows_take_the_workbooks_saved_date(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机", "日期"])
    sheet.append(["张伟", "13800138000", "2026-01-05"])
    sheet.append(["李娜", "13900139000", ""])
    book.save(tmp_path / "saved.xlsx")
    # as Excel leaves it: the last-saved date in docProps/core.xml (openpyxl always writes "now" on save)
    with zipfile.ZipFile(tmp_path / "saved.xlsx") as src, zipfile.ZipFile(tmp_path / "old.xlsx", "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2025-03-02T09:00:00Z", data)
            out.writestr(item, data)
    raw = read_file(tmp_path / "old.xlsx", pinned={})
    assert raw.table["collected_at"].tolist() == ["2026-01-05", "2025-03-02"]
    assert raw.sheets[0].notes == ["1 of 2 rows have no date of their own: dated 2025-03-02 from the workbook properties"]


def test_undated_csv_rows_take_the_files_modification_day(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", [["姓名", "手机"], ["张伟", "13800138000"]], encoding="gbk")
    stamp = dt.datetime(2024, 5, 6, 12, 0).timestamp()
    os.utime(path, (stamp, stamp))
    raw = read_file(path, pinned={})
    assert raw.table["collected_at"].tolist() == ["2024-05-06"]
    assert "file modification time" in raw.sheets[0].notes[0]


def test_spreadsheetml_document_properties_date_the_rows(tmp_path: Path) -> None:
    import pandas as pd

    text = spreadsheetml([("线索", pd.DataFrame({"姓名": ["王芳"], "手机": ["13700137000"]}), False)])
    text = text.replace('<Worksheet', '<DocumentProperties xmlns="urn:schemas-microsoft-com:office:office">'
                        "<LastSaved>2023-07-08T10:00:00Z</LastSaved></DocumentProperties><Worksheet", 1)
    (tmp_path / "form.xls").write_text(text, encoding="utf-8")
    assert read_file(tmp_path / "form.xls", pinned={}).table["collected_at"].tolist() == ["2023-07-08"]


def test_company_brackets_have_one_display_form_and_one_key() -> None:
    ascii_form, full_width = standardize_company("星海科技(深圳)有限公司"), standardize_company("星海科技（深圳）有限公司")
    assert ascii_form == full_width
    assert ascii_form.company == "星海科技（深圳）有限公司" and ascii_form.key == "星海科技"
    assert standardize_company("Acme (China) Co., Ltd").company == "Acme (China) Co., Ltd"  # Latin names keep theirs


def test_golden_company_is_displayed_full_width(store, tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", [["姓名", "手机", "公司"], ["张伟", "13800138000", "星海科技(深圳)有限公司"]])
    b = write_csv(tmp_path / "b.csv", [["姓名", "手机", "公司"], ["张伟", "13800138000", "星海科技（深圳）有限公司"]])
    for path in (a, b):
        import_file(store, path)
    relink_and_curate(store)
    leads = store.leads()
    assert leads["company"].tolist() == ["星海科技（深圳）有限公司"]
