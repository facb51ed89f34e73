"""Reading the layout people give a workbook, and who is who in a row (issue 18: layout, whose name, our
columns, look before you import). Every file is a real .xlsx / .csv written cell by cell, merges included."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import dagster as dg
import openpyxl
import pandas as pd
import pytest

from datafactory_pipelines.config import Paths
from datafactory_pipelines.ingest import read_file
from datafactory_pipelines.ingest.preview import preview_file
from datafactory_pipelines.ingest.readers import _xlsx_tables_fast
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_exports import pairwise_scores
from datafactory_pipelines.sample_exports_layout import write_layout_files
from tests.conftest import write_csv, write_xlsx
from tests.test_cli import CLI


def _template(path: Path) -> Path:
    """Instructions with an example table, then the data (company merged down, subtotals, a total, a
    footnote), then a summary, a pivot and our staff's phone list."""
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "填写说明"
    for line in ["填写说明：", "1. 每行填写一位客户，手机为必填项。", "2. 公司名称请写全称。", "示例："]:
        notes.append([line])
    notes.append(["联系人", "手机", "邮箱", "公司"])
    notes.append(["张三", "13800138000", "zhangsan@example.com", "XX科技有限公司"])
    notes.append(["李四", "13912345678", "lisi@example.com", "某某贸易公司"])
    data = book.create_sheet("客户")
    data.append(["序号", "公司", "联系人", "手机", "负责人"])
    data.append([1, "杭州星海科技有限公司", "王伟", "13811112222", "刘洋"])
    data.append([2, None, "陈静", "13933334444", "刘洋"])
    data.append([3, None, "赵磊", "13655556666", "孙丽"])
    data.merge_cells("B2:B4")
    data.append(["小计", None, "3人", None, None])
    data.append([4, "北京远航贸易有限公司", "周杰", "13777778888", "孙丽"])
    data.append([5, None, "吴敏", "13566667777", "孙丽"])
    data.merge_cells("B6:B7")
    data.append(["合计", None, "5人", None, None])
    data.append([])
    data.append(["注：本表导出自CRM系统，仅供内部使用。"])
    summary = book.create_sheet("汇总")
    summary.append(["负责人", "线索数", "成交"])
    summary.append(["刘洋", 2, 1])
    summary.append(["孙丽", 3, 0])
    summary.append(["总计", 5, 1])
    pivot = book.create_sheet("透视")
    pivot.append(["行标签", "计数项:手机"])
    pivot.append(["刘洋", 2])
    pivot.append(["孙丽", 3])
    staff = book.create_sheet("员工")  # our own people and their phones: the owners of 客户
    staff.append(["姓名", "手机"])
    staff.append(["刘洋", "13605710001"])
    staff.append(["孙丽", "13605710002"])
    book.save(path)
    return path


def test_instructions_summary_pivot_and_staff_sheets_are_skipped_with_the_reason(tmp_path: Path) -> None:
    raw = read_file(_template(tmp_path / "模板.xlsx"), pinned={})
    assert raw.table["sheet"].unique().tolist() == ["客户"]
    assert "张三" not in raw.table["name"].tolist()
    assert set(raw.skipped_reasons) == {"填写说明", "汇总", "透视", "员工"}
    assert "our own staff: 2 of its 2 names are the owners of sheet '客户'" in raw.skipped_reasons["员工"]
    assert "example" in raw.skipped_reasons["填写说明"] and "张三" in raw.skipped_reasons["填写说明"]
    assert raw.skipped_reasons["汇总"].startswith("not a lead list: a summary")
    assert raw.skipped_reasons["透视"].startswith("not a lead list: a pivot table")


def test_merged_company_cell_gives_its_value_to_every_row_it_covers(tmp_path: Path) -> None:
    raw = read_file(_template(tmp_path / "模板.xlsx"), pinned={})
    companies = dict(zip(raw.table["name"], raw.table["company"], strict=True))
    assert companies == {"王伟": "杭州星海科技有限公司", "陈静": "杭州星海科技有限公司", "赵磊": "杭州星海科技有限公司",
                         "周杰": "北京远航贸易有限公司", "吴敏": "北京远航贸易有限公司"}
    sheet = raw.sheets[0]
    assert sheet.merged_cells == 3 and any("merged" in n for n in sheet.notes)


def test_a_workbook_without_merges_keeps_the_fast_reader(tmp_path: Path) -> None:
    """The Arrow reader is several times faster; only a workbook with merged cells needs cell positions."""
    plain = write_xlsx(tmp_path / "plain.xlsx", [["姓名", "手机"], ["王伟", "13811112222"]])
    assert _xlsx_tables_fast(plain) is not None
    assert _xlsx_tables_fast(_template(tmp_path / "模板.xlsx")) is None


