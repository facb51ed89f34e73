"""The change history: every change to a lead, append-only, each row hash-chained to the one before.

A row's hash is the SHA-256 of its own content and the previous row's hash, so rewriting any row
(or deleting one) breaks every hash after it; `verify_chain` names the first row that does not fit.
Rows are only ever appended, in the same transaction as the change they describe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from datafactory_pipelines.fields import TRACKED_FIELDS

if TYPE_CHECKING:  # frames are imported where used: a one-lead edit appends its rows without pandas
    import pandas as pd
    import pyarrow as pa

HISTORY_COLUMNS = ["seq", "changed_at", "lead_id", "field", "old_value", "new_value", "action", "actor", "cause",
                   "prev_hash", "hash"]
GENESIS = "0" * 64


def row_hash(seq: int, at: str, lead_id: str, field: str, old: str, new: str, action: str, actor: str, cause: str,
             prev_hash: str) -> str:
    text = "\x1f".join([str(seq), at, lead_id, field, old, new, action, actor, cause, prev_hash])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def field_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """lead_id, field, old_value, new_value for every tracked field that differs (a new lead: every set field),
    in (lead_id, field) order."""
    return field_changes_table(before, after).to_pandas()


def chain(changes: pd.DataFrame, first_seq: int, prev_hash: str, at: datetime, action: pd.Series | str, actor: str,
          cause: pd.Series | str) -> pd.DataFrame:
    """History rows for `changes` (lead_id, field, old_value, new_value), numbered from first_seq and chained
    from prev_hash (`action` and `cause`: one for all rows, or one per row)."""
    return chain_frame(changes, first_seq, prev_hash, at, action, actor, cause).to_pandas()


def chain_frame(changes: pd.DataFrame, first_seq: int, prev_hash: str, at: datetime, action: pd.Series | str,
                actor: pd.Series | str, cause: pd.Series | str) -> pa.Table:
    """`chain` of a frame of changes, as the Arrow table the store inserts."""
    import pyarrow as pa

    table = pa.table({name: text_column(changes[name]) for name in ("lead_id", "field", "old_value", "new_value")})
    return chain_table(table, first_seq, prev_hash, at, action if isinstance(action, str) else text_column(action),
                       actor if isinstance(actor, str) else text_column(actor),
                       cause if isinstance(cause, str) else text_column(cause))


def field_changes_table(before: pd.DataFrame, after: pd.DataFrame) -> pa.Table:
    """`field_changes` as an Arrow table (same rows, same order), compared a column at a time in Arrow:
    the full pass's history starts here, for hundreds of thousands of leads."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    after = after.iloc[np.argsort(after["lead_id"].to_numpy(), kind="stable")]  # rows in (lead_id, field) order
    before = before.set_index("lead_id").reindex(after["lead_id"]) if len(before) else None
    lead_ids = text_column(after["lead_id"])
    fields = sorted(field for field in TRACKED_FIELDS if field in after.columns)
    empty = pa.repeat(pa.scalar("", pa.string()), len(after))
    keys, olds, news = [], [], []
    for rank, field in enumerate(fields):
        new = text_column(after[field])
        old = text_column(before[field]) if before is not None and field in before.columns else empty
        changed = np.flatnonzero(pc.not_equal(new, old).to_numpy(zero_copy_only=False))
        if len(changed):
            keys.append(changed * len(fields) + rank)
            olds.append(old.take(changed))
            news.append(new.take(changed))
    if not keys:
        return pa.table({name: pa.array([], pa.string()) for name in ("lead_id", "field", "old_value", "new_value")})
    key = np.concatenate(keys)
    order = np.argsort(key, kind="stable")
    key = key[order]
    return pa.table({"lead_id": lead_ids.take(key // len(fields)),
                     "field": pa.array(fields, pa.string()).take(key % len(fields)),
                     "old_value": pa.concat_arrays(olds).take(order),
                     "new_value": pa.concat_arrays(news).take(order)})


def text_column(values: pd.Series) -> pa.Array:
    """A column as text the way `field_changes` compares it (`fillna("").astype(str)`), as an Arrow array."""
    import pyarrow as pa

    if values.dtype == object:
        try:  # strings and missing values: no Python str() per value
            return pa.array(values.to_numpy(), type=pa.string(), from_pandas=True).fill_null("")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array(values.fillna("").astype(str).to_numpy(), type=pa.string())


def chain_table(changes: pa.Table, first_seq: int, prev_hash: str, at: datetime, action: pa.Array | str,
                actor: str, cause: pa.Array | str) -> pa.Table:
    """`chain` for an Arrow table of changes (lead_id, field, old_value, new_value): the same rows and hashes.

    Each row's text (everything `row_hash` hashes but the previous hash) is built a column at a time in
    Arrow; only the sequential part, SHA-256 over text + previous hash, runs per row, over bytes."""
    import binascii

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    count = changes.num_rows
    seq = pa.array(np.arange(first_seq, first_seq + count, dtype=np.int64))

    def column(value: pa.Array | pa.ChunkedArray | str) -> pa.Array:
        if isinstance(value, str):
            return pa.repeat(pa.scalar(value, pa.string()), count)
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks()
        return value.cast(pa.string()).fill_null("")  # a missing value hashes as "" (as verify_chain reads it)

    lead, field, old, new = (column(changes.column(name)) for name in ("lead_id", "field", "old_value", "new_value"))
    action_column, actor_column, cause_column = column(action), column(actor), column(cause)
    stamp = at.isoformat(timespec="microseconds")
    texts = pc.binary_join_element_wise(seq.cast(pa.string()), stamp, lead, field, old, new, action_column,
                                        actor_column, cause_column, "", "\x1f").cast(pa.binary())
    ends = np.frombuffer(texts.buffers()[1], dtype=np.int32, count=count + 1, offset=texts.offset * 4).tolist()
    data = texts.buffers()[2].to_pybytes() if count else b""
    pieces = [data[start:end] for start, end in zip(ends[:-1], ends[1:], strict=True)]
    del data, texts
    # the chain is sequential: this loop is what a large change waits for, so it does nothing else
    sha256, hexlify = hashlib.sha256, binascii.hexlify
    digests = []
    keep = digests.append
    prev = prev_hash.encode("ascii")
    for piece in pieces:
        prev = hexlify(sha256(piece + prev).digest())
        keep(prev)
    del pieces
    hashes = b"".join(digests)
    del digests
    width = np.arange(0, 64 * (count + 1), 64, dtype=np.int32)
    hash_column = pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(width), pa.py_buffer(hashes)])
    previous = (prev_hash.encode("ascii") + hashes[:-64]) if count else b""
    prev_column = pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(width), pa.py_buffer(previous)])
    moment = pa.array(np.full(count, np.datetime64(at.replace(tzinfo=None), "us")), type=pa.timestamp("us"))
    return pa.table([seq, moment, lead, field, old, new, action_column, actor_column, cause_column, prev_column,
                     hash_column], names=HISTORY_COLUMNS)


