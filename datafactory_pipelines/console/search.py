"""What a search box's text is looked up as: the standardized keys a lead's records and golden values keep.

A phone is standardized as an import standardizes it (so "138 0013 8000" and "+86 13800138000" both find
13800138000), an email is lower-cased, a name is looked up as typed, by its key and by its pinyin
("zhangwei", "zhang wei" and "Zhang Wei" find 张伟), a company by its spelling and its entity key
("星海科技" finds 深圳星海科技有限公司). Every lookup is an equality on one column: no scan of every
lead's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from datafactory_pipelines.store import LeadStore

_DIGITS = re.compile(r"[\d\s+()\-]{5,}")
_LEAD_ID = re.compile(r"^L\d{5,}$")


@dataclass
class SearchKeys:
    records: dict[str, list[str]] = field(default_factory=dict)
    leads: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: dict[str, list[str]], column: str, value: str) -> None:
        if value and value not in where.setdefault(column, []):
            where[column].append(value)


def search_keys(text: str) -> SearchKeys:
    text = text.strip()[:200]
    keys = SearchKeys()
    if not text:
        return keys
    if _LEAD_ID.match(text.upper()):
        keys.add(keys.leads, "lead_id", text.upper())
        return keys
    if "@" in text:
        from datafactory_pipelines.standardize.email import standardize_email

        email = standardize_email(text)[0] or text.lower()
        keys.add(keys.records, "email", email)
        keys.add(keys.leads, "email", email)
        return keys
    if _DIGITS.fullmatch(text):
        from datafactory_pipelines.standardize.phone import standardize_phone

        phone = standardize_phone(text)
        for column in ("mobile", "landline"):
            number = getattr(phone, column) or ""
            keys.add(keys.records, column, number)
            keys.add(keys.leads, column, number)
        digits = re.sub(r"\D", "", text)
        keys.add(keys.records, "qq", digits)  # a QQ number is digits too
        keys.add(keys.leads, "qq", digits)
        keys.add(keys.records, "wechat", text.strip())
        return keys
    from datafactory_pipelines.standardize.company import standardize_company
    from datafactory_pipelines.standardize.name import standardize_name

    name = standardize_name(text)
    typed_pinyin = re.sub(r"[^a-z]", "", text.lower())
    for column, value in (("name", text), ("name", name.name), ("name_key", name.key),
                          ("name_pinyin", typed_pinyin if len(typed_pinyin) >= 2 else ""),
                          ("name_pinyin", name.pinyin), ("name_roman", " ".join(text.lower().split()))):
        keys.add(keys.records, column, value)
    keys.add(keys.leads, "name", text)
    company = standardize_company(text)
    keys.add(keys.records, "company", company.company)
    keys.add(keys.records, "company_key", company.key)
    keys.add(keys.leads, "company", text)
    for column in ("wechat", "douyin", "kuaishou"):
        keys.add(keys.records, column, text)
        keys.add(keys.leads, column, text)
    return keys


def find_leads(store: LeadStore, text: str, limit: int = 50) -> list[dict]:
    keys = search_keys(text)
    return store.find_leads(keys.records, keys.leads, limit=limit)
