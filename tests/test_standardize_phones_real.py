"""Phones as real exports write them: extensions, +86 with an area code, several numbers split by one space,
and the 149 range kept as a possible mobile."""

from __future__ import annotations

import pytest

from datafactory_pipelines.standardize.phone import (
    POSSIBLE_MOBILE_REASON,
    standardize_phone,
    standardize_phones,
)


@pytest.mark.parametrize(("raw", "landline"), [
    ("0571-86541234-8012", "0571-86541234-8012"),
    ("0571-86541234转8012", "0571-86541234-8012"),
    ("(0571)86541234 ext. 8012", "0571-86541234-8012"),
    ("0571-86541234 分机8012", "0571-86541234-8012"),
    ("+86 571 8654 1234-8012", "0571-86541234-8012"),
    ("+86 571 8654 1234", "0571-86541234"),
    ("+86-571-86541234", "0571-86541234"),
    ("0086 571 86541234", "0571-86541234"),
    ("+86 10 6234 5678", "010-62345678"),
    ("+86 (0)571 86541234", "0571-86541234"),
])
def test_landline_extensions_and_country_code_forms(raw: str, landline: str) -> None:
    result = standardize_phone(raw)
    assert (result.mobile, result.landline, result.status) == ("", landline, "valid" if raw == landline else "repaired")


@pytest.mark.parametrize(("raw", "mobile", "alternates"), [
    ("13800138000 0571-86541234", "13800138000", "0571-86541234"),
    ("186-8065-5432 021-23120643-8528", "18680655432", "021-23120643-8528"),
    ("+8618659638121 021-51077070-8842", "18659638121", "021-51077070-8842"),
    ("13800138000 0571-86541234 转8012", "13800138000", "0571-86541234-8012"),
    ("13800138000 13900139000", "13800138000", "13900139000"),
    ("+86 138 0013 8000", "13800138000", ""),
])
def test_numbers_separated_by_a_single_space(raw: str, mobile: str, alternates: str) -> None:
    result = standardize_phone(raw)
    assert (result.mobile, result.alternates) == (mobile, alternates)


def test_a_number_with_a_stray_fragment_is_not_split_into_garbage() -> None:
    result = standardize_phone("13800138000 12")
    assert result.mobile == "" and result.status == "invalid"


@pytest.mark.parametrize("raw", ["14972305162", "149 7230 5162", "+86 149 7230 5162", "86-14972305162"])
def test_149_numbers_are_kept_as_possible_mobiles(raw: str) -> None:
    result = standardize_phone(raw)
    assert result.mobile == "14972305162"
    assert result.reason.startswith(POSSIBLE_MOBILE_REASON)
    assert result.status in ("valid", "repaired")


def test_possible_mobile_keeps_its_row_reachable() -> None:
    import pandas as pd

    from datafactory_pipelines.standardize import standardize_frame

    out = standardize_frame(pd.DataFrame({"name": ["张杰"], "mobile": ["149 7230 5162"]}))
    assert bool(out.loc[0, "reachable"]) and out.loc[0, "mobile"] == "14972305162"


def test_other_unlisted_ranges_stay_invalid() -> None:
    assert standardize_phones(["14012345678", "17412345678"])["mobile_status"].tolist() == ["invalid", "invalid"]


def test_a_lead_with_only_a_service_number_is_reachable_and_typed(tmp_path) -> None:
    """A real export whose only number is a 400 line: the row is a reachable lead, the number kept as its
    landline and typed a service number, not set aside as unreachable."""
    from datafactory_pipelines.pipeline import import_file, relink_and_curate
    from datafactory_pipelines.store import open_store
    from tests.conftest import write_xlsx

    store = open_store(tmp_path / "leads.duckdb")
    outcome = import_file(store, write_xlsx(tmp_path / "客服线索.xlsx", [
        ["客户名称", "联系人", "联系电话"],
        ["星海科技有限公司", "王强", "400-820-8820"],
        ["云帆贸易有限公司", "李娜", "13900139000"]]))
    assert outcome.status == "imported" and outcome.rows_unreachable == 0
    relink_and_curate(store)
    leads = store.leads().set_index("name")
    assert leads.loc["王强", "landline"] == "400-820-8820"
    assert leads.loc["王强", "landline_type"] == "service number"
    assert leads.loc["李娜", "mobile"] == "13900139000"
