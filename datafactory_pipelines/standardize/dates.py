"""Collection dates in the shapes operators type them, to ISO dates."""

from __future__ import annotations

import datetime as dt
import re

_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_EXCEL_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
# 2026年3月, 2026-03, 2026.3: a month without its day reads as the month's first day
_YEAR_MONTH = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?(?:份)?")
# 3/5/2026: month first unless the column says otherwise (ingest.dates_by_column decides per column)
# 05-Mar-2026, 5 March 2026, Mar 5, 2026, March-05-2026 (an English export; never a WeChat id)
_MONTHS = {m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"])}
_DAY_MONTH_NAME = re.compile(r"(?i)(\d{1,2})(?:st|nd|rd|th)?[-\s/.]*([a-z]{3})[a-z]*\.?[-\s/.,]*(\d{4})")
_MONTH_NAME_DAY = re.compile(r"(?i)([a-z]{3})[a-z]*\.?[-\s/.]*(\d{1,2})(?:st|nd|rd|th)?[-\s/.,]*(\d{4})")
_MDY = re.compile(r"(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})(?!\d)")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def standardize_date(value: str, day_first: bool = False) -> str:
    """'2025/3/7', '2025年3月7日', '2025.3.7', '20250307', Excel serial 45723, '3/7/2025' (month first;
    `day_first` for a column that writes 25/3/2025) -> '2025-03-07'; '2025年3月' -> '2025-03-01';
    '' if unreadable."""
    text = (value or "").strip()
    if not text:
        return ""
    m = _YMD.search(text) or (_COMPACT.fullmatch(text) if len(text) == 8 else None)
    try:
        if m:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        if _EXCEL_SERIAL.fullmatch(text) and 20000 < float(text) < 80000:
            return (_EXCEL_EPOCH + dt.timedelta(days=int(float(text)))).isoformat()
        mdy = _MDY.match(text)
        if mdy:
            first, second, year = int(mdy.group(1)), int(mdy.group(2)), int(mdy.group(3))
            month, day = (second, first) if day_first or first > 12 else (first, second)
            return dt.date(year, month, day).isoformat()
        named = _DAY_MONTH_NAME.match(text) or _MONTH_NAME_DAY.match(text)
        if named:
            day, month = (named.group(1), named.group(2)) if named.re is _DAY_MONTH_NAME else \
                (named.group(2), named.group(1))
            if month.lower() in _MONTHS:
                return dt.date(int(named.group(3)), _MONTHS[month.lower()], int(day)).isoformat()
        ym = _YEAR_MONTH.fullmatch(text)
        if ym:
            return dt.date(int(ym.group(1)), int(ym.group(2)), 1).isoformat()
    except ValueError:
        return ""
    return ""
