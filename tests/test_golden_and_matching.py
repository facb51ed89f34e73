"""Golden company and matching on real .xlsx files: the variants of one company are one company shown by its
full Chinese legal name; a blank name, a salutation or a nickname is not another person."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_exports import pairwise_scores
from datafactory_pipelines.sample_exports_golden import (
    EXACT_KEYS,
    exact_key_labels,
    golden_report,
    write_golden_exports,
)
from datafactory_pipelines.standardize.company import standardize_companies
from datafactory_pipelines.standardize.company_entity import chinese_entity, latin_entity
from datafactory_pipelines.standardize.name import standardize_names
from datafactory_pipelines.store import open_store


def _xlsx(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).astype(str).to_excel(path, index=False, sheet_name="客户")
    return path


def _golden_of(store, path: Path) -> pd.DataFrame:
    """Each row of the file (by spreadsheet row) with the golden record of the lead it joined."""
    links = store.links()
    links = links[links["source_file"] == path.name]
    return links.merge(store.leads(), on="lead_id").set_index("source_row").sort_index()


# --- which company a spelling names ------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["广州光正机械有限公司", "光正机械（广州）有限公司", "光正机械(广州)有限公司", "光正机械",
                                     "光正", "广州市光正机械有限公司", "Guangzhou Guangzheng Machinery Co., Ltd.",
                                     "GUANGZHENG MACHINERY CO.,LTD", "Guangzhou Guangzheng Jixie Co Ltd"])
def test_every_way_of_writing_one_company_names_the_same_entity(variant: str) -> None:
    got = standardize_companies([variant, "广州光正机械有限公司"])["company_entity"].tolist()
    assert got[0] == got[1] == "guangzheng"


def test_other_companies_and_branches_are_other_entities_and_forms_rank_completeness() -> None:
    frame = standardize_companies(["广州光正机械有限公司", "广州光明机械有限公司", "广州光正机械有限公司上海分公司",
                                   "光正机械上海分公司", "重庆分公司", "Shanghai Yiciyuan Trading Co.,Ltd",
                                   "上海艺慈元贸易有限公司", "光正", "光正机械"])
    entity, form = frame["company_entity"].tolist(), frame["company_form"].astype(int).tolist()
    assert entity[0] != entity[1]  # another trade name is another company
    assert entity[2] == entity[3] == "guangzheng|shanghai"  # a branch: its parent's trade name and its place
    assert entity[4].startswith("~") and form[4] == 0  # 重庆分公司 names no company by itself
    assert entity[5] == entity[6] == "yiciyuan"  # English and Chinese meet on the trade name in pinyin
    assert form[6] > form[8] > form[7] > form[5] > form[4]  # legal name > short > brand > English > none
    assert chinese_entity("光正机械（广州）有限公司")[1] == chinese_entity("广州光正机械有限公司")[1]  # equally complete
    assert latin_entity("Guangzhou Guangzheng Machinery Co., Ltd. Shanghai Branch")[0] == "guangzheng|shanghai"


def test_a_company_written_another_way_is_not_a_conflict_but_a_branch_is() -> None:
    from datafactory_pipelines.conflicts import same_entity

    assert same_entity("company", "广州光正机械有限公司", "Guangzhou Guangzheng Machinery Co., Ltd.")
    assert same_entity("company", "广州光正机械有限公司", "光正")
    assert not same_entity("company", "广州光正机械有限公司", "广州光正机械有限公司上海分公司")
    assert not same_entity("company", "广州光正机械有限公司", "广州光明机械有限公司")


# --- the golden company, through the real import path ---------------------------------------------------
def test_golden_company_is_the_full_chinese_legal_name_the_rows_give(tmp_path: Path) -> None:
    rows = []

    def person(name: str, mobile: str, companies: list[str]) -> None:
        for month, company in enumerate(companies, start=1):
            rows.append({"姓名": name, "手机": mobile, "公司": company, "日期": f"2026-{month:02d}-10"})

    # the latest rows write the English name, the short name and the city in brackets: the full name shows
    person("罗博", "13698072411", ["广州光正机械有限公司", "广州光正机械有限公司", "光正机械（广州）有限公司",
                                   "Guangzhou Guangzheng Machinery Co., Ltd.", "光正机械"])
    person("周平", "13512373817", ["Shanghai Yiciyuan Trading Co.,Ltd", "上海艺慈元贸易有限公司",
                                   "Shanghai Yiciyuan Trading Co.,Ltd"])
    person("吴磊", "13800138001", ["Hangzhou Yunfan Trading Co., Ltd."])  # English only when nothing else
    person("郑兰", "13800138002", ["云帆", "杭州云帆贸易有限公司", "云帆贸易（杭州）有限公司", "杭州云帆贸易有限公司"])
    # a branch the latest telling row writes stays a branch; a short name after it does not undo it
    person("李静文", "13800138003", ["上海恒信机械有限公司", "上海恒信机械有限公司深圳分公司", "恒信机械"])
    # the person's other rows give the parent's full name after the branch: the parent shows
    person("陈静", "13800138004", ["广州智源新材料股份有限公司成都分公司", "广州智源新材料股份有限公司", "智源"])
    # a job change: the new company, in its fullest form, even when older rows wrote the old one more often
    person("孙伟", "13800138005", ["上海宏图物流有限公司", "上海宏图物流有限公司", "华腾电子", "杭州华腾电子有限公司"])
    # a bare 重庆分公司 (a unit, no trade name) never beats a company
    person("唐波", "13800138006", ["成都安泰医疗器械有限公司", "重庆分公司"])
    path = _xlsx(tmp_path / "客户.xlsx", rows)
    store = open_store(tmp_path / "leads.duckdb")
    assert import_file(store, path).status == "imported"
    relink_and_curate(store)
    leads = store.leads()
    shown = dict(zip(leads["mobile"], leads["company"], strict=True))
    assert shown == {
        "13698072411": "广州光正机械有限公司", "13512373817": "上海艺慈元贸易有限公司",
        "13800138001": "Hangzhou Yunfan Trading Co., Ltd.", "13800138002": "杭州云帆贸易有限公司",
        "13800138003": "上海恒信机械有限公司深圳分公司", "13800138004": "广州智源新材料股份有限公司",
        "13800138005": "杭州华腾电子有限公司", "13800138006": "成都安泰医疗器械有限公司",
    }


# --- matching: missing evidence is not contradicting evidence ----------------------------------------------
def test_nicknames_and_titled_surnames_are_partial_names() -> None:
    frame = standardize_names(["小王", "老李", "阿强", "Mr. Zhang", "王伟", "小明明"])
    assert frame["name_partial"].tolist() == [True, True, True, True, False, False]
    assert frame["name_surname"].tolist()[:4] == ["wang", "li", "", "zhang"]


def test_a_blank_name_a_salutation_or_a_nickname_beside_a_shared_mobile_stays_with_the_person(tmp_path: Path) -> None:
    rows = [
        {"联系人": "张伟", "手机": "13698072411", "邮箱": "zhangwei88@163.com", "公司": "广州光正机械有限公司"},
        {"联系人": "张伟", "手机": "", "邮箱": "zhangwei88@163.com", "公司": "广州光正机械有限公司"},
        {"联系人": "", "手机": "13698072411", "邮箱": "", "公司": "光正"},  # no name: the number is the person
        {"联系人": "张先生", "手机": "13698072411", "邮箱": "", "公司": ""},
        {"联系人": "小张", "手机": "13698072411", "邮箱": "", "公司": "光正机械"},
        {"联系人": "阿伟", "手机": "13698072411", "邮箱": "", "公司": "Guangzhou Guangzheng Machinery Co., Ltd."},
        {"联系人": "Mr. Zhang", "手机": "13698072411", "邮箱": "", "公司": ""},
        # another person: another full name and another mobile at the same company
        {"联系人": "李娜", "手机": "13912345678", "邮箱": "", "公司": "广州光正机械有限公司"},
        {"联系人": "王芳", "手机": "13800138000", "邮箱": "", "公司": "广州光正机械有限公司"},
    ]
    path = _xlsx(tmp_path / "回访.xlsx", rows)
    store = open_store(tmp_path / "leads.duckdb")
    assert import_file(store, path).status == "imported"
    relink_and_curate(store)
    rows_leads = _golden_of(store, path)
    zhang = rows_leads.loc[range(2, 9), "lead_id"]
    assert zhang.nunique() == 1, rows_leads[["lead_id", "name"]]
    assert rows_leads.loc[2, "name"] == "张伟" and rows_leads.loc[2, "company"] == "广州光正机械有限公司"
    others = rows_leads.loc[[9, 10], "lead_id"]
    assert others.nunique() == 2 and not set(others) & set(zhang)


# --- the golden-record family and its report ---------------------------------------------------------------
def test_golden_report_scores_the_golden_fields_of_an_imported_export_family(tmp_path: Path) -> None:
    sample = write_golden_exports(tmp_path / "files", people=60, seed=5)
    assert {p.suffix for p in sample.files} == {".xlsx"}
    store = open_store(tmp_path / "leads.duckdb")
    for path in sample.files:
        assert import_file(store, path).status == "imported"
    relink_and_curate(store)
    links = store.links().rename(columns={"source_file": "file"})
    report = golden_report(sample.truth, links, store.leads())
    assert set(report) == {"company", "mobile", "email"}
    for field, got in report.items():
        assert 0 < got["allowed"] <= got["people"] == 60, field
        assert got["right"] <= got["allowed"]
    assert report["company"]["share"] >= 0.8 and report["mobile"]["share"] >= 0.8
    # the engine never scores below exact keys (records sharing a standardized contact) on the same records
    joined = sample.truth.merge(links[["file", "sheet", "source_row", "lead_id", "record_id"]],
                                on=["file", "sheet", "source_row"])
    exact = joined["record_id"].map(exact_key_labels(store.records_for_linkage(columns=["record_id", *EXACT_KEYS])))
    engine, keys = pairwise_scores(joined, joined["lead_id"]), pairwise_scores(joined, exact)
    assert keys["f1"] > 0.5 and engine["f1"] >= keys["f1"] and engine["precision"] >= 0.995
    # a store that got every golden field wrong scores zero: the report reads the leads, not the truth
    wrong = store.leads().assign(company="别的公司", mobile="13000000000", email="x@example.com")
    assert all(got["right"] == 0 for got in golden_report(sample.truth, links, wrong).values())


def test_incremental_imports_equal_a_full_relink_on_the_golden_family(tmp_path: Path) -> None:
    sample = write_golden_exports(tmp_path / "files", people=60, seed=7)
    store_path = tmp_path / "leads.duckdb"
    store = open_store(store_path)
    for path in sample.files:
        import_file(store, path)
        relink_and_curate(store)  # the change path, file by file
    before = store.leads().sort_values("lead_id").reset_index(drop=True)
    before_links = store.links()[["record_id", "lead_id"]].sort_values("record_id").reset_index(drop=True)
    del store
    shutil.copy(store_path, tmp_path / "copy.duckdb")
    full = open_store(tmp_path / "copy.duckdb")
    relink_and_curate(full, full=True)
    after = full.leads().sort_values("lead_id").reset_index(drop=True)
    after_links = full.links()[["record_id", "lead_id"]].sort_values("record_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before_links, after_links)
    columns = ["lead_id", "name", "mobile", "email", "company"]
    pd.testing.assert_frame_equal(before[columns], after[columns])
