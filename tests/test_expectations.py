"""The GX gate: passes on the pipeline's own output, fails when an invariant is broken, masks examples."""

from pathlib import Path

import duckdb
import pandas as pd

from assets.resources import LeadStoreResource
from datafactory_pipelines.config import Paths
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.store import open_store
from expectations.checks import (
    changed_leads_check,
    contacts_check_frame,
    curated_leads_key_fields,
    leads_check_frame,
)
from expectations.runner import validate
from expectations.suites import CURATED_LEADS_SUITE, STANDARDIZED_CONTACTS_SUITE
from tests.conftest import write_xlsx

ROWS = [["姓名", "手机", "邮箱", "微信", "公司"],
        ["张伟", "+86 138 0013 8000", "ZW@QQ.COM", "zw_wechat", "星海科技"],
        ["李娜", "13900139000", "", "", "云帆贸易"],
        ["赵六", "0755-81234567", "", "", "云帆贸易"],
        ["无名氏", "1234", "bad", "", ""]]  # 5+ digits would be read as a QQ number


def _store_with_leads(tmp_path: Path):
    store = open_store(tmp_path / "leads.duckdb")
    import_file(store, write_xlsx(tmp_path / "a.xlsx", ROWS))
    relink_and_curate(store)
    return store


def test_suites_pass_on_pipeline_output(tmp_path: Path) -> None:
    store = _store_with_leads(tmp_path)
    records = store.import_records(store.imports()["import_id"].iloc[0])
    assert validate(contacts_check_frame(records), STANDARDIZED_CONTACTS_SUITE, "contacts").success
    outcome = validate(leads_check_frame(store.leads()), CURATED_LEADS_SUITE, "leads")
    assert outcome.success, outcome.failed


def test_duplicate_primary_mobile_fails_with_masked_examples(tmp_path: Path) -> None:
    leads = _store_with_leads(tmp_path).leads()
    leads.loc[leads["name"] == "李娜", "mobile"] = "13800138000"  # a bad merge would leave this behind
    outcome = validate(leads_check_frame(leads), CURATED_LEADS_SUITE, "leads")
    assert not outcome.success
    failed = outcome.failed.set_index("column")
    assert failed.loc["mobile", "expectation"] == "expect_column_values_to_be_unique"
    assert "138****8000" in failed.loc["mobile", "examples"]
    assert "13800138000" not in outcome.table.to_string()


def test_lead_without_contact_and_bad_patterns_fail(tmp_path: Path) -> None:
    leads = _store_with_leads(tmp_path).leads()
    no_contact = leads.iloc[[0]].assign(lead_id="L99999999", mobile="", email="", wechat="", landline="", qq="")
    bad_pattern = leads.iloc[[0]].assign(lead_id="L99999998", mobile="2800138000", email="x@y")
    outcome = validate(leads_check_frame(pd.concat([leads, no_contact, bad_pattern])), CURATED_LEADS_SUITE, "leads")
    failed = set(zip(outcome.failed["expectation"], outcome.failed["column"], strict=True))
    assert ("expect_column_values_to_be_in_set", "has_valid_contact") in failed
    assert ("expect_column_values_to_match_regex", "mobile") in failed
    assert ("expect_column_values_to_match_regex", "email") in failed


def test_reachable_row_without_contact_fails_contacts_suite(tmp_path: Path) -> None:
    store = _store_with_leads(tmp_path)
    records = store.import_records(store.imports()["import_id"].iloc[0])
    records.loc[records["name"] == "无名氏", "reachable"] = True  # the pipeline lied about reachability
    outcome = validate(contacts_check_frame(records), STANDARDIZED_CONTACTS_SUITE, "contacts")
    assert list(outcome.failed["column"]) == ["reachable_has_contact"]


def test_dagster_check_fails_on_a_broken_store(datafactory_home: Path) -> None:
    paths = Paths.from_env().ensure()
    store = open_store(paths.store)
    import_file(store, write_xlsx(paths.home / "a.xlsx", ROWS))
    relink_and_curate(store)
    assert curated_leads_key_fields(lead_store=LeadStoreResource()).passed
    with duckdb.connect(str(paths.store)) as con:  # someone edits the store behind the pipeline's back
        con.execute("UPDATE leads SET mobile = '13800138000' WHERE name = '李娜'")
    result = curated_leads_key_fields(lead_store=LeadStoreResource())
    assert not result.passed
    assert result.metadata["failed_expectations"].value == 1
    assert "138****8000" in result.metadata["results"].value


def test_changed_leads_check_reads_the_change_and_the_leads_sharing_its_mobiles(tmp_path: Path) -> None:
    store = _store_with_leads(tmp_path)
    ids = store.leads().set_index("name")["lead_id"]
    assert changed_leads_check(store, [ids["李娜"]]).passed
    with duckdb.connect(str(store.path)) as con:  # another lead now carries 张伟's primary mobile
        con.execute("UPDATE leads SET mobile = '13800138000' WHERE name = '李娜'")
    result = changed_leads_check(store, [ids["李娜"]])  # the change is 李娜's: 张伟 is read for his mobile
    assert not result.passed
    assert result.metadata["rows_checked"].value == 2
    assert "138****8000" in result.metadata["results"].value
    assert changed_leads_check(store, [ids["赵六"]]).passed  # a change elsewhere does not read them
    assert changed_leads_check(store, []).passed
