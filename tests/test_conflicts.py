"""Conflicts decided in batches through an Excel round trip, one-to-one edits, and who did what."""

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from datafactory_pipelines.decisions import DecisionError, decide_group, edit_leads
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.workbooks import GROUP_SHEET, ITEM_SHEET, export_conflicts, read_edits
from tests.backends import both_backends
from tests.conftest import write_xlsx
from tests.test_cli import run_cli

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "来源", "登记日期"]


def _two_imports(store, tmp_path: Path) -> None:
    import_file(store, write_xlsx(tmp_path / "2025.xlsx", [
        HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售经理", "展会2025", "2025-01-01"],
        ["李娜", "13900139000", "ln@163.com", "云帆贸易", "工程师", "展会2025", "2025-01-01"],
        ["赵敏", "13500135000", "zm@126.com", "=HYPERLINK(\"http://x\")", "采购经理", "展会2025", "2025-01-01"],
    ]))
    relink_and_curate(store)
    import_file(store, write_xlsx(tmp_path / "2026.xlsx", [
        HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售总监", "展会2026", "2026-03-01"],
        ["李娜", "13900139000", "ln@163.com", "云帆贸易", "技术总监", "展会2026", "2026-03-01"],
        ["赵敏", "13500135000", "zm@126.com", "=cmd|' /C calc'!A0", "采购经理", "展会2026", "2026-03-01"],
    ]))
    relink_and_curate(store)


def test_job_changes_become_one_group_and_leads_keep_their_value(store, tmp_path: Path) -> None:
    _two_imports(store, tmp_path)
    conflicts = store.conflicts()
    titles = conflicts[conflicts["field"] == "title"]
    assert len(titles) == 2 and titles["group_id"].nunique() == 1
    assert set(titles["source"]) == {"展会2026"}
    leads = store.leads().set_index("name")
    assert leads.loc["王芳", "title"] == "销售经理"  # held until an operator decides
    relink_and_curate(store)
    assert len(store.conflicts()) == len(conflicts)  # not raised twice


def test_workbook_round_trip_applies_every_decision_in_one_go(store, tmp_path: Path) -> None:
    _two_imports(store, tmp_path)
    path, count = export_conflicts(store, tmp_path / "decide.xlsx")
    assert count == len(store.conflicts())
    workbook = openpyxl.load_workbook(path)
    groups, items = workbook[GROUP_SHEET], workbook[ITEM_SHEET]
    assert groups.freeze_panes == "A2" and groups["H1"].value == "决定"
    assert any("保留现有" in v.formula1 for v in groups.data_validations.dataValidation)
    # formula injection: the company cells are text, never formulas
    company_cells = [c for row in items.iter_rows(min_row=2) for c in row if str(c.value).startswith("=")]
    assert company_cells and all(c.data_type == "s" for c in company_cells)
    # the operator takes the new titles for the whole group, and keeps the current company for 赵敏
    for row in groups.iter_rows(min_row=2):
        row[7].value = "采用新值" if row[1].value == "职位" else "保留现有"
    workbook.save(path)
    from datafactory_pipelines.decisions import decide
    from datafactory_pipelines.workbooks import read_decisions

    decisions, expected = read_decisions(path)
    assert decide(store, decisions, by="operator-li", expected_updated_at=expected) == count
    leads = store.leads().set_index("name")
    assert leads.loc["王芳", "title"] == "销售总监" and leads.loc["李娜", "title"] == "技术总监"
    assert store.conflicts().empty
    decided = store.conflicts(status=None)
    assert set(decided["decided_by"]) == {"operator-li"}
    relink_and_curate(store)  # decisions survive a relink
    assert store.leads().set_index("name").loc["王芳", "title"] == "销售总监"

    # the same workbook again is stale: its conflicts were decided
    with pytest.raises(DecisionError, match="already decided"):
        decide(store, decisions, by="operator-li", expected_updated_at=expected)


def test_workbook_is_refused_when_the_lead_changed_after_export(store, tmp_path: Path) -> None:
    _two_imports(store, tmp_path)
    path, _ = export_conflicts(store, tmp_path / "decide.xlsx")
    lead = store.leads().set_index("name").loc["王芳", "lead_id"]
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "email", "value": "wang.fang@qq.com"}]), by="sales-zhao")
    from datafactory_pipelines.decisions import decide
    from datafactory_pipelines.workbooks import read_decisions

    workbook = openpyxl.load_workbook(path)
    for row in workbook[GROUP_SHEET].iter_rows(min_row=2):
        row[7].value = "采用新值"
    workbook.save(path)
    decisions, expected = read_decisions(path)
    with pytest.raises(DecisionError, match=f"lead\\(s\\) {lead} changed since the workbook was exported"):
        decide(store, decisions, by="operator-li", expected_updated_at=expected)
    assert len(store.conflicts()) > 0  # nothing applied


