"""Columns of codes told from columns of contacts by their values alone.

A customer number (C000123), an order number (2026120700017) or a row ID (100001, 100002, …) is not
a WeChat ID or a QQ number, even when each value alone could be one: real accounts vary in length and
shape, while codes share one fixed shape, are unique per row, or count up. Such a column stays an
extra attribute, so no row becomes reachable through it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

MIN_VALUES = 5
_LETTERS = re.compile(r"[A-Za-z]")
_DIGITS = re.compile(r"\d")


def shape_of(value: str) -> str:
    """C000123 -> A999999; 2026-12-07-017 -> 9999-99-99-999: what a code keeps fixed."""
    return _DIGITS.sub("9", _LETTERS.sub("A", value))


def identifier_evidence(sample: pd.Series) -> str:
    """Why these values are codes ('' when they are not)."""
    values = [str(v) for v in sample if str(v)]
    if len(values) < MIN_VALUES:
        return ""
    digits = np.array([sum(c.isdigit() for c in v) for v in values])
    if np.median(digits) < 3:
        return ""
    distinct = len(set(values)) / len(values)
    shapes = pd.Series([shape_of(v) for v in values]).value_counts()
    top_share = shapes.iloc[0] / len(values)
    if distinct >= 0.9 and top_share >= 0.8 and shapes.index[0].count("9") >= 4:
        return f"{top_share:.0%} share one shape ({shapes.index[0]}), {distinct:.0%} distinct"
    numbers = [int(v) for v in values if v.isdigit() and len(v) <= 15]
    if len(numbers) >= 0.8 * len(values) and len(numbers) >= MIN_VALUES:
        steps = np.diff(np.array(numbers, dtype=np.int64))
        if (steps > 0).mean() >= 0.9 and distinct >= 0.9:
            return "the numbers count up row by row"
    return ""
