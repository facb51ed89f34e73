"""Golden records: one curated lead per cluster, each field chosen by a survivorship rule.

The rules live in `survivorship.yaml` (per field: latest, trusted, most_frequent, most_complete,
latest_spelled_fully). Recency is the collected date, then the import time. The first source is
kept as the lead's source; other distinct mobiles and emails are kept as alternates so nothing
valid is lost; every chosen value records which record, source, date and rule chose it.
The golden values are computed in SQL by the store (`survivorship_sql.golden_sql`); this module
keeps the rules, the provenance and content hash of the leads that changed, and the lead ids.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from datafactory_pipelines.fields import CONTENT_FIELDS


@cache
def survivorship_rules() -> dict:
    text = resources.files("datafactory_pipelines").joinpath("survivorship.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def provenance_array(golden: pd.DataFrame, facts: pd.DataFrame, fields: list[str]) -> pa.ChunkedArray:
    """Per lead of `golden`, JSON: for every field chosen by a rule, the record, source file, row, source,
    date and rule that chose it ("" when no field is). golden: `<field>__record` per field; facts:
    source_file, source_row, source, collected_at, import_time, indexed by record_id (the records of those leads).

    Written as json.dumps writes {"record": …, "file": …, "row": …, "source": …, "at": …, "rule": …}, with each
    record's part built once, a column at a time (a record often holds several chosen values; each distinct
    file, source and date is encoded once), and each field's entries for all leads at once, in Arrow: no
    Python string per lead (at 400k leads the per-lead join and the strings' conversion took ~3 s)."""
    rules = survivorship_rules()["fields"]
    chosen = [golden[field + "__record"].to_numpy(dtype="float64", na_value=np.nan) for field in fields]
    found = [~np.isnan(records) for records in chosen]
    if not fields or not len(golden):
        return pa.chunked_array([pa.array([""] * len(golden), _TEXT)])
    wanted = pd.unique(np.concatenate([records[has] for records, has in zip(chosen, found, strict=True)])
                       .astype(np.int64))
    facts = facts.loc[wanted]
    recency = facts["collected_at"].fillna("").to_numpy(dtype=object)
    undated = recency == ""
    if undated.any():  # the import's date instead
        days = facts["import_time"].to_numpy(dtype="datetime64[ns]")[undated].astype("datetime64[D]")
        recency[undated] = days.astype(str).astype(object)  # str(Timestamp)[:10], without a Timestamp each
    about = pc.binary_join_element_wise(
        pc.cast(pa.array(wanted, pa.int64()), _TEXT), _text(', "file": '),
        _json_texts(facts["source_file"].to_numpy(dtype=object)), _text(', "row": '),
        pc.cast(pa.array(facts["source_row"].to_numpy(dtype=np.int64)), _TEXT), _text(', "source": '),
        _json_texts(np.array([s or "" for s in facts["source"]], dtype=object)), _text(', "at": '),
        _json_texts(recency), _text(""))
    # every lead's text is a run of pieces: per chosen field its head ("{" before the first, ", " before the
    # others), its record's part and its rule; then "}". The pieces are taken from one pool in lead order, so
    # the taken values' bytes are the leads' texts back to back: each lead's text is a range of them.
    count = len(fields)
    heads = [f'{{"{field}": {{"record": ' for field in fields] + [f', "{field}": {{"record": ' for field in fields]
    tails = [f', "rule": {json.dumps(rules.get(field, "latest"), ensure_ascii=False)}}}' for field in fields]
    constants = pa.array([*heads, *tails, "}"], _TEXT)
    pool = pa.concat_arrays([constants, about])
    position = pd.Index(wanted)
    pieces = np.full((len(golden), 3 * count + 1), -1, dtype=np.int32)
    before = np.zeros(len(golden), dtype=bool)  # a field before this one is chosen
    for f, (records, has) in enumerate(zip(chosen, found, strict=True)):
        pieces[has, 3 * f] = np.where(before[has], count + f, f)
        pieces[has, 3 * f + 1] = len(constants) + position.get_indexer(records[has].astype(np.int64))
        pieces[has, 3 * f + 2] = 2 * count + f
        before |= has
    pieces[before, 3 * count] = 3 * count
    present = pieces >= 0
    flat = pieces[present]  # row by row: in lead order
    ends = np.concatenate([[0], np.cumsum(present.sum(axis=1))])
    del pieces, present

    def texts(first: int, last: int) -> pa.LargeStringArray:  # leads first..last-1
        taken = pool.take(pa.array(flat[ends[first]:ends[last]]))
        offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64, count=len(taken) + 1, offset=taken.offset * 8)
        return pa.LargeStringArray.from_buffers(last - first, pa.py_buffer(offsets[ends[first:last + 1] - ends[first]]),
                                                taken.buffers()[2])

    # Arrow's take lets go of the GIL: the parts are taken side by side, one per core
    bounds = np.linspace(0, len(golden), _PARTS + 1).astype(int)
    with ThreadPoolExecutor(max_workers=_PARTS) as pool_of_threads:
        parts = list(pool_of_threads.map(texts, bounds[:-1], bounds[1:]))
    return pa.chunked_array(parts, _TEXT)