def test_total_and_note_rows_are_skipped_with_a_note_not_quarantined(tmp_path: Path, store) -> None:
    path = _template(tmp_path / "模板.xlsx")
    raw = read_file(path, pinned={})
    assert raw.table["source_row"].tolist() == [2, 3, 4, 6, 7]  # 小计 row 5, 合计 row 8, the note row 10
    sheet = raw.sheets[0]
    assert sheet.skipped_rows == {"a total or subtotal": 2, "a line of text under or between the rows, not a person": 1}
    assert any("row 5, 8" in n for n in sheet.notes)
    outcome = import_file(store, path)
    assert (outcome.status, outcome.rows_read, outcome.rows_unreachable) == ("imported", 5, 0)
    sheets = json.loads(store.import_row(outcome.import_id)["sheets"])
    skipped = {s["name"]: s["skipped"] for s in sheets if s.get("skipped")}
    assert set(skipped) == {"填写说明", "汇总", "透视", "员工"}


def _referral(path: Path, referrer_header: str, lead_header: str, lead_first: bool) -> Path:
    """A referral list: 6 old customers each refer 3-4 friends; the friends' phones are their own."""
    referrers = ["刘德明", "陈美玲", "黄志强", "林小红", "郑国庆", "何丽娟"]
    friends = ["王伟", "李娜", "张敏", "刘洋", "陈杰", "杨帆", "赵磊", "黄静", "周涛", "吴霞", "徐明", "孙颖",
               "马超", "朱婷", "胡斌", "郭峰", "何欣", "高翔", "罗琳", "梁浩"]
    rows = []
    for i, friend in enumerate(friends):
        pair = [friend, referrers[i % len(referrers)]] if lead_first else [referrers[i % len(referrers)], friend]
        rows.append([*pair, f"1391234{i:04d}", "杭州星海科技有限公司"])
    header = [lead_header, referrer_header] if lead_first else [referrer_header, lead_header]
    return write_xlsx(path, [[*header, "电话", "单位"], *rows])


@pytest.mark.parametrize(("referrer_header", "lead_header", "lead_first"), [
    ("老客户", "意向人", False),  # both headers unknown, the referrer first
    ("老客户", "意向人", True),
    ("客户", "朋友", True),  # the referrer's header is a word known for the lead's name: content still decides
    ("客户", "朋友", False),
])
def test_the_lead_name_is_the_one_that_goes_with_the_contacts(tmp_path: Path, referrer_header: str,
                                                              lead_header: str, lead_first: bool) -> None:
    raw = read_file(_referral(tmp_path / "转介绍.xlsx", referrer_header, lead_header, lead_first), pinned={})
    assert raw.table["name"].iloc[0] == "王伟" and raw.table["name"].nunique() == 20
    extra = json.loads(raw.table["extra"].iloc[0])
    assert extra == {referrer_header: "刘德明"}  # the referrer is kept, not lost, not the lead
    roles = {c["column"]: c for c in raw.sheets[0].columns}
    assert roles[lead_header]["role"] == "name" and "goes with the row's contacts" in roles[lead_header]["evidence"]
    assert roles[referrer_header]["role"] == "extra"


def test_an_owner_under_an_unknown_header_in_a_visit_log(tmp_path: Path) -> None:
    """One person on several rows (visits): the lead's name repeats too, but with its own phone; the
    salesperson's name (经办, a word the product does not know) repeats with everybody's phones."""
    people = [("王伟", "13811110001"), ("李娜", "13811110002"), ("张敏", "13811110003"), ("刘洋", "13811110004"),
              ("陈杰", "13811110005"), ("杨帆", "13811110006")]
    rows = [[name, phone, f"2026-0{1 + v}-1{v}", ["赵磊", "孙丽"][(i + v) % 2]]
            for i, (name, phone) in enumerate(people) for v in range(4)]
    raw = read_file(write_xlsx(tmp_path / "拜访.xlsx", [["客户", "电话", "拜访日期", "经办"], *rows]), pinned={})
    roles = {c["column"]: c["role"] for c in raw.sheets[0].columns}
    assert roles["客户"] == "name" and roles["经办"] == "owner"
    assert raw.table["owner"].iloc[0] == "赵磊"


