"""Reading cells like a person (issue 18): contacts wherever they stand, codes never contacts, Traditional
Chinese, dates, our own hotline, header-less sheets, several people in one row. Real .xlsx / .csv files."""

from __future__ import annotations

import json
from pathlib import Path

from datafactory_pipelines.ingest import read_file
from datafactory_pipelines.ingest.cells import PROVENANCE_KEY, split_cells
from datafactory_pipelines.pipeline import prepare_file
from datafactory_pipelines.standardize.phone import standardize_phones
from tests.conftest import write_csv, write_xlsx

PEOPLE = ["张伟", "李娜", "王芳", "刘强", "陈静", "杨洋", "赵磊", "黄敏", "周杰", "吴丽", "徐明", "孙浩"]


def _mobile(i: int) -> str:
    return f"1390057{i:04d}"


def roles_of(raw) -> dict[str, str]:
    return {c["column"]: c["role"] for c in raw.column_report()}


def test_a_name_cell_holding_the_phone_gives_both(tmp_path: Path) -> None:
    forms = ["联系人: {n}/{m}", "{n} {m}", "{n}，{m}", "{n} {m}"]
    rows = [["联系人", "公司"]] + [[forms[i % 4].format(n=p, m=_mobile(i)), "星海科技有限公司"]
                                  for i, p in enumerate(PEOPLE)]
    records = prepare_file(write_xlsx(tmp_path / "x.xlsx", rows)).records
    assert records["name"].tolist() == PEOPLE
    assert records["mobile"].tolist() == [_mobile(i) for i in range(len(PEOPLE))]
    assert records["reachable"].all()
    raw = read_file(tmp_path / "x.xlsx", pinned={})
    assert raw.sheets[0].cells["contacts_outside_column"] == len(PEOPLE)
    assert json.loads(raw.table["extra"].iloc[0])[PROVENANCE_KEY] == "联系人"


def test_a_title_in_brackets_is_the_title_and_a_registration_cell_is_split() -> None:
    parts = split_cells(["张伟（销售总监）", "姓名：李娜 电话：13900570001 公司：杭州星海科技有限公司 职位：采购经理 "
                         "邮箱：lina@xinghai.cn"], keep_unreadable=True)
    assert (parts[0].name, parts[0].title) == ("张伟", "销售总监")
    p = parts[1]
    assert (p.name, p.company, p.title, p.phones, p.emails) == (
        "李娜", "杭州星海科技有限公司", "采购经理", ["13900570001"], ["lina@xinghai.cn"])


def test_labelled_contacts_in_remarks_become_alternates_named_by_their_column(tmp_path: Path) -> None:
    rows = [["姓名", "手机", "备注"],
            ["张伟", _mobile(0), "备用: 13900579999"],
            ["李娜", "", "微信: lina_88 已报价"],
            ["王芳", "", "QQ 12345678"],
            ["刘强", "", "手机13900578888 下周回访"],
            ["陈静", _mobile(4), "13900577777"]]  # a bare number in a remark stays a remark
    records = prepare_file(write_csv(tmp_path / "x.csv", rows)).records
    assert records["mobile"].tolist()[0] == _mobile(0)
    assert records["mobile_alternates"].tolist()[0] == "13900579999"
    assert records["wechat"].tolist()[1] == "lina_88"
    assert records["qq"].tolist()[2] == "12345678"
    assert records["mobile"].tolist()[3] == "13900578888"
    assert records["mobile_alternates"].tolist()[4] == ""
    assert json.loads(records["extra"].iloc[1])[PROVENANCE_KEY] == "备注"


def test_several_numbers_in_one_cell_are_read_one_by_one() -> None:
    parts = split_cells(["张伟 13900570001 / 0571-88886666转123；13900570002"], keep_unreadable=True)[0]
    phones = standardize_phones([";".join(parts.phones)]).iloc[0]
    assert parts.name == "张伟"
    assert phones["mobile"] == "13900570001"
    assert set(phones["mobile_alternates"].split(";")) == {"13900570002", "0571-88886666-123"}


