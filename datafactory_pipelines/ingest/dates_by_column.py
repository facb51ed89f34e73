"""Slash dates whose order only the whole column tells: 3/5/2026 is 5 March in a column that also writes
25/3/2026, and 3 May in one that writes 12/31/2026. The column's values that can be read one way only
decide; a column where every value reads both ways is read month first (as Excel writes it) and the
import says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines.standardize.dates import standardize_date

_SLASH = r"^\s*(?P<first>\d{1,2})\s*[/.-]\s*(?P<second>\d{1,2})\s*[/.-]\s*(?P<year>\d{4})(?:\s|$)"


def day_first(values: pd.Series) -> bool | None:
    """True for D/M/YYYY, False for M/D/YYYY, None when the column holds no such dates."""
    parts = values.astype(str).str.extract(_SLASH).dropna()
    if parts.empty:
        return None
    first, second = parts["first"].astype(int), parts["second"].astype(int)
    return bool((first > 12).sum() > (second > 12).sum())


def read_dates_by_column(frame: pd.DataFrame, roles: list) -> list[str]:
    """Day-first columns' slash dates written as ISO dates (month-first ones read as they are); report notes."""
    column = frame["collected_at"].astype(str)
    slash = np.asarray(pc.match_substring_regex(pa.array(column.to_numpy(), type=pa.string()), _SLASH)
                       .to_numpy(zero_copy_only=False), dtype=bool)  # RE2: a column of ISO dates costs little
    if not slash.any():
        return []
    order = day_first(column[slash])
    if order is None:
        return []
    if order:  # month first is how the standardizer reads them anyway: the file's text is kept then
        distinct = column[slash].unique()
        read = {v: standardize_date(v, day_first=True) for v in distinct}
        frame.loc[slash, "collected_at"] = column[slash].map(lambda v: read[v] or v)
    header = next((r.header for r in roles if r.role == "collected_at"), "the date column")
    told = "some values have a day above 12 in first place" if order else \
        "no value puts a day above 12 first"
    return [f"{int(slash.sum())} dates in {header!r} read as {'D/M/YYYY' if order else 'M/D/YYYY'} ({told})"]
