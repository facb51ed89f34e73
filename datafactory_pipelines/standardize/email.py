"""Email addresses: trimmed, lower-cased, de-noised, common provider typos repaired."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from email_validator.rfc_constants import EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH

from datafactory_pipelines.standardize.text import (
    INVALID,
    REPAIRED,
    as_strings,
    contains,
    full_match,
    pick,
    status_of,
    sub,
)

# Misspelt domains of the big providers (what operators and forms produce), mapped to the real one.
DOMAIN_TYPOS: dict[str, str] = {
    "qq.con": "qq.com", "qq.cm": "qq.com", "qq.co": "qq.com", "qq.comm": "qq.com",
    "qq.om": "qq.com", "qqcom": "qq.com",
    "163.con": "163.com", "163.cm": "163.com", "163.co": "163.com", "163.comm": "163.com", "163com": "163.com",
    "126.con": "126.com", "126.cm": "126.com", "126.co": "126.com", "126com": "126.com",
    "gmial.com": "gmail.com", "gmai.com": "gmail.com", "gmail.con": "gmail.com", "gmail.cm": "gmail.com",
    "gamil.com": "gmail.com", "gmaill.com": "gmail.com", "gmail.co": "gmail.com", "gnail.com": "gmail.com",
    "sina.con": "sina.com", "sina.cn.com": "sina.com", "sian.com": "sina.com",
    "foxmail.con": "foxmail.com", "foxmal.com": "foxmail.com", "foxmial.com": "foxmail.com",
    "outlok.com": "outlook.com", "outlook.con": "outlook.com", "outllook.com": "outlook.com",
    "hotmail.con": "hotmail.com", "hotmial.com": "hotmail.com", "hotmai.com": "hotmail.com",
    "yahoo.con": "yahoo.com", "yaho.com": "yahoo.com", "sohu.con": "sohu.com", "139.con": "139.com",
    "aliyun.con": "aliyun.com", "icloud.con": "icloud.com",
}
ROLE_LOCALS = [
    "info", "sales", "hr", "admin", "service", "support", "contact", "office", "marketing", "market",
    "job", "jobs", "career", "careers", "noreply", "no-reply", "webmaster", "postmaster", "kefu", "help",
    "team", "bd", "business", "pr", "finance", "hello", "mail", "enquiry", "inquiry",
]
# The syntax email-validator accepts for ordinary (ASCII, non-quoted) addresses; the tests hold the two
# in agreement. No DNS: a typo'd domain is repaired by the table above, not looked up.
LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = f"(?:{LABEL}\\.)+(?:[a-z]|[a-z0-9][a-z0-9-]{{0,61}}[a-z])"  # every TLD ends with a letter
# Domains that never deliver (localhost, *.test, *.invalid …), as email-validator lists them.
SPECIAL_USE = "|".join(d.replace(".", r"\.") for d in SPECIAL_USE_DOMAIN_NAMES)
EMAIL_PATTERN = f"{LOCAL}@{DOMAIN}"


class EmailResult(NamedTuple):
    email: str
    status: str
    reason: str
    is_role: bool


def standardize_emails(values) -> pd.DataFrame:
    """Raw email cells -> email, email_status, email_reason, email_role."""
    raw = as_strings(values)
    text = pc.utf8_lower(pc.utf8_normalize(raw, form="NFKC"))  # NFKC turns ＠ into @
    text = sub(text, r"^\s*mailto:", "")
    text = sub(text, r"\s", "")
    for quoted in (r'^"(.*)"$', r"^'(.*)'$", r"^<(.*)>$"):  # "<a@b.com>" and quoted cells
        text = sub(text, quoted, r"\1")
    text = sub(text, r"[。,，](\w+)$", r".\1")  # "qq,com", "163。com"
    parts = pc.extract_regex(text, r"^(?P<local>[^@]*)@(?P<domain>[^@]*)$")
    local = pc.fill_null(pc.struct_field(parts, [0]), "")
    typed_domain = pc.fill_null(pc.struct_field(parts, [1]), "")
    fixed = pc.take(pa.array(list(DOMAIN_TYPOS.values())),
                    pc.index_in(typed_domain, value_set=pa.array(list(DOMAIN_TYPOS))))
    repaired_domain = pc.is_valid(fixed)
    domain = pc.coalesce(fixed, typed_domain)
    email = pc.binary_join_element_wise(local, domain, "@")
    valid = pc.and_(full_match(email, EMAIL_PATTERN), pc.invert(contains(domain, f"(?:^|\\.)(?:{SPECIAL_USE})$")))
    # RFC 5890: "ab--" starts only Punycode labels ("xn--")
    valid = pc.and_(valid, pc.invert(contains(domain, r"(?:^|\.)(?:[^x.][^.]|x[^n.])--")))
    valid = pc.and_(valid, pc.and_(pc.less_equal(pc.utf8_length(local), LOCAL_PART_MAX_LENGTH),
                                   pc.less_equal(pc.utf8_length(email), EMAIL_MAX_LENGTH)))
    email = pick(valid, email, "")
    status = status_of(raw, email, pc.invert(valid))
    one_at = pc.equal(pc.count_substring(text, "@"), 1)
    reason = pick(pc.equal(status, INVALID), pick(one_at, "not a valid address", "no single @"), "")
    typo_reason = pc.binary_join_element_wise("domain ", typed_domain, " -> ", domain, "")
    reason = pick(pc.equal(status, REPAIRED), pick(repaired_domain, typo_reason, "format repaired"), reason)
    role = pc.and_(valid, pc.is_in(local, value_set=pa.array(ROLE_LOCALS)))
    return pd.DataFrame({
        "email": email.to_numpy(zero_copy_only=False),
        "email_status": status.to_numpy(zero_copy_only=False),
        "email_reason": reason.to_numpy(zero_copy_only=False),
        "email_role": role.to_numpy(zero_copy_only=False).astype(bool),
    }).astype({"email": object, "email_status": object, "email_reason": object})


def standardize_email(value: str) -> EmailResult:
    row = standardize_emails([value]).iloc[0]
    return EmailResult(row["email"], row["email_status"], row["email_reason"], bool(row["email_role"]))