def test_a_scientific_mobile_beside_a_landline_never_becomes_one_long_number(tmp_path: Path) -> None:
    rows = [["姓名", "手机", "座机"], ["张伟", "1.38001E+10", "0571-88886666"], ["李娜", "1.3900571E+10", "0571-88887777"]]
    records = prepare_file(write_csv(tmp_path / "x.csv", rows)).records
    # 1.38001E+10 lost five digits: not a number of anyone's; the landline still reaches 张伟
    assert records["mobile"].tolist() == ["", "13900571000"]
    assert records["landline"].tolist()[0] == "0571-88886666"
    assert all(len(v) <= 13 for v in records["mobile_alternates"].str.split(";").explode() if v)


def test_customer_codes_are_identifiers_and_reach_nobody(tmp_path: Path) -> None:
    rows = [["客户编号", "姓名", "公司", "订单号"]]
    rows += [[f"C{100123 + i:06d}", p, "星海科技有限公司", f"20261207{i:05d}"] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "codes.xlsx", rows), pinned={})
    assert roles_of(raw)["客户编号"] == "extra" and roles_of(raw)["订单号"] == "extra"
    records = prepare_file(tmp_path / "codes.xlsx").records
    assert len(records) == len(PEOPLE)
    assert not records["reachable"].any()  # every row quarantined: no row reachable through a code
    assert (records["wechat"] == "").all() and (records["qq"] == "").all()
    assert json.loads(records["extra"].iloc[0])["客户编号"] == "C100123"


def test_a_code_column_under_an_unknown_header_is_no_wechat_or_qq(tmp_path: Path) -> None:
    rows = [["序列", "ID2", "姓名", "手机"]]
    rows += [[f"KH{2026000 + i}", str(100001 + i), p, _mobile(i) if i % 2 else ""] for i, p in enumerate(PEOPLE)]
    records = prepare_file(write_xlsx(tmp_path / "x.xlsx", rows)).records
    assert (records["wechat"] == "").all() and (records["qq"] == "").all()
    assert records["reachable"].tolist() == [bool(i % 2) for i in range(len(PEOPLE))]


def test_traditional_headers_and_values_read_like_simplified_ones(tmp_path: Path) -> None:
    rows = [["聯絡人", "職稱", "行動電話", "公司名稱", "電郵", "備註"],
            ["陳大文", "銷售總監", _mobile(0), "深圳鼎新軟體股份有限公司", "chen@dingxin.com.tw", "已聯繫"],
            ["張偉", "採購經理", _mobile(1), "星海貿易有限公司", "", ""]]
    raw = read_file(write_xlsx(tmp_path / "tw.xlsx", rows), pinned={})
    assert roles_of(raw) == {"聯絡人": "name", "職稱": "title", "行動電話": "mobile", "公司名稱": "company",
                             "電郵": "email", "備註": "extra"}
    assert raw.table["name"].tolist() == ["陳大文", "張偉"]  # as the file wrote it
    records = prepare_file(tmp_path / "tw.xlsx").records
    assert records["name"].tolist() == ["陈大文", "张伟"]
    assert records["company"].iloc[0] == "深圳鼎新软件股份有限公司"
    assert records["title"].tolist() == ["销售总监", "采购经理"]


def test_dates_in_common_forms_and_the_day_month_order_per_column(tmp_path: Path) -> None:
    day_first = [["姓名", "手机", "日期"], ["张伟", _mobile(0), "3/5/2026"], ["李娜", _mobile(1), "25/3/2026"]]
    month_first = [["姓名", "手机", "日期"], ["张伟", _mobile(0), "3/5/2026"], ["李娜", _mobile(1), "12/31/2026"]]
    others = [["姓名", "手机", "日期"], ["张伟", _mobile(0), "2026年3月"], ["李娜", _mobile(1), "2026.3.5"]]
    read = {name: prepare_file(write_csv(tmp_path / f"{name}.csv", rows)).records["collected_at"].tolist()
            for name, rows in (("dmy", day_first), ("mdy", month_first), ("other", others))}
    assert read == {"dmy": ["2026-05-03", "2026-03-25"], "mdy": ["2026-03-05", "2026-12-31"],
                    "other": ["2026-03-01", "2026-03-05"]}
    raw = read_file(tmp_path / "dmy.csv", pinned={})
    assert any("D/M/YYYY" in n for n in raw.sheets[0].notes)


