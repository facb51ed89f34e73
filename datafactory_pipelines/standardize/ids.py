"""Social IDs: WeChat, QQ, Douyin and Kuaishou."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import pyarrow.compute as pc

from datafactory_pipelines.standardize.phone import MOBILE_PATTERN
from datafactory_pipelines.standardize.text import INVALID, as_strings, full_match, pick, status_of, sub

WECHAT_PATTERN = r"[a-z][-_a-z0-9]{5,19}"
QQ_PATTERN = r"[1-9]\d{4,10}"
SHORT_VIDEO_PATTERN = r"[a-z0-9][a-z0-9._-]{1,31}"
# A label typed into the cell ("微信: abc123"); it needs its colon or space, so "wx_abc" stays an ID.
LABEL = r"(?i)^(?:微信号?|wechat|wx|qq号?|抖音号?|快手号?|douyin|kuaishou|id)(?:\s*:\s*|\s+)"


class IdResult(NamedTuple):
    value: str
    status: str
    reason: str


def _prepare(values) -> tuple:
    raw = as_strings(values)
    text = pc.utf8_trim_whitespace(pc.utf8_normalize(raw, form="NFKC"))
    text = sub(sub(text, LABEL, ""), r"^@|\s", "")
    return raw, text


def _frame(prefix: str, raw, value, valid, reason: str) -> pd.DataFrame:
    value = pick(valid, value, "")
    status = status_of(raw, value, pc.invert(valid))
    status_np = status.to_numpy(zero_copy_only=False)
    return pd.DataFrame({
        prefix: value.to_numpy(zero_copy_only=False),
        f"{prefix}_status": status_np,
        f"{prefix}_reason": pd.Series(status_np).map({INVALID: reason}).fillna(""),
    }).astype(object)


def standardize_wechats(values) -> pd.DataFrame:
    raw, text = _prepare(values)
    digits = sub(sub(text, r"\.0+$", ""), r"^(?:\+?86)(1\d{10})$", r"\1")
    bound_to_mobile = full_match(digits, MOBILE_PATTERN)  # a WeChat account found by its mobile number
    lowered = pc.utf8_lower(text)  # WeChat IDs are case-insensitive
    value = pick(bound_to_mobile, digits, lowered)
    valid = pc.or_(bound_to_mobile, full_match(lowered, WECHAT_PATTERN))
    return _frame("wechat", raw, value, valid,
                  "WeChat ID must be 6-20 letters, digits, _ or -, starting with a letter")


def standardize_qqs(values) -> pd.DataFrame:
    raw, text = _prepare(values)
    value = sub(sub(pc.utf8_lower(text), r"\.0+$", ""), r"@qq\.com$", "")
    return _frame("qq", raw, value, full_match(value, QQ_PATTERN), "QQ number must be 5-11 digits, not starting with 0")


def standardize_short_video_ids(values, prefix: str) -> pd.DataFrame:
    """Douyin and Kuaishou account IDs (not display nicknames)."""
    raw, text = _prepare(values)
    value = pc.utf8_lower(text)
    return _frame(prefix, raw, value, full_match(value, SHORT_VIDEO_PATTERN),
                  "not an account ID (a nickname cannot reach anyone)")


def _one(frame: pd.DataFrame) -> IdResult:
    return IdResult(*frame.iloc[0].tolist())


def standardize_wechat(value: str) -> IdResult:
    return _one(standardize_wechats([value]))


def standardize_qq(value: str) -> IdResult:
    return _one(standardize_qqs([value]))


def standardize_short_video_id(value: str) -> IdResult:
    return _one(standardize_short_video_ids([value], "douyin"))
