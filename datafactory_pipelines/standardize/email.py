"""Email addresses: trimmed, lower-cased, de-noised, common provider typos repaired."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from datafactory_pipelines.standardize.text import EMPTY, INVALID, REPAIRED, VALID, half_width

# Misspelt domains of the big providers (what operators and forms produce), mapped to the real one.
DOMAIN_TYPOS: dict[str, str] = {
    "qq.con": "qq.com", "qq.cm": "qq.com", "qq.co": "qq.com", "qq.cn": "qq.com", "qq.comm": "qq.com",
    "qq.om": "qq.com", "qqcom": "qq.com", "q.com": "qq.com",
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
ROLE_LOCALS = {
    "info", "sales", "hr", "admin", "service", "support", "contact", "office", "marketing", "market",
    "job", "jobs", "career", "careers", "noreply", "no-reply", "webmaster", "postmaster", "kefu", "help",
    "team", "bd", "business", "pr", "finance", "hello", "mail",
}
EMAIL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                   r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}")
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)


class EmailResult(NamedTuple):
    email: str
    status: str
    reason: str
    is_role: bool


@lru_cache(maxsize=1 << 18)
def standardize_email(value: str) -> EmailResult:
    raw = value or ""
    text = half_width(raw).strip()
    if not text:
        return EmailResult("", EMPTY, "", False)
    text = _MAILTO.sub("", text).strip("<>\"' ").replace(" ", "").lower()
    text = text.replace("。", ".").replace(",", ".") if "@" in text else text
    if text.count("@") != 1:
        return EmailResult("", INVALID, "no single @", False)
    local, domain = text.split("@")
    reasons = []
    if domain in DOMAIN_TYPOS:
        reasons.append(f"domain {domain} -> {DOMAIN_TYPOS[domain]}")
        domain = DOMAIN_TYPOS[domain]
    email = f"{local}@{domain}"
    if not EMAIL.fullmatch(email) or ".." in email:
        return EmailResult("", INVALID, "not a valid address", False)
    is_role = local in ROLE_LOCALS
    if reasons or email != raw:
        return EmailResult(email, REPAIRED, "; ".join(reasons) or "format repaired", is_role)
    return EmailResult(email, VALID, "", is_role)
