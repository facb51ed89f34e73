"""email-validator (syntax only, no DNS) is the oracle for the vectorized email syntax rule."""

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from datafactory_pipelines.standardize.email import standardize_email

LOCAL = st.text(alphabet="abcxyz0189._-+'", min_size=1, max_size=12)
DOMAIN = st.lists(st.text(alphabet="abqz019-", min_size=1, max_size=8), min_size=1, max_size=3).map(".".join)
TLD = st.sampled_from(["com", "cn", "net", "org", "io", "c", "1com", "co-m", "x1", "123", "test", "local", "c-"])


def library_accepts(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(LOCAL, DOMAIN, TLD)
def test_syntax_agrees_with_email_validator(local: str, domain: str, tld: str) -> None:
    address = f"{local}@{domain}.{tld}"
    ours = standardize_email(address)
    assert (ours.email == address) == library_accepts(address), address


@pytest.mark.parametrize("address", ["zhang.wei@qq.com", "a+b@163.com", "x@mail.company.cn", "o'neil@ex.org"])
def test_common_addresses(address: str) -> None:
    assert standardize_email(address).email == address and library_accepts(address)
