"""Column roles from header and content, other people's names, mixed columns, pinned mappings, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datafactory_pipelines.cli import main
from datafactory_pipelines.ingest import read_file
from datafactory_pipelines.ingest.mappings import load_mappings, pin_mapping, source_key
from datafactory_pipelines.ingest.mixed import split_cell
from tests.conftest import write_csv, write_xlsx

PEOPLE = ["张伟", "李娜", "王芳", "刘强", "陈静", "杨洋", "赵磊", "黄敏", "周杰伦", "吴丽", "徐明", "孙浩"]
COMPANIES = ["杭州星海科技有限公司", "远航贸易（上海）有限公司", "博瑞软件股份有限公司", "金石物流有限公司"]
OWNERS = ["销售甲", "刘洋", "陈晨"]


def _mobile(i: int) -> str:
    return f"1380013{i:04d}"


def roles_of(raw) -> dict[str, str]:
    return {c["column"]: c["role"] for c in raw.column_report()}


def test_customer_name_holding_people_next_to_unit_name_holding_companies(tmp_path: Path) -> None:
    rows = [["客户名称", "单位名称", "手机", "负责人", "最后跟进"]]
    rows += [[p, COMPANIES[i % 4], _mobile(i), OWNERS[i % 3], f"2026/03/{i + 1:02d} 14:2{i % 10}"]
             for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "crm.xlsx", rows), pinned={})
    assert roles_of(raw) == {"客户名称": "name", "单位名称": "company", "手机": "mobile", "负责人": "owner",
                             "最后跟进": "collected_at"}
    assert raw.table["name"].tolist() == PEOPLE
    assert raw.table["company"].tolist()[:2] == COMPANIES[:2]
    assert raw.table["collected_at"].iloc[0] == "2026/03/01 14:20"
    assert raw.table["owner"].iloc[0] == "销售甲"  # the sales owner is kept, never taken as the lead's name
    assert "owner" not in json.loads(raw.table["extra"].iloc[0])  # owner is a canonical field now
    assert not set(OWNERS) & set(raw.table["name"])


def test_referee_is_the_lead_and_the_referrer_an_attribute_gbk_csv(tmp_path: Path) -> None:
    rows = [["推荐人", "被推荐人", "联系方式", "公司"]]
    rows += [[PEOPLE[(i + 5) % 12], p, _mobile(i) if i % 3 else f"user{i}@163.com", COMPANIES[i % 4]]
             for i, p in enumerate(PEOPLE)]
    raw = read_file(write_csv(tmp_path / "referrals.csv", rows, encoding="gbk"), pinned={})
    assert roles_of(raw)["推荐人"] == "referrer" and roles_of(raw)["被推荐人"] == "name"
    assert raw.table["name"].tolist() == PEOPLE
    assert json.loads(raw.table["extra"].iloc[0])["referrer"] == PEOPLE[5]
    # 联系方式 is read per cell: phones to mobile, addresses to email
    assert raw.table["mobile"].iloc[1] == _mobile(1) and raw.table["email"].iloc[1] == ""
    assert raw.table["email"].iloc[0] == "user0@163.com" and raw.table["mobile"].iloc[0] == ""


def test_customer_name_alone_with_people_is_the_name(tmp_path: Path) -> None:
    rows = [["客户名称", "手机"]] + [[p, _mobile(i)] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_csv(tmp_path / "ads.csv", rows, encoding="gbk"), pinned={})
    assert roles_of(raw)["客户名称"] == "name"


def test_companies_under_a_person_header_go_to_company(tmp_path: Path) -> None:
    rows = [["联系人", "姓名", "电话"]] + [[COMPANIES[i % 4], p, _mobile(i)] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    assert roles_of(raw)["联系人"] == "company" and roles_of(raw)["姓名"] == "name"


def test_unknown_headers_read_by_content_and_uncertain_roles_warned(tmp_path: Path) -> None:
    rows = [["客户", "号码", "跟进状态", "Col4"]]
    rows += [[p, _mobile(i), "已报价", f"2026-0{1 + i % 9}-1{i % 10}"] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    roles = roles_of(raw)
    assert roles["号码"] == "mobile" and roles["Col4"] == "collected_at" and roles["跟进状态"] == "extra"
    by_column = {c["column"]: c for c in raw.column_report()}
    assert "content: mobile 100%" in by_column["号码"]["evidence"]
    assert 0 < by_column["号码"]["confidence"] < 0.9


def test_a_sales_figure_is_not_a_salesperson(tmp_path: Path) -> None:
    rows = [["姓名", "手机", "销售额"]] + [[p, _mobile(i), str(1000 * i)] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    assert roles_of(raw)["销售额"] == "extra"


def test_two_name_columns_the_repeating_one_is_the_owner(tmp_path: Path) -> None:
    rows = [["姓名", "联系人", "手机"]] + [[OWNERS[i % 2], p, _mobile(i)] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    assert roles_of(raw)["联系人"] == "name" and roles_of(raw)["姓名"] == "owner"
    assert any("owner" in w for w in raw.warnings)


@pytest.mark.parametrize(("cell", "expected"), [
    ("138-0013-8000", {"mobile": ["138-0013-8000"]}),
    ("wx_zhang2026", {"wechat": ["wx_zhang2026"]}),
    ("+86 138 0013 8000", {"mobile": ["+86 138 0013 8000"]}),
    ("微信：zhangwei_88 手机：13800138000", {"wechat": ["zhangwei_88"], "mobile": ["13800138000"]}),
    ("13800138000/zw@163.com", {"mobile": ["13800138000"], "email": ["zw@163.com"]}),
    ("QQ:123456789", {"qq": ["123456789"]}),
    ("13800138000 wx_zhang2026", {"mobile": ["13800138000"], "wechat": ["wx_zhang2026"]}),
])
def test_mixed_cells_split_by_kind(cell: str, expected: dict) -> None:
    got = {k: v for k, v in split_cell(cell).items() if v}
    assert got == expected


def test_mixed_phone_wechat_column_read_per_cell(tmp_path: Path) -> None:
    rows = [["姓名", "手机/微信"]] + [[p, _mobile(i) if i % 2 else f"wx_user{i:03d}"] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    assert roles_of(raw)["手机/微信"] == "contact"
    assert raw.table["mobile"].tolist()[:2] == ["", _mobile(1)]
    assert raw.table["wechat"].tolist()[:2] == ["wx_user000", ""]


def test_source_key_ignores_dates_numbers_and_copies() -> None:
    assert source_key("CRM客户导出_2026-12-03 (2).xlsx") == source_key("CRM客户导出_20261127.xlsx") == "CRM客户导出"


def test_pinned_mapping_is_remembered_for_the_next_file_of_the_source(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pin_mapping(home, "渠道名单", {"甲": "name", "乙": "mobile", "丙": "owner"})
    assert load_mappings(home) == {"渠道名单": {"甲": "name", "乙": "mobile", "丙": "owner"}}
    rows = [["甲", "乙", "丙"]] + [[p, _mobile(i), "某人"] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "渠道名单_20261203.xlsx", rows), home=home)
    assert roles_of(raw) == {"甲": "name", "乙": "mobile", "丙": "owner"}
    assert all(c["confidence"] == 1.0 and "pinned" in c["evidence"] for c in raw.column_report())
    with pytest.raises(ValueError, match="unknown role"):
        pin_mapping(home, "渠道名单", {"甲": "nmae"})


def test_cli_map_flag_pins_and_the_report_masks(tmp_path: Path, datafactory_home: Path, capsys) -> None:
    rows = [["客户", "号码", "备注"]] + [[p, _mobile(i), COMPANIES[i % 4]] for i, p in enumerate(PEOPLE)]
    path = write_xlsx(tmp_path / "展会名单_01.xlsx", rows)
    assert main(["import", str(path), "--map", "备注=company", "--map", "客户=name"]) == 0
    out = capsys.readouterr().out
    assert "pinned for source '展会名单'" in out
    assert load_mappings(datafactory_home)["展会名单"] == {"备注": "company", "客户": "name"}
    assert "备注" in out and "company" in out
    assert _mobile(0) not in out and "138****0000" in out  # samples are masked
    # the next file from the source is read with the same pins
    nxt = write_xlsx(tmp_path / "展会名单_02.xlsx", rows[:1] + rows[5:])
    assert roles_of(read_file(nxt))["备注"] == "company"
    assert main(["import", str(tmp_path / "x.xlsx"), "--map", "bad"]) == 2


def test_invisible_characters_do_not_hide_what_a_column_holds(tmp_path: Path) -> None:
    rows = [["姓名", "手机", "负责人"]] + [[p, _mobile(i), "\u202e" + OWNERS[i % 3]] for i, p in enumerate(PEOPLE)]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    assert roles_of(raw)["负责人"] == "owner"


def test_a_mixed_column_next_to_a_wechat_column_fills_only_empty_wechat(tmp_path: Path) -> None:
    rows = [["姓名", "微信", "联系方式"], ["张伟", "wx_zhangwei", "wx_other1"], ["李娜", "", "wx_lina88"],
            ["王芳", "", "13800138000"], ["刘强", "", "liu@163.com"]]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    assert raw.table["wechat"].tolist() == ["wx_zhangwei", "wx_lina88", "", ""]


def test_a_bad_number_in_a_phone_column_stays_a_bad_phone(tmp_path: Path) -> None:
    rows = [["联系人", "手机号码"], ["张伟", "13800138000"], ["李娜", "13900139000"], ["无名氏", "12345"]]
    raw = read_file(write_xlsx(tmp_path / "x.xlsx", rows), pinned={})
    assert roles_of(raw)["手机号码"] == "mobile"
    assert raw.table["mobile"].tolist()[2] == "12345" and raw.table["qq"].tolist()[2] == ""


def test_a_phone_in_a_remarks_column_stays_a_remark(tmp_path: Path) -> None:
    from datafactory_pipelines.ingest import IngestError

    path = write_xlsx(tmp_path / "x.xlsx", [["姓名", "公司", "备注"], ["赵六", "某公司", "13812345678"]])
    with pytest.raises(IngestError, match="no contact column"):
        read_file(path, pinned={})