_PARTS = max(1, min(4, os.cpu_count() or 1))
_TEXT = pa.large_string()


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, _TEXT)


def _json_texts(values: np.ndarray) -> pa.LargeStringArray:
    """json.dumps (ensure_ascii=False) of each value, each distinct value encoded once."""
    codes, distinct = pd.factorize(values)
    texts = [json.dumps(v, ensure_ascii=False) for v in distinct]
    for i in np.flatnonzero(codes < 0):  # missing values (None, NaN) as json.dumps writes each
        codes[i] = len(texts)
        texts.append(json.dumps(values[i], ensure_ascii=False))
    return pa.array(texts, _TEXT).take(pa.array(codes, pa.int64()))


def content_hash(frame: pd.DataFrame) -> pd.Series:
    """SHA-1 of the lead's content fields (as text, 0x1f-separated): a change to them is a change to the lead."""
    columns = [frame[c].astype(str).tolist() for c in CONTENT_FIELDS]
    return pd.Series([hashlib.sha1("\x1f".join(values).encode("utf-8")).hexdigest() for values in zip(*columns, strict=True)],
                     index=frame.index, dtype=object)


def assign_lead_ids(clusters: pd.DataFrame, previous: pd.Series, next_number: int) -> tuple[pd.DataFrame, dict]:
    """Give each cluster a stable lead id.

    clusters: record_id, cluster_id.  previous: record_id -> lead_id (NaN for new records).
    A cluster keeps the lead id of the records it holds; when it holds several leads (a merge)
    the oldest id survives and the others are recorded as merged into it. A lead whose records
    split keeps its id in the cluster holding most of them.
    Returns (record_id, lead_id) and {retired lead id: surviving lead id}.
    """
    frame = clusters.copy()
    frame["previous"] = previous.reindex(frame["record_id"]).to_numpy()
    owned = frame.dropna(subset=["previous"]).groupby(["previous", "cluster_id"]).size().reset_index(name="n")
    owned = owned.sort_values(["previous", "n", "cluster_id"], ascending=[True, False, True])
    owner = owned.drop_duplicates("previous")  # each old lead id goes to the cluster holding most of it
    keep = owner.sort_values("previous").drop_duplicates("cluster_id")  # oldest id per cluster survives
    cluster_lead = dict(zip(keep["cluster_id"], keep["previous"], strict=True))
    merged = {
        old: cluster_lead[c] for old, c in zip(owner["previous"], owner["cluster_id"], strict=True)
        if cluster_lead[c] != old
    }
    new_clusters = np.sort(frame.loc[~frame["cluster_id"].isin(cluster_lead), "cluster_id"].unique())
    for offset, cluster in enumerate(new_clusters):
        cluster_lead[cluster] = format_lead_id(next_number + offset)
    frame["lead_id"] = frame["cluster_id"].map(cluster_lead)
    return frame[["record_id", "lead_id"]], merged


def format_lead_id(number: int) -> str:
    return f"L{number:08d}"


def lead_number(lead_id: str) -> int:
    return int(lead_id[1:])
