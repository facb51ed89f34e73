"""Standardize raw lead rows, column by column, vectorized (Arrow compute, RE2) (`standardize_frame`).

``standardize_frame`` keeps each raw value beside its standardized value, a status
(valid / repaired / invalid / empty) and a reason for the contact fields and the name, and decides
whether the row can reach anyone at all. Rows that cannot are kept, ``reachable = False``, with
the reason. Low-cardinality fields (titles, dates, sources) are mapped once per distinct value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines import CANONICAL_FIELDS
from datafactory_pipelines.fields import CONTACT_COLUMNS, STANDARD_COLUMNS
from datafactory_pipelines.standardize.address import standardize_addresses
from datafactory_pipelines.standardize.company import standardize_companies
from datafactory_pipelines.standardize.dates import standardize_date
from datafactory_pipelines.standardize.email import standardize_emails
from datafactory_pipelines.standardize.house_numbers import OWN_NUMBER_REASON, drop_house_numbers
from datafactory_pipelines.standardize.ids import (
    standardize_qqs,
    standardize_short_video_ids,
    standardize_wechats,
)
from datafactory_pipelines.standardize.name import standardize_names
from datafactory_pipelines.standardize.owner import standardize_owners
from datafactory_pipelines.standardize.phone import standardize_phones
from datafactory_pipelines.standardize.text import as_strings, map_unique, normalize
from datafactory_pipelines.standardize.title import standardize_title


def standardize_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw lead rows (canonical columns of strings) -> the standardized columns."""
    raw = raw.reset_index(drop=True)
    column = {f: raw[f] if f in raw.columns else pd.Series("", index=raw.index) for f in CANONICAL_FIELDS}
    jobs = [
        (standardize_names, column["name"]),
        (standardize_phones, column["mobile"]),
        (standardize_emails, column["email"]),
        (standardize_wechats, column["wechat"]),
        (standardize_qqs, column["qq"]),
        (partial(standardize_short_video_ids, prefix="douyin"), column["douyin"]),
        (partial(standardize_short_video_ids, prefix="kuaishou"), column["kuaishou"]),
        (standardize_companies, column["company"]),
        (standardize_addresses, column["address"]),
    ]
    # Arrow compute releases the GIL, so the fields standardize side by side on all cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        parts = list(pool.map(lambda job: per_distinct_value(job[0], job[1]), jobs))
    out: dict[str, np.ndarray] = {k: v for part in parts for k, v in part.items()}
    out["title"] = _objects(map_unique(as_strings(column["title"]), standardize_title))
    out["source"] = _objects(_each_distinct(normalize, as_strings(column["source"])))
    out["collected_at"] = _objects(map_unique(as_strings(column["collected_at"]), standardize_date))
    out["owner"] = _objects(_each_distinct(standardize_owners, as_strings(column["owner"])))
    before = np.logical_or.reduce([out[c] != "" for c in CONTACT_COLUMNS])
    ours = drop_house_numbers(out)  # the seller's hotline on most rows reaches nobody of theirs
    out["reachable"] = np.logical_or.reduce([out[c] != "" for c in CONTACT_COLUMNS])
    out["reject_reason"] = _reject_reasons(out)
    if ours:
        lost = before & ~out["reachable"]
        out["reject_reason"][lost] = f"no reachable contact: {OWN_NUMBER_REASON}"
    frame = pd.DataFrame({c: out[c] for c in STANDARD_COLUMNS}, copy=False)
    frame.attrs["house_numbers"] = ours
    return frame


def _each_distinct(clean: Callable[[pa.Array], pa.Array], values: pa.Array) -> pa.Array:
    """A value-by-value cleaning run once per distinct value (a source or owner column repeats a few)."""
    encoded = values.dictionary_encode()
    return pc.take(clean(encoded.dictionary), encoded.indices)


def _objects(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def per_distinct_value(standardizer: Callable[[pa.Array], pd.DataFrame], values: pd.Series) -> dict[str, np.ndarray]:
    """Run a standardizer on the distinct values only, then spread the result back over the rows."""
    encoded = as_strings(values).dictionary_encode()
    result = standardizer(encoded.dictionary)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return {col: result[col].to_numpy()[indices] for col in result.columns}


def _reject_reasons(std: dict[str, np.ndarray]) -> np.ndarray:
    """Why an unreachable row reaches nobody, without repeating the personal data itself."""
    reasons = np.full(len(std["reachable"]), "", dtype=object)
    for i in np.flatnonzero(~std["reachable"]):  # a few percent of rows
        details = [
            f"{field} invalid" + (f" ({std[f'{field}_reason'][i]})" if std[f"{field}_reason"][i] else "")
            for field in ("mobile", "email", "wechat", "qq", "douyin", "kuaishou")
            if std[f"{field}_status"][i] == "invalid"
        ]
        reasons[i] = "no reachable contact" + (": " + "; ".join(details) if details else "")
    return reasons


__all__ = ["CONTACT_COLUMNS", "STANDARD_COLUMNS", "standardize_frame"]
