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

HISTORY_COLUMNS = ["seq", "changed_at", "lead_id", "field", "old_value", "new_value", "action", "actor", "cause",
                   "prev_hash", "hash"]
GENESIS = "0" * 64


def row_hash(seq: int, at: str, lead_id: str, field: str, old: str, new: str, action: str, actor: str, cause: str,
             prev_hash: str) -> str:
    text = "\x1f".join([str(seq), at, lead_id, field, old, new, action, actor, cause, prev_hash])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def field_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """lead_id, field, old_value, new_value for every tracked field that differs (a new lead: every set field)."""
    import pandas as pd

    after = after.set_index("lead_id")
    before = before.set_index("lead_id").reindex(after.index)
    parts = []
    for field in TRACKED_FIELDS:
        if field not in after.columns:
            continue
        new = after[field].fillna("").astype(str)
        old = before[field].fillna("").astype(str) if field in before.columns else pd.Series("", index=after.index)
        changed = new.to_numpy() != old.to_numpy()
        if changed.any():
            parts.append(pd.DataFrame({"lead_id": after.index[changed], "field": field,
                                       "old_value": old.to_numpy()[changed], "new_value": new.to_numpy()[changed]}))
    if not parts:
        return pd.DataFrame(columns=["lead_id", "field", "old_value", "new_value"])
    return pd.concat(parts, ignore_index=True).sort_values(["lead_id", "field"], ignore_index=True)


def chain(changes: pd.DataFrame, first_seq: int, prev_hash: str, at: datetime, action: pd.Series | str, actor: str,
          cause: pd.Series | str) -> pd.DataFrame:
    """History rows for `changes`, numbered from first_seq and chained from prev_hash (`action` and `cause`:
    one for all rows, or one per row)."""
    import numpy as np

    rows = changes.copy()
    rows["seq"] = np.arange(first_seq, first_seq + len(rows), dtype=np.int64)
    rows["changed_at"] = at
    rows["action"] = action
    rows["actor"] = actor
    rows["cause"] = cause
    stamp = at.isoformat(timespec="microseconds")
    # row_hash's text without the previous hash, made for every row first; then one hash per row in a
    # tight loop (the chain is sequential, so that loop is what a large change waits for)
    texts = [f"{seq}\x1f{stamp}\x1f{lead}\x1f{field}\x1f{old}\x1f{new}\x1f{act}\x1f{actor}\x1f{why}\x1f"
             for seq, lead, field, old, new, act, why in zip(range(first_seq, first_seq + len(rows)),
                                                              rows["lead_id"].tolist(), rows["field"].tolist(),
                                                              rows["old_value"].tolist(), rows["new_value"].tolist(),
                                                              rows["action"].tolist(), rows["cause"].tolist(),
                                                              strict=True)]
    sha256 = hashlib.sha256
    hashes, prevs = [], []
    for text in texts:
        prevs.append(prev_hash)
        prev_hash = sha256((text + prev_hash).encode("utf-8")).hexdigest()
        hashes.append(prev_hash)
    rows["prev_hash"] = prevs
    rows["hash"] = hashes
    return rows[HISTORY_COLUMNS]


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
