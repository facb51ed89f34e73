"""Standardize raw lead rows: one function per field kind, applied once per distinct value.

``standardize_frame`` keeps each raw value (``*_raw``) beside its standardized value, a status
(valid / repaired / invalid / empty) for the contact fields, and decides whether the row can
reach anyone at all. Rows that cannot are kept, flagged ``reachable = False`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from datafactory_pipelines import CANONICAL_FIELDS
from datafactory_pipelines.standardize.address import standardize_address
from datafactory_pipelines.standardize.company import standardize_company
from datafactory_pipelines.standardize.dates import standardize_date
from datafactory_pipelines.standardize.email import standardize_email
from datafactory_pipelines.standardize.ids import (
    standardize_qq,
    standardize_short_video_id,
    standardize_wechat,
)
from datafactory_pipelines.standardize.name import standardize_name
from datafactory_pipelines.standardize.phone import standardize_phone
from datafactory_pipelines.standardize.text import clean_text
from datafactory_pipelines.standardize.title import standardize_title

STANDARD_COLUMNS = [
    "name", "name_key", "name_pinyin", "name_partial", "salutation", "name_status",
    "mobile", "mobile_alternates", "landline", "mobile_status", "mobile_reason",
    "email", "email_status", "email_reason", "email_role",
    "wechat", "wechat_status", "qq", "qq_status", "douyin", "douyin_status", "kuaishou", "kuaishou_status",
    "company", "company_key", "title", "address", "province", "city", "district",
    "source", "collected_at", "reachable", "reject_reason",
]


def _apply(values: pd.Series, fn: Callable[[str], Any], names: Sequence[str]) -> pd.DataFrame:
    """Run a standardizer once per distinct value and spread its tuple into columns."""
    codes, uniques = pd.factorize(values.fillna("").astype(str), sort=False)
    results = [fn(u) for u in uniques]
    if not results:
        return pd.DataFrame({n: pd.Series([], dtype=object) for n in names})
    table = pd.DataFrame(results, columns=list(names)) if isinstance(results[0], tuple) else \
        pd.DataFrame({names[0]: results})
    return table.iloc[codes].reset_index(drop=True)


def standardize_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw lead rows (canonical columns of strings) -> raw + standardized columns."""
    raw = raw.reset_index(drop=True)
    for f in CANONICAL_FIELDS:
        if f not in raw.columns:
            raw[f] = ""
    out = pd.DataFrame(index=raw.index)
    name = _apply(raw["name"], standardize_name,
                  ["name", "salutation", "name_partial", "name_key", "name_pinyin", "name_status", "name_reason"])
    phone = _apply(raw["mobile"], standardize_phone,
                   ["mobile", "mobile_alternates", "landline", "mobile_status", "mobile_reason"])
    email = _apply(raw["email"], standardize_email, ["email", "email_status", "email_reason", "email_role"])
    wechat = _apply(raw["wechat"], standardize_wechat, ["wechat", "wechat_status", "wechat_reason"])
    qq = _apply(raw["qq"], standardize_qq, ["qq", "qq_status", "qq_reason"])
    douyin = _apply(raw["douyin"], standardize_short_video_id, ["douyin", "douyin_status", "douyin_reason"])
    kuaishou = _apply(raw["kuaishou"], standardize_short_video_id, ["kuaishou", "kuaishou_status", "kuaishou_reason"])
    company = _apply(raw["company"], standardize_company, ["company", "company_key"])
    address = _apply(raw["address"], standardize_address, ["address", "province", "city", "district"])
    for part in (name, phone, email, wechat, qq, douyin, kuaishou, company, address):
        for col in part.columns:
            out[col] = part[col].to_numpy()
    out["title"] = _apply(raw["title"], standardize_title, ["title"])["title"].to_numpy()
    out["source"] = _apply(raw["source"], clean_text, ["source"])["source"].to_numpy()
    out["collected_at"] = _apply(raw["collected_at"], standardize_date, ["collected_at"])["collected_at"].to_numpy()
    out["name_partial"] = out["name_partial"].astype(bool)
    out["email_role"] = out["email_role"].astype(bool)

    contacts = ["mobile", "landline", "email", "wechat", "qq", "douyin", "kuaishou"]
    out["reachable"] = (out[contacts] != "").any(axis=1)
    out["reject_reason"] = _reject_reasons(raw, out)
    return out[STANDARD_COLUMNS]


def _reject_reasons(raw: pd.DataFrame, std: pd.DataFrame) -> pd.Series:
    """Why an unreachable row reaches nobody, without repeating the personal data itself."""
    reasons = pd.Series("", index=std.index, dtype=object)
    unreachable = ~std["reachable"]
    if not unreachable.any():
        return reasons
    parts = []
    for field, status_col, reason_col in [
        ("mobile", "mobile_status", "mobile_reason"), ("email", "email_status", "email_reason"),
        ("wechat", "wechat_status", None), ("qq", "qq_status", None),
        ("douyin", "douyin_status", None), ("kuaishou", "kuaishou_status", None),
    ]:
        status = std[status_col]
        text = field + " " + status
        if reason_col:
            text = text.where(std[reason_col] == "", text + " (" + std[reason_col] + ")")
        parts.append(text.where(status == "invalid", ""))
    joined = pd.concat(parts, axis=1).apply(lambda r: "; ".join(x for x in r if x), axis=1)
    reasons[unreachable] = "no reachable contact"
    has_detail = unreachable & (joined != "")
    reasons[has_detail] = "no reachable contact: " + joined[has_detail]
    return reasons