def test_our_hotline_on_every_row_reaches_nobody_and_links_nobody(tmp_path: Path) -> None:
    rows = [["客户", "联系电话", "客服电话"]]
    for i in range(30):
        rows.append([PEOPLE[i % len(PEOPLE)], _mobile(i % len(PEOPLE)) if i % 3 else "", "0571-86601234"])
    prepared = prepare_file(write_xlsx(tmp_path / "visits.xlsx", rows))
    records = prepared.records
    assert not (records["landline"] == "0571-86601234").any()
    assert not records["mobile_alternates"].str.contains("86601234").any()
    assert records["reachable"].tolist() == [bool(i % 3) for i in range(30)]
    assert records.loc[~records["reachable"], "reject_reason"].str.contains("our own number").all()
    assert any("our own number" in n for n in prepared.raw.sheets[0].notes)


def test_one_persons_own_number_on_all_rows_of_their_call_log_stays_theirs(tmp_path: Path) -> None:
    rows = [["客户", "电话", "通话日期"]] + [["张伟", _mobile(0), f"2026-03-{d:02d}"] for d in range(1, 26)]
    records = prepare_file(write_xlsx(tmp_path / "calls.xlsx", rows)).records
    assert records["reachable"].all() and (records["mobile"] == _mobile(0)).all()


def test_a_sheet_without_a_header_row_is_read_by_content(tmp_path: Path) -> None:
    rows = [[p, _mobile(i), "星海科技有限公司", f"user{i}@163.com"] for i, p in enumerate(PEOPLE)]
    path = write_csv(tmp_path / "noheader.csv", rows)
    raw = read_file(path, pinned={})
    assert raw.table["name"].tolist() == PEOPLE
    assert raw.table["source_row"].tolist()[0] == 1  # the first row is data
    assert any("no header row" in w for w in raw.warnings)
    abbreviated = write_xlsx(tmp_path / "abbr.xlsx", [["xm", "sj", "dw"]] + [r[:3] for r in rows])
    assert read_file(abbreviated, pinned={}).table["mobile"].tolist() == [_mobile(i) for i in range(len(PEOPLE))]


def test_several_people_in_one_row_each_keep_only_their_own_contacts(tmp_path: Path) -> None:
    rows = [["公司名称", "联系人1", "电话1", "联系人2", "电话2", "联系人3", "电话3"],
            ["星海科技有限公司", "张伟", _mobile(0), "李娜", _mobile(1), "", ""],
            ["远航贸易有限公司", "王芳", _mobile(2), "刘强", _mobile(3), "陈静", _mobile(4)]]
    records = prepare_file(write_xlsx(tmp_path / "multi.xlsx", rows)).records
    assert records["name"].tolist() == ["张伟", "李娜", "王芳", "刘强", "陈静"]
    assert records["mobile"].tolist() == [_mobile(i) for i in range(5)]
    assert (records["mobile_alternates"] == "").all()  # one person's phone never another's
    assert records["source_row"].tolist() == [2, 2, 3, 3, 3]
    assert records["company"].tolist()[:3] == ["星海科技有限公司", "星海科技有限公司", "远航贸易有限公司"]


def test_someone_elses_number_in_a_remark_or_a_second_name_column_is_not_the_leads(tmp_path: Path) -> None:
    rows = [["姓名", "手机", "紧急联系人", "备注"],
            ["张伟", _mobile(0), "李娜 13900579999", "紧急联系人电话: 13900578888"],
            ["王芳", _mobile(2), "", "老板微信: boss_wang88 邮箱: wangfang@163.com"]]
    records = prepare_file(write_csv(tmp_path / "x.csv", rows)).records
    assert records["mobile_alternates"].tolist() == ["", ""]
    assert records["wechat"].tolist() == ["", ""]
    assert records["email"].tolist() == ["", "wangfang@163.com"]  # labelled, and hers


