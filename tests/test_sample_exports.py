"""The export-shaped sample files and their truth, and the pairwise scorer used to measure on them."""

from __future__ import annotations

import pandas as pd
import pytest

from datafactory_pipelines.sample_exports import pairwise_scores, romanize, write_export_files


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return write_export_files(tmp_path_factory.mktemp("exports"), people=60, seed=3)


def test_files_are_the_containers_real_exports_come_in(exports):
    by_name = {p.name: p for p in exports.files}
    assert by_name["OA客户台账.xls"].read_bytes().lstrip().lower().startswith(b"<html")
    assert b"charset=GBK" in by_name["OA客户台账.xls"].read_bytes()
    assert by_name["表单线索.xls"].read_bytes().startswith(b"<?xml")
    assert b"SheetHidden" in by_name["表单线索.xls"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        by_name["转介绍名单.csv"].read_bytes().decode("utf-8")  # GBK, as Excel in China saves it
    header = pd.read_csv(by_name["转介绍名单.csv"], encoding="gb18030", nrows=0).columns.tolist()
    assert header[:2] == ["推荐人", "被推荐人"]


def test_truth_points_at_the_rows_that_hold_each_person(exports):
    crm = next(p for p in exports.files if p.name == "CRM客户导出.xlsx")
    sheet = pd.read_excel(crm, sheet_name="客户列表", dtype=str).fillna("")
    truth = exports.truth[exports.truth["file"] == crm.name]
    assert len(truth) == len(sheet)
    assert truth["source_row"].tolist() == list(range(2, 2 + len(sheet)))
    # the person's name or a form of it (salutation, homophone) is in 客户名称
    surnames = [n[0] for n in truth["name"]]
    assert sum(c.startswith(s) for c, s in zip(sheet["客户名称"], surnames, strict=True)) == len(sheet)
    assert exports.truth.groupby("person_id").size().min() >= 2


def test_romanized_forms():
    assert [romanize("张晓明", i) for i in range(5)] == [
        "Zhang Xiaoming", "Xiaoming Zhang", "ZHANG Xiaoming", "Zhang, Xiaoming", "Xiao-Ming Zhang"]


def test_pairwise_scores_by_hand():
    truth = pd.DataFrame({"person_id": [1, 1, 1, 2, 2]})
    # one true pair of person 1 found, and one false pair (1 with 2); person 2 split
    predicted = pd.Series(["A", "A", None, "B", "A"])
    scores = pairwise_scores(truth, predicted)
    assert scores["true_pairs"] == 4 and scores["predicted_pairs"] == 3
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 4)


def test_demo_imports_the_export_shaped_files_through_dagster(tmp_path) -> None:
    from tests.test_cli import run_demo

    done = run_demo(tmp_path, "--people", "40", "--records", "80", "--files", "1", "--exports", "40", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote 7 export-shaped files" in done.stdout
    assert "8 file(s) imported, 0 duplicate(s), 0 rejected" in done.stdout  # HTML and XML .xls included
