"""Linking what real exports hold: romanized and salutation-only names, role mailboxes, homophones at one firm,
extension landlines; and the romanized-name keys themselves. Real files are written and imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from datafactory_pipelines.linkage import load_config
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.standardize.email import ROLE_LOCALS
from datafactory_pipelines.standardize.name import standardize_names
from tests.conftest import write_csv, write_xlsx


@pytest.mark.parametrize("raw", ["张伟", "Zhang Wei", "Wei Zhang", "ZHANG Wei", "Zhang, Wei", "zhang wei"])
def test_romanized_forms_share_one_key(raw: str) -> None:
    row = standardize_names([raw]).iloc[0]
    assert (row["name_roman"], row["name_surname"]) == ("wei zhang", "zhang")


def test_hyphenated_and_compound_names() -> None:
    out = standardize_names(["Xiao-Ming Zhang", "张晓明", "欧阳娜娜", "Nana Ouyang", "王总", "John Smith"])
    assert out["name_roman"].tolist() == ["xiaoming zhang", "xiaoming zhang", "nana ouyang", "nana ouyang", "", ""]
    assert out["name_surname"].tolist()[4:] == ["wang", ""]


def test_role_mailbox_regex_is_the_standardizers_list() -> None:
    expression = load_config().prepare["email_kind"]
    assert all(local in expression for local in ROLE_LOCALS)


def _leads(store, tmp_path: Path, files: dict[str, list[list[str]]]) -> dict[tuple[str, int], str]:
    for name, rows in files.items():
        path = write_xlsx(tmp_path / name, rows) if name.endswith(".xlsx") else write_csv(tmp_path / name, rows, "gbk")
        assert import_file(store, path).status == "imported"
    relink_and_curate(store)
    links = store.links()
    return {(f, int(r)): lead for f, r, lead in zip(links["source_file"], links["source_row"], links["lead_id"],
                                                   strict=True)}


def test_romanized_and_salutation_names_link_on_a_shared_contact(store, tmp_path: Path) -> None:
    leads = _leads(store, tmp_path, {
        "cn.xlsx": [["姓名", "手机", "公司"], ["张晓明", "13812345678", "星海科技有限公司"],
                    ["李娜", "13987654321", "远航贸易有限公司"]],
        "en.xlsx": [["Name", "Mobile", "Company"], ["Xiao-Ming Zhang", "+86 138 1234 5678", "星海科技"],
                    ["Na Li", "139-8765-4321", "远航贸易"]],
        "oa.csv": [["联系人", "电话"], ["张总", "13812345678"], ["李工", "13987654321"]],
    })
    assert leads[("cn.xlsx", 2)] == leads[("en.xlsx", 2)] == leads[("oa.csv", 2)]
    assert leads[("cn.xlsx", 3)] == leads[("en.xlsx", 3)] == leads[("oa.csv", 3)]
    assert leads[("cn.xlsx", 2)] != leads[("cn.xlsx", 3)]


def test_a_shared_role_mailbox_is_not_an_identity(store, tmp_path: Path) -> None:
    leads = _leads(store, tmp_path, {
        "a.xlsx": [["姓名", "邮箱", "公司"], ["陈静", "info@xinghai.cn", "星海科技有限公司"],
                   ["周强", "hr@xinghai.cn", "星海科技有限公司"]],
        "b.xlsx": [["姓名", "邮箱", "公司"], ["刘洋", "info@xinghai.cn", "星海科技有限公司"],
                   ["赵敏", "hr@xinghai.cn", "星海科技有限公司"]],
    })
    assert leads[("a.xlsx", 2)] != leads[("b.xlsx", 2)]
    assert leads[("a.xlsx", 3)] != leads[("b.xlsx", 3)]


def test_homophones_at_one_company_stay_apart(store, tmp_path: Path) -> None:
    leads = _leads(store, tmp_path, {
        "a.xlsx": [["姓名", "手机", "公司"], ["王伟", "13811112222", "星海科技有限公司"],
                   ["张杰", "13833334444", "星海科技有限公司"]],
        "b.xlsx": [["姓名", "邮箱", "公司"], ["汪伟", "wangwei@163.com", "星海科技有限公司"],
                   ["张洁", "zhangjie@163.com", "星海科技有限公司"]],
    })
    assert leads[("a.xlsx", 2)] != leads[("b.xlsx", 2)]
    assert leads[("a.xlsx", 3)] != leads[("b.xlsx", 3)]


def test_an_extension_landline_links_across_name_scripts(store, tmp_path: Path) -> None:
    leads = _leads(store, tmp_path, {
        "en.xlsx": [["Name", "Phone", "Company"], ["WEI Binqiang", "021-23120643转8528", "天合电子"]],
        "oa.xlsx": [["姓名", "电话", "单位"], ["魏斌强", "186-8065-5432 021-23120643-8528", "天合电子有限公司"],
                    ["李娜", "021-23120643-8529", "天合电子有限公司"]],
    })
    assert leads[("en.xlsx", 2)] == leads[("oa.xlsx", 2)]
    assert leads[("oa.xlsx", 3)] != leads[("oa.xlsx", 2)]  # another desk on the same switchboard