def test_our_branch_column_never_becomes_the_client_company(tmp_path: Path, store) -> None:
    """分公司 (ours) beside 客户单位 (theirs): two different 王伟 at 重庆分公司 stay two people; a file whose
    only 机构 column holds our branches gives no company at all."""
    ledger = write_xlsx(tmp_path / "分公司台账.xlsx", [
        ["分公司", "客户单位", "姓名", "手机", "销售", "部门"],
        ["重庆分公司", "杭州星海科技有限公司", "王伟", "13811112222", "刘洋", "销售一部"],
        ["重庆分公司", "北京远航贸易有限公司", "王伟", "13933334444", "刘洋", "销售二部"],
        ["成都分公司", "上海博瑞软件有限公司", "李娜", "13655556666", "孙丽", "销售一部"],
    ])
    agency = write_csv(tmp_path / "机构客户.csv", [
        ["所属机构", "联系人", "电话"],
        ["重庆分公司", "王伟", "13700001111"], ["重庆分公司", "王伟", "13700002222"], ["成都分公司", "李娜", "13700003333"],
    ])
    raw = read_file(ledger, pinned={})
    assert raw.table["company"].tolist() == ["杭州星海科技有限公司", "北京远航贸易有限公司", "上海博瑞软件有限公司"]
    assert json.loads(raw.table["extra"].iloc[0]) == {"分公司": "重庆分公司", "部门": "销售一部"}
    assert raw.table["owner"].tolist() == ["刘洋", "刘洋", "孙丽"]
    assert read_file(agency, pinned={}).table["company"].tolist() == ["", "", ""]
    for path in (ledger, agency):
        assert import_file(store, path).status == "imported"
    relink_and_curate(store)
    leads = store.leads()
    assert (leads["name"] == "王伟").sum() == 4  # four different phones, four people: the branch joins nobody
    assert not leads["company"].isin(["重庆分公司", "成都分公司"]).any()