def test_decide_a_group_from_the_cli_and_edit_one_lead(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a = write_xlsx(tmp_path / "a.xlsx", [HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售经理", "展会",
                                                  "2025-01-01"]])
    b = write_xlsx(tmp_path / "b.xlsx", [HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "市场总监", "官网",
                                                  "2026-01-01"]])
    assert run_cli(home, "import", a).returncode == 0
    assert run_cli(home, "import", b).returncode == 0
    listed = run_cli(home, "conflicts", "list")
    assert "title" in listed.stdout and "1 lead(s)" in listed.stdout
    group = listed.stdout.split()[0]
    done = run_cli(home, "conflicts", "decide", group, "--take", "incoming", "--by", "operator-li")
    assert done.returncode == 0, done.stderr
    assert run_cli(home, "export", "leads", tmp_path / "leads.csv").returncode == 0
    lead_id = pd.read_csv(tmp_path / "leads.csv")["lead_id"].iloc[0]
    bad = run_cli(home, "lead", "set", lead_id, "mobile=12345", "--by", "sales-zhao")
    assert bad.returncode == 2 and "not a valid CN mobile" in bad.stderr
    done = run_cli(home, "lead", "set", lead_id, "mobile=+86 139 0013 9000", "--by", "sales-zhao", "--note", "客户来电")
    assert done.returncode == 0, done.stderr
    shown = run_cli(home, "lead", "show", lead_id).stdout
    assert "mobile                 13900139000" in shown and "title                  市场总监" in shown
    assert "edit by sales-zhao: 客户来电" in shown and "conflict decision by operator-li" in shown
    assert "a.xlsx sheet 线索 row 2" in shown
    assert "mobile '13700137000' (valid)" in shown  # the source values stay visible, with their status


def test_edits_sheet(store, tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=50, records=80, files=1, seed=2)
    import_file(store, sample.files[0])
    relink_and_curate(store)
    leads = store.leads()
    path = write_xlsx(tmp_path / "edits.xlsx", [["线索编号", "职位", "手机"],
                                                [leads["lead_id"].iloc[0], "CTO", ""],
                                                [leads["lead_id"].iloc[1], "", "13812345678"]])
    edits = read_edits(path)
    assert edits[["field", "value"]].values.tolist() == [["title", "CTO"], ["mobile", "13812345678"]]
    assert edit_leads(store, edits, by="ops") == 2
    after = store.leads().set_index("lead_id")
    assert after.loc[leads["lead_id"].iloc[0], "title"] == "技术总监"  # standardized like an import
    assert after.loc[leads["lead_id"].iloc[1], "mobile"] == "13812345678"
    broken = write_xlsx(tmp_path / "broken.xlsx", [["线索编号", "手机"], ["L99999999", "13812345678"]])
    with pytest.raises(DecisionError, match="broken.xlsx sheet '线索' row 2 column '手机': no active lead L99999999"):
        edit_leads(store, read_edits(broken), by="ops")


def test_decide_group_unknown(store) -> None:
    with pytest.raises(DecisionError, match="no open conflicts"):
        decide_group(store, "G-nothing", "incoming", by="x")


def test_generated_imports_with_job_changes_produce_grouped_conflicts(store, tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=600, records=2000, files=4, seed=21)
    for path in sample.files:
        import_file(store, path)
        relink_and_curate(store)
    conflicts = store.conflicts()
    titles = conflicts[conflicts["field"] == "title"]
    assert len(titles) >= 5  # people changed jobs between the lists
    from datafactory_pipelines.conflicts import conflict_groups

    groups = conflict_groups(conflicts)
    assert len(groups) < len(conflicts) and groups["count"].max() >= 5  # decided per group, not per lead
    assert set(groups.columns) >= {"group_id", "field", "kind", "source", "import_id", "count"}
    assert groups["count"].sum() == len(conflicts)


def test_a_held_mobile_stays_primary_on_one_lead_only() -> None:
    """Found at 100k: a split moved the record carrying a lead's mobile to a new lead while a conflict held
    that mobile on the old lead, so two active leads had one primary mobile (the GX gate failed the run)."""
    import numpy as np

    from datafactory_pipelines.conflicts import keep_held_mobiles_primary

    golden = pd.DataFrame({"lead_id": ["L00000001", "L00000002", "L00000003"],
                           "mobile": ["15922243599", "15922243599", "13800138000"],
                           "mobile_alternates": ["", "13700137000", ""]})
    chosen = np.array(["13787524726", "15922243599", "13800138000"], dtype=object)  # before the hold
    keep_held_mobiles_primary(golden, chosen)
    assert golden["mobile"].tolist() == ["15922243599", "", "13800138000"]
    assert golden["mobile_alternates"].tolist() == ["", "15922243599;13700137000", ""]
    untouched = golden.copy()
    keep_held_mobiles_primary(golden, golden["mobile"].to_numpy())  # nothing held: nothing moves
    assert golden.equals(untouched)
