"""Social IDs: WeChat, QQ, Douyin and Kuaishou."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from datafactory_pipelines.standardize.phone import MOBILE
from datafactory_pipelines.standardize.text import EMPTY, INVALID, REPAIRED, VALID, half_width

WECHAT = re.compile(r"[a-z][-_a-z0-9]{5,19}")
QQ = re.compile(r"[1-9]\d{4,10}")
SHORT_VIDEO_ID = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
# A label typed into the cell ("微信: abc123"); needs its colon or space so "wx_abc" stays an ID.
_LABEL = re.compile(r"^(?:微信号?|wechat|wx|qq号?|抖音号?|快手号?|douyin|kuaishou|id)(?:\s*[:：]\s*|\s+)", re.IGNORECASE)
_EXCEL_FLOAT = re.compile(r"\.0+$")


class IdResult(NamedTuple):
    value: str
    status: str
    reason: str


def _prepare(value: str) -> tuple[str, str]:
    raw = value or ""
    text = _LABEL.sub("", half_width(raw).strip()).strip().lstrip("@").strip()
    return raw, text


def _result(raw: str, value: str) -> IdResult:
    return IdResult(value, VALID if raw == value else REPAIRED, "" if raw == value else "format repaired")


@lru_cache(maxsize=1 << 17)
def standardize_wechat(value: str) -> IdResult:
    raw, text = _prepare(value)
    if not text:
        return IdResult("", EMPTY, "")
    text = text.replace(" ", "")
    digits = re.sub(r"\D", "", _EXCEL_FLOAT.sub("", text))
    if digits and len(digits) >= 11 and not re.search(r"[a-zA-Z]", text):
        mobile = digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
        if MOBILE.fullmatch(mobile):  # a WeChat account bound to its mobile number
            return _result(raw, mobile)
    lowered = text.lower()  # WeChat IDs are case-insensitive
    if WECHAT.fullmatch(lowered):
        return _result(raw, lowered)
    return IdResult("", INVALID, "WeChat ID must be 6-20 letters, digits, _ or -, starting with a letter")


@lru_cache(maxsize=1 << 17)
def standardize_qq(value: str) -> IdResult:
    raw, text = _prepare(value)
    if not text:
        return IdResult("", EMPTY, "")
    text = _EXCEL_FLOAT.sub("", text.replace(" ", ""))
    if text.lower().endswith("@qq.com"):
        text = text[:-7]
    if QQ.fullmatch(text):
        return _result(raw, text)
    return IdResult("", INVALID, "QQ number must be 5-11 digits, not starting with 0")


@lru_cache(maxsize=1 << 17)
def standardize_short_video_id(value: str) -> IdResult:
    """Douyin and Kuaishou account IDs (not display nicknames)."""
    raw, text = _prepare(value)
    if not text:
        return IdResult("", EMPTY, "")
    lowered = text.replace(" ", "").lower()
    if SHORT_VIDEO_ID.fullmatch(lowered):
        return _result(raw, lowered)
    return IdResult("", INVALID, "not an account ID (a nickname cannot reach anyone)")
