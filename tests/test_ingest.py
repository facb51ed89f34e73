import json
from pathlib import Path

import pytest

from datafactory_pipelines.ingest import IngestError, read_file
from datafactory_pipelines.ingest.headers import canonical_field
from tests.conftest import write_csv, write_xlsx


@pytest.mark.parametrize(
    ("header", "field"),
    [("姓名", "name"), ("联系人", "name"), ("Name", "name"), ("手机", "mobile"), ("联系电话", "mobile"),
     ("Mobile Phone", "mobile"), ("手机号码(必填)", "mobile"), ("电子邮箱", "email"), ("E-mail", "email"),
     ("微信号", "wechat"), ("QQ号", "qq"), ("抖音号", "douyin"), ("快手", "kuaishou"), ("公司名称", "company"),
     ("单位", "company"), ("职务", "title"), ("Job Title", "title"), ("通讯地址", "address"), ("渠道", "source"),
     ("登记日期", "collected_at"), ("备注", None), ("客户等级", None)],
)
def test_header_synonyms(header: str, field: str | None) -> None:
    assert canonical_field(header) == field


def test_xlsx_with_title_row_keeps_excel_row_numbers_and_extras(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "展会.xlsx", [
        ["2026 春季展会 线索名单"],
        [],
        ["联系人", "手机号码", "邮箱", "公司名称", "客户等级"],
        ["张伟", 13800138000, "ZW@QQ.COM", "深圳星海科技有限公司", "A"],
        [None, None, None, None, None],
        ["李娜", "139-0013-9000", "", "", "B"],
    ])
    raw = read_file(path)
    assert raw.sheets[0].header_row == 3
    assert raw.table["source_row"].tolist() == [4, 6]  # the blank row 5 is skipped, numbering kept
    assert raw.table["mobile"].tolist() == ["13800138000", "139-0013-9000"]  # numeric cell without ".0"
    assert raw.table["name"].tolist() == ["张伟", "李娜"]
    assert json.loads(raw.table["extra"].iloc[0]) == {"客户等级": "A"}
    assert raw.sheets[0].blank_rows == 1
    assert len(raw.sha256) == 64


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / f"leads_{encoding}.csv",
                     [["客户姓名", "联系电话", "单位"], ["王芳", "13700137000", "杭州云帆贸易有限公司"]], encoding)
    raw = read_file(path)
    assert raw.table.loc[0, "name"] == "王芳"
    assert raw.table.loc[0, "company"] == "杭州云帆贸易有限公司"
    assert raw.table.loc[0, "source_row"] == 2


def test_two_phone_columns_become_alternates(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "two_phones.xlsx", [["姓名", "手机", "座机"], ["赵敏", "13500135000", "010-62345678"]])
    assert read_file(path).table.loc[0, "mobile"] == "13500135000;010-62345678"


def test_several_sheets_skip_the_ones_without_leads(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    notes = workbook.active
    notes.title = "说明"
    notes.append(["本表由市场部导出，请勿修改"])
    leads = workbook.create_sheet("线索")
    leads.append(["Name", "Mobile", "Email"])
    leads.append(["Amy Chen", "13600136000", "amy@example.com"])
    workbook.save(tmp_path / "multi.xlsx")
    raw = read_file(tmp_path / "multi.xlsx")
    assert raw.table["sheet"].tolist() == ["线索"]
    assert raw.skipped_sheets == ["说明"]


def test_corrupt_workbook_is_rejected_with_file_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(IngestError, match=r"file broken\.xlsx: cannot be opened as a spreadsheet"):
        read_file(path)


def test_missing_header_says_which_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "no_header.xlsx", [["a", "b"], [1, 2]], sheet="Sheet1")
    with pytest.raises(IngestError, match=r"sheet 'Sheet1': no header row found"):
        read_file(path)


def test_header_without_contact_column_names_the_row(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "no_contact.xlsx", [["导出"], ["姓名", "公司", "职位"], ["张三", "某公司", "经理"]])
    with pytest.raises(IngestError) as err:
        read_file(path)
    assert err.value.row == 2
    assert "no contact column" in err.value.reason


def test_binary_content_in_a_csv_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\x00\x01\x02" * 10)  # GB18030 decodes almost anything; NUL bytes are not text
    with pytest.raises(IngestError, match="bad.csv"):
        read_file(path)


def test_empty_and_unsupported_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        read_file(tmp_path / "empty.csv")
    (tmp_path / "leads.pdf").write_bytes(b"%PDF")
    with pytest.raises(IngestError, match="unsupported file type"):
        read_file(tmp_path / "leads.pdf")


def test_legacy_xls(tmp_path: Path) -> None:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("leads")
    for c, text in enumerate(["姓名", "手机", "邮箱"]):
        sheet.write(0, c, text)
    sheet.write(1, 0, "周杰")
    sheet.write(1, 1, 13800138000)  # a numeric cell, as old exports store phones
    sheet.write(1, 2, "zj@163.com")
    book.save(str(tmp_path / "old.xls"))
    raw = read_file(tmp_path / "old.xls")
    assert raw.table.loc[0, ["name", "mobile", "email"]].tolist() == ["周杰", "13800138000", "zj@163.com"]


def test_pasted_lists_repeat_the_header_row(tmp_path: Path) -> None:
    header = ["姓名", "手机"]
    path = write_xlsx(tmp_path / "pasted.xlsx", [header, ["张伟", "13800138000"], header, ["李娜", "13900139000"],
                                                 ["  ", " "]])
    raw = read_file(path)
    assert raw.table["name"].tolist() == ["张伟", "李娜"]
    assert raw.table["source_row"].tolist() == [2, 4]


def test_sheet_starting_below_blank_rows_keeps_row_numbers(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws["B4"], ws["C4"] = "联系人", "手机"
    ws["B5"], ws["C5"] = "王芳", "13700137000"
    workbook.save(tmp_path / "offset.xlsx")
    raw = read_file(tmp_path / "offset.xlsx")
    assert raw.sheets[0].header_row == 4
    assert raw.table["source_row"].tolist() == [5]


def test_csv_rows_of_only_whitespace_are_blank_and_a_row_with_one_filled_cell_is_kept(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "空行.csv", [
        ["姓名", "手机", "公司", "备注"],
        ["张伟", "13800138000", "星海科技", ""],
        ["  ", "\t", "\u3000", " "],  # spaces, a tab, an ideographic space: blank
        ["", "", "", ""],
        ["", "", "", "只有备注"],  # one filled cell, in the last column: a row
        ["李娜", "13900139000", "", ""],
    ], "utf-8")
    raw = read_file(path)
    assert raw.table["source_row"].tolist() == [2, 5, 6]
    assert raw.sheets[0].blank_rows == 2