def test_dry_run_shows_each_sheet_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"  # does not exist: a dry run must not create it
    path = _template(tmp_path / "模板.xlsx")
    before = path.read_bytes()
    env = {**os.environ, "DATAFACTORY_HOME": str(home)}
    done = subprocess.run([CLI, "import", str(path), "--dry-run", "--map", "序号=extra"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert not home.exists() and path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    assert "sheet '客户' (header row 1): 5 rows read, 5 reachable, 0 quarantined" in out
    assert "2 a total or subtotal" in out and "contacts from cells outside their column: 0" in out
    assert "sheet '填写说明': not read as leads, not a lead list: an example table" in out
    assert "sheet '汇总': not read as leads" in out and "sheet '透视': not read as leads" in out
    assert "sheet '员工': not read as leads, not a lead list: our own staff" in out
    assert "联系人" in out and "-> name" in out and "header: name; content: name 100%" in out  # role + evidence
    assert "138****2222" in out and "13811112222" not in out  # the first rows as read, masked
    assert "王*" in out and "王伟" not in out


def test_preview_of_a_file_the_import_would_reject(tmp_path: Path) -> None:
    preview = preview_file(write_xlsx(tmp_path / "无联系方式.xlsx", [["姓名", "公司"], ["王伟", "星海科技"]]), pinned={})
    assert preview.error and "no contact column" in preview.error
    assert "WOULD BE REJECTED" in preview.lines()[0]


def test_dagster_import_shows_the_same_look_and_the_skipped_sheets(datafactory_home: Path,
                                                                    instance: dg.DagsterInstance) -> None:
    from tests.test_end_to_end_dagster import _evaluate_sensor, _run

    paths = Paths.from_env().ensure()
    _template(paths.inbox / "模板.xlsx")
    runs = [_run(instance, r) for r in _evaluate_sensor(instance).run_requests]
    assert [r.success for r in runs] == [True]
    meta = instance.get_latest_materialization_event(dg.AssetKey("raw_imports")).asset_materialization.metadata
    assert "an example table" in meta["sheets_skipped"].value and "透视" in meta["sheets_skipped"].value
    look = meta["look_before_import"].value
    assert "5 rows, 5 reachable" in look and "138****2222" in look and "13811112222" not in look


def test_layout_families_score_and_no_lead_comes_from_a_row_that_is_not_a_person(tmp_path: Path, store) -> None:
    sample = write_layout_files(tmp_path / "files", people=60, seed=5)
    for path in sample.files:
        assert import_file(store, path).status == "imported"
    relink_and_curate(store)
    links = store.links().rename(columns={"source_file": "file"})
    joined = sample.truth.merge(links, on=["file", "sheet", "source_row"], how="left")
    assert joined["lead_id"].notna().mean() > 0.97
    stray = links.merge(sample.truth, on=["file", "sheet", "source_row"], how="left", indicator=True)
    assert (stray["_merge"] == "left_only").sum() == 0  # no example, total, note or summary row read as a person
    scores = pairwise_scores(joined, joined["lead_id"])
    assert scores["precision"] >= 0.95 and scores["recall"] >= 0.9, scores
    assert pd.Series(sample.truth["file"]).nunique() == len(sample.files)


def test_spreadsheetml_merged_down_cells_fill_every_row(tmp_path: Path) -> None:
    """OA systems save SpreadsheetML 2003 as .xls: ss:MergeDown covers the rows below, which omit the cell."""
    path = tmp_path / "OA导出.xls"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">
<Worksheet ss:Name="客户"><Table>
<Row><Cell><Data ss:Type="String">单位</Data></Cell><Cell><Data ss:Type="String">联系人</Data></Cell>
<Cell><Data ss:Type="String">手机</Data></Cell></Row>
<Row><Cell ss:MergeDown="1"><Data ss:Type="String">杭州星海科技有限公司</Data></Cell>
<Cell><Data ss:Type="String">王伟</Data></Cell><Cell><Data ss:Type="String">13811112222</Data></Cell></Row>
<Row><Cell ss:Index="2"><Data ss:Type="String">陈静</Data></Cell><Cell><Data ss:Type="String">13933334444</Data></Cell></Row>
</Table></Worksheet></Workbook>""", encoding="utf-8")
    raw = read_file(path, pinned={})
    assert raw.table["company"].tolist() == ["杭州星海科技有限公司", "杭州星海科技有限公司"]
    assert raw.sheets[0].merged_cells == 1


def test_html_table_saved_as_xls_rowspan_fills_every_row(tmp_path: Path) -> None:
    path = tmp_path / "后台导出.xls"
    path.write_text('<html><head><meta charset="utf-8"></head><body><table><tr><td>单位</td><td>联系人</td>'
                    '<td>手机</td></tr><tr><td rowspan="2">杭州星海科技有限公司</td><td>王伟</td><td>13811112222</td>'
                    '</tr><tr><td>陈静</td><td>13933334444</td></tr></table></body></html>', encoding="utf-8")
    assert read_file(path, pinned={}).table["company"].tolist() == ["杭州星海科技有限公司"] * 2


def test_people_named_like_placeholders_with_real_numbers_are_imported(tmp_path: Path, store) -> None:
    """赵六 and 钱七 are people's names too: a list whose only sheet holds them with real-looking numbers is a
    lead list (a row that reaches someone is not thrown away on its name); 张三 with 13800138000 beside a
    real list is the example it looks like."""
    alone = write_xlsx(tmp_path / "名单.xlsx", [["姓名", "手机"], ["赵六", "13500135000"], ["钱七", "13400134000"]])
    outcome = import_file(store, alone)
    assert outcome.status == "imported" and outcome.rows_read == 2
    workbook = openpyxl.Workbook()
    example = workbook.active
    example.title = "填写示例"
    for row in (["姓名", "手机"], ["张三", "13800138000"], ["李四", "138xxxx0000"]):
        example.append(row)
    data = workbook.create_sheet("线索")
    for row in (["姓名", "手机"], ["孙丽", "13300133000"]):
        data.append(row)
    workbook.save(tmp_path / "带示例.xlsx")
    read = read_file(tmp_path / "带示例.xlsx")
    assert "填写示例" in read.skipped_sheets and "example" in read.skipped_reasons["填写示例"]
    assert "线索" not in read.skipped_sheets


def test_a_long_page_of_instructions_above_the_table_does_not_hide_its_header(tmp_path: Path) -> None:
    """Forty rows of notes above the header (more than the first rows a reader looks at): the header is
    found above the first row of data, and every person below it is read."""
    from datafactory_pipelines.ingest import read_file

    notes = [[f"第{i + 1}条：请按模板填写，手机号必须为11位，不要合并单元格。"] for i in range(40)]
    rows = [*notes, ["姓名", "手机", "公司"], ["张伟", "13800138000", "星海科技"], ["李娜", "13900139000", "云帆贸易"]]
    raw = read_file(write_xlsx(tmp_path / "说明很长的模板.xlsx", rows))
    sheet = raw.sheets[0]
    assert sheet.header_row == 41
    assert list(raw.table["mobile"]) == ["13800138000", "13900139000"]
    assert list(raw.table["name"]) == ["张伟", "李娜"]
