"""Property tests: the standardizers never raise on any text, and standardizing twice changes nothing."""

import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from datafactory_pipelines.standardize import standardize_frame
from datafactory_pipelines.standardize.address import standardize_address
from datafactory_pipelines.standardize.company import standardize_company
from datafactory_pipelines.standardize.email import standardize_email
from datafactory_pipelines.standardize.ids import standardize_qq, standardize_wechat
from datafactory_pipelines.standardize.name import standardize_name
from datafactory_pipelines.standardize.phone import standardize_phone

# Text as lead files hold it: CJK, Latin, digits, full-width forms, punctuation, separators, spaces.
ALPHABET = st.sampled_from(
    list("张王李陈刘伟芳娜張偉麗先生女士总经理有限公司深圳市区路号") + list("abcxyzABC0123456789")
    + list("０１２３＋＠（）") + list(" -+()@.,;/、|#转\t\n:：_") + ["mailto:", "qq.con", "+86", "0086"]
)
TEXT = st.lists(ALPHABET, max_size=30).map("".join) | st.text(max_size=30)
SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(TEXT)
def test_phone_total_and_idempotent(text: str) -> None:
    once = standardize_phone(text)
    assert once.status in {"valid", "repaired", "invalid", "empty"}
    if once.mobile:
        assert standardize_phone(once.mobile) == (once.mobile, "", "", "valid", "")
    if once.landline:
        assert standardize_phone(once.landline).landline == once.landline


@SETTINGS
@given(TEXT)
def test_email_total_and_idempotent(text: str) -> None:
    once = standardize_email(text)
    if once.email:
        again = standardize_email(once.email)
        assert (again.email, again.status) == (once.email, "valid")


@SETTINGS
@given(TEXT)
@example("a-总")  # a salutation was the cell's only Chinese: the name's pinyin changed on a second pass
def test_name_total_and_idempotent(text: str) -> None:
    once = standardize_name(text)
    if once.name and not once.partial:
        again = standardize_name(once.name)
        assert (again.name, again.key, again.pinyin) == (once.name, once.key, once.pinyin)


@SETTINGS
@given(TEXT)
def test_company_and_address_idempotent(text: str) -> None:
    company = standardize_company(text)
    assert standardize_company(company.company) == company
    address = standardize_address(text)
    assert standardize_address(address.address) == address


@SETTINGS
@given(TEXT)
def test_ids_total_and_idempotent(text: str) -> None:
    for fn in (standardize_wechat, standardize_qq):
        once = fn(text)
        if once.value:
            assert fn(once.value) == (once.value, "valid", "")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT), min_size=1, max_size=20))
def test_frame_never_raises_and_keeps_row_count(rows: list[tuple[str, str, str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["name", "mobile", "email", "company"])
    out = standardize_frame(frame)
    assert len(out) == len(frame)
    assert (out["reachable"] == (out[["mobile", "landline", "email", "wechat", "qq", "douyin", "kuaishou"]] != "")
            .any(axis=1)).all()
