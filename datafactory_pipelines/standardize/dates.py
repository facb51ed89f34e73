"""Collection dates in the shapes operators type them, to ISO dates."""

from __future__ import annotations

import datetime as dt
import re

_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_EXCEL_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def standardize_date(value: str) -> str:
    """'2025/3/7', '2025年3月7日', '20250307', Excel serial 45723 -> '2025-03-07'; '' if unreadable."""
    text = (value or "").strip()
    if not text:
        return ""
    m = _YMD.search(text) or (_COMPACT.fullmatch(text) if len(text) == 8 else None)
    try:
        if m:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        if _EXCEL_SERIAL.fullmatch(text) and 20000 < float(text) < 80000:
            return (_EXCEL_EPOCH + dt.timedelta(days=int(float(text)))).isoformat()
    except ValueError:
        return ""
    return ""