def test_the_import_report_counts_contacts_read_outside_their_column(tmp_path: Path) -> None:
    from datafactory_pipelines.pipeline import import_file
    from datafactory_pipelines.store import open_store

    rows = [["联系人", "公司", "备注"], ["张伟 13900570001", "星海科技有限公司", "备用: 13900570002"],
            ["李娜", "星海科技有限公司", "微信: lina_88"]]
    store = open_store(tmp_path / "leads.duckdb")
    outcome = import_file(store, write_xlsx(tmp_path / "x.xlsx", rows))
    assert outcome.status == "imported" and outcome.rows_unreachable == 0
    sheets = json.loads(store.imports()["sheets"].iloc[0])
    assert sheets[0]["cells"]["contacts_outside_column"] == 3
    assert sheets[0]["cells"]["contacts_by_column"] == {"联系人": 1, "备注": 2}


def test_repeated_contact_headers_are_several_people_and_two_phone_columns_are_one(tmp_path: Path) -> None:
    rows = [["公司", "联系人", "手机", "联系人", "手机", "地址"],
            ["星海科技有限公司", "张伟", _mobile(0), "李娜", _mobile(1), "杭州市某路1号"]]
    records = prepare_file(write_xlsx(tmp_path / "dup.xlsx", rows)).records
    assert records["name"].tolist() == ["张伟", "李娜"]
    assert records["mobile"].tolist() == [_mobile(0), _mobile(1)]
    one = [["姓名", "电话1", "电话2"], ["张伟", _mobile(0), _mobile(1)]]
    records = prepare_file(write_xlsx(tmp_path / "one.xlsx", one)).records
    assert len(records) == 1 and records["mobile_alternates"].iloc[0] == _mobile(1)


def test_date_columns_under_unknown_headers_are_dates_not_wechat_or_qq(tmp_path: Path) -> None:
    rows = [["姓名", "手机", "rq", "dt"]]
    rows += [[p, _mobile(i), f"{['Jan', 'Mar', 'May'][i % 3]}-{i + 1:02d}-2026", f"202603{i + 1:02d}"]
             for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    roles = roles_of(raw)
    assert roles["rq"] in ("collected_at", "extra") and roles["dt"] in ("collected_at", "extra")
    assert (raw.table["wechat"] == "").all() and (raw.table["qq"] == "").all()


def test_a_headerless_sheet_whose_first_row_has_no_phone_keeps_that_row(tmp_path: Path) -> None:
    rows = [["张伟", "", "星海科技有限公司"]] + [[p, _mobile(i), "远航贸易有限公司"] for i, p in enumerate(PEOPLE[1:])]
    path = tmp_path / "x.csv"
    path.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8")
    raw = read_file(path, pinned={})
    assert raw.table["name"].tolist() == PEOPLE


def test_a_row_number_column_does_not_make_a_sheet_without_contacts_a_lead_list(tmp_path: Path) -> None:
    import pytest

    from datafactory_pipelines.ingest import IngestError

    rows = [["序号", "姓名", "公司"]] + [[str(i + 1), p, "星海科技有限公司"] for i, p in enumerate(PEOPLE)]
    with pytest.raises(IngestError, match="no contact column"):
        read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})


def test_a_column_an_operator_pinned_as_extra_is_not_read_for_contacts(tmp_path: Path) -> None:
    rows = [["姓名", "手机", "跟进"], ["张伟", _mobile(0), "备用电话：13900579999 周五联系"], ["李娜", _mobile(1), "已报价"],
            ["王芳", _mobile(2), "意向强"]]
    path = write_xlsx(tmp_path / "x.xlsx", rows)
    assert read_file(path, pinned={}).table["mobile"].tolist()[0] == f"{_mobile(0)};13900579999"
    assert read_file(path, pinned={"跟进": "extra"}).table["mobile"].tolist()[0] == _mobile(0)
