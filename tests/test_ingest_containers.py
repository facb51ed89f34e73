"""Files as they come: HTML tables and SpreadsheetML 2003 saved as .xls, hidden sheets, text saved as .xls."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from datafactory_pipelines.ingest import IngestError, read_file
from datafactory_pipelines.ingest.containers import sniff
from datafactory_pipelines.sample_exports import spreadsheetml, write_html_xls

LEADS = pd.DataFrame({"姓名": ["张伟", "李娜"], "手机": ["13800138000", "0571-86541234"],
                      "公司": ["星海科技（杭州）有限公司", "远航<贸易> & Co"]})


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
def test_html_table_saved_as_xls(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "OA导出.xls"
    write_html_xls(path, LEADS, encoding, title="客户台账（导出）")
    assert sniff(path) == "html"
    raw = read_file(path)
    assert raw.container == "html"
    assert raw.sheets[0].header_row == 2  # the title row above it counts, as Excel shows it
    assert raw.table["source_row"].tolist() == [3, 4]
    assert raw.table["name"].tolist() == ["张伟", "李娜"]
    assert raw.table["mobile"].tolist() == ["13800138000", "0571-86541234"]  # the leading 0 stays: no number guessing
    assert raw.table["company"].tolist() == ["星海科技（杭州）有限公司", "远航<贸易> & Co"]


def test_html_without_charset_in_gbk_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "no_meta.xls"
    path.write_bytes("<table><tr><td>联系人</td><td>电话</td></tr><tr><td>陈静</td><td>13900139000</td></tr>"
                     "</table>".encode("gbk"))
    raw = read_file(path)
    assert raw.table[["name", "mobile"]].values.tolist() == [["陈静", "13900139000"]]


def test_spreadsheetml_2003_with_a_hidden_sheet(tmp_path: Path) -> None:
    path = tmp_path / "表单.xls"
    staff = pd.DataFrame({"姓名": ["销售甲"], "手机": ["13600000000"]})
    path.write_text(spreadsheetml([("线索", LEADS, False), ("员工", staff, True)]), encoding="utf-8")
    assert sniff(path) == "spreadsheetml"
    raw = read_file(path)
    assert raw.container == "spreadsheetml"
    assert raw.hidden_sheets == ["员工"]
    assert raw.table["name"].tolist() == ["张伟", "李娜"]  # nothing of the hidden sheet
    assert raw.table["company"].tolist()[1] == "远航<贸易> & Co"


def test_spreadsheetml_skipped_cells_and_rows_keep_their_places(tmp_path: Path) -> None:
    ns = 'xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"'
    path = tmp_path / "gaps.xls"
    path.write_text(
        f'<?xml version="1.0"?><Workbook {ns}><Worksheet ss:Name="S"><Table>'
        '<Row><Cell><Data ss:Type="String">姓名</Data></Cell><Cell><Data ss:Type="String">手机</Data></Cell>'
        '<Cell><Data ss:Type="String">日期</Data></Cell></Row>'
        '<Row ss:Index="3"><Cell><Data ss:Type="String">王芳</Data></Cell>'
        '<Cell ss:Index="3"><Data ss:Type="DateTime">2026-03-05T00:00:00.000</Data></Cell></Row>'
        '<Row><Cell ss:Index="2"><Data ss:Type="Number">13800138000</Data></Cell></Row>'
        "</Table></Worksheet></Workbook>", encoding="utf-8")
    raw = read_file(path)
    file_day = dt.date.fromtimestamp(path.stat().st_mtime).isoformat()  # the undated row takes the file's date
    assert raw.table[["source_row", "name", "mobile", "collected_at"]].values.tolist() == [
        [3, "王芳", "", "2026-03-05"], [4, "", "13800138000", file_day]]


def test_spreadsheetml_with_entities_is_refused_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xls"
    path.write_text('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
                    '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet><Table><Row><Cell>'
                    '<Data>&lol2;</Data></Cell></Row></Table></Worksheet></Workbook>', encoding="utf-8")
    with pytest.raises(IngestError, match="bomb.xls"):
        read_file(path)


def test_hidden_xlsx_sheet_is_skipped_and_reported(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    leads = book.active
    leads.title = "线索"
    leads.append(["姓名", "手机"])
    leads.append(["张伟", "13800138000"])
    staff = book.create_sheet("员工")
    staff.append(["姓名", "手机"])
    staff.append(["销售甲", "13600000000"])
    staff.sheet_state = "hidden"
    book.save(tmp_path / "crm.xlsx")
    raw = read_file(tmp_path / "crm.xlsx")
    assert raw.hidden_sheets == ["员工"]
    assert raw.table["name"].tolist() == ["张伟"]


def test_tab_separated_text_saved_as_xls(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_bytes("姓名\t手机\n刘洋\t13700137000\n".encode("gbk"))
    assert sniff(path) == "text"
    assert read_file(path).table[["name", "mobile"]].values.tolist() == [["刘洋", "13700137000"]]


def test_a_file_that_is_nothing_readable_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "junk.xls"
    path.write_bytes(b"\x01\x02\x03 not a spreadsheet")
    with pytest.raises(IngestError, match="junk.xls"):
        read_file(path)