def chain_rows(changes: Iterable[tuple[str, str, str, str]], first_seq: int, prev_hash: str, at: datetime,
               action: str, actor: str, cause: str) -> list[tuple]:
    """`chain` for a few rows without frames: (lead_id, field, old, new) -> HISTORY_COLUMNS tuples."""
    stamp = at.isoformat(timespec="microseconds")
    rows = []
    for seq, (lead, field, old, new) in enumerate(changes, start=first_seq):
        digest = row_hash(seq, stamp, lead, field, old, new, action, actor, cause, prev_hash)
        rows.append((seq, at, lead, field, old, new, action, actor, cause, prev_hash, digest))
        prev_hash = digest
    return rows


@dataclass
class ChainCheck:
    rows: int
    head: str
    first_bad_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def verify_chain(history: pd.DataFrame) -> ChainCheck:
    """Walk the history in sequence order; name the first row whose hash or link does not fit."""
    import pandas as pd

    prev = GENESIS
    expected_seq = 1
    for row in history.sort_values("seq").itertuples(index=False):
        if int(row.seq) < expected_seq:
            return ChainCheck(len(history), prev, int(row.seq), f"row {int(row.seq)} appears twice")
        if int(row.seq) != expected_seq:
            return ChainCheck(len(history), prev, expected_seq, f"row {expected_seq} is missing")
        stamp = pd.Timestamp(row.changed_at).to_pydatetime().isoformat(timespec="microseconds")
        if row.prev_hash != prev:
            return ChainCheck(len(history), prev, int(row.seq), "its link to the previous row was changed")
        computed = row_hash(int(row.seq), stamp, row.lead_id, row.field, row.old_value or "", row.new_value or "",
                            row.action, row.actor, row.cause, prev)
        if computed != row.hash:
            return ChainCheck(len(history), prev, int(row.seq), "its content does not match its hash")
        prev = row.hash
        expected_seq += 1
    return ChainCheck(len(history), prev)


def story(history: pd.DataFrame) -> list[str]:
    """A lead's history, readable: one line per change."""
    import pandas as pd

    lines = []
    for row in history.sort_values("seq").itertuples(index=False):
        old = row.old_value or "—"
        new = row.new_value or "—"
        lines.append(f"#{row.seq} {pd.Timestamp(row.changed_at):%Y-%m-%d %H:%M:%S}  {row.field}: {old} → {new}  "
                     f"[{row.action} by {row.actor}{'; ' + row.cause if row.cause else ''}]")
    return lines
