"""The outbox: every change to a lead that has an owner becomes a message, in the change's own transaction.

`append_outbox` is called where history rows are appended (store/history_append.py, for every lead change:
imports, relinks, merges, edits, decisions, restores, rules). All changes to one lead within one
transaction become ONE message: an outbox row naming the lead, its owner and the range of history rows
behind it. The message (each field's old and new value, why it changed: action, actor, cause such as
the import id, the event id and rule, the conflict or the note) is read from those history rows when it
is delivered; history is append-only, so the message never changes. The message id is derived from the
first history row behind it, so every delivery attempt of it carries the same id.

The hook is set-based (one aggregate and one insert in SQL), so an import that creates 100,000 owned
leads pays for one statement, not for 100,000 JSON documents. Values are masked per endpoint at
delivery unless the endpoint is trusted (see `message_for`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import TYPE_CHECKING

from datafactory_pipelines.masking import PERSONAL_COLUMNS, mask_value
from datafactory_pipelines.store.schema import OUTBOX_COLUMNS  # noqa: F401 - its old import path

if TYPE_CHECKING:  # appending to the outbox needs no frames (a one-lead edit loads no pandas)
    import pandas as pd
    import pyarrow as pa

    from datafactory_pipelines.store.change import StoreChange

log = logging.getLogger(__name__)

MESSAGE_TYPE = "lead.changed"


def message_id_for(lead_id: str, first_key: str) -> str:
    """A stable id, Standard Webhooks style (the same for every attempt and every endpoint).
    Equal to the SQL in store/change_object/outbox.py."""
    return "msg_" + hashlib.sha256(f"{lead_id}|{first_key}".encode()).hexdigest()[:27]


def append_outbox(tx: StoreChange, history_rows: pd.DataFrame | pa.Table) -> int:
    """One outbox message per owned lead among `history_rows` (a frame or Arrow table of history rows; or the
    message this same transaction already wrote for it, extended), inside the change's open transaction.

    The owner is the lead's owner after the change: a lead handed to someone else tells the new owner
    (and names the previous one); a lead whose owner was removed tells the old one.
    Returns the number of leads whose message was written or extended. (The store's history writer calls
    this for every append; the SQL is the store's: store/change_object/outbox.py.)"""
    return tx.append_outbox(history_rows)


def append_outbox_for_seqs(tx: StoreChange, first_seq: int, last_seq: int) -> int:
    """`append_outbox` for history rows first_seq..last_seq already written in this transaction (no frames)."""
    return tx.append_outbox_for_seqs(first_seq, last_seq)


def append_notice(tx: StoreChange, lead_id: str, text: str, actor: str = "rules", cause: str = "") -> int:
    """A note for the lead's owner (a rule's `notify` action), in the change's transaction: it joins the
    message of this transaction's changes to the lead, or is a message of its own. 0 when the lead has
    no owner."""
    return tx.append_notice(lead_id, text, actor, cause)


def build_messages(tx: StoreChange, outbox: pd.DataFrame) -> dict[int, dict]:
    """The full message of each outbox row (outbox columns), its changes read from the history."""
    import pandas as pd

    if outbox.empty:
        return {}
    changes: dict[int, list[dict]] = {}
    for outbox_id, seq, field, old, new, action, actor, cause in tx.outbox_changes(outbox):
        changes.setdefault(int(outbox_id), []).append({
            "seq": int(seq), "field": field, "old": old or "", "new": new or "", "action": action,
            "actor": actor, "cause": cause or ""})
    messages = {}
    for row in outbox.itertuples(index=False):
        message = {"type": MESSAGE_TYPE, "message_id": row.message_id, "lead_id": row.lead_id,
                   "owner": row.owner, "created_at": pd.Timestamp(row.created_at).isoformat(timespec="seconds") + "Z",
                   "changes": changes.get(int(row.outbox_id), []),
                   "notes": json.loads(row.notes) if isinstance(row.notes, str) and row.notes else []}
        if isinstance(row.previous_owner, str) and row.previous_owner:
            message["previous_owner"] = row.previous_owner
        message["fields"] = list(dict.fromkeys(c["field"] for c in message["changes"]))
        message["causes"] = [dict(zip(("action", "actor", "cause"), k, strict=True)) for k in dict.fromkeys(
            [(c["action"], c["actor"], c["cause"]) for c in message["changes"]]
            + [("notify", n["actor"], n["cause"]) for n in message["notes"]])]
        messages[int(row.outbox_id)] = message
    return messages


_DIGITS = re.compile(r"\d{7,}")
# An address starts where a run of non-separators starts (the lookbehind): a match tried from inside a
# long run would scan to the run's end again for every start, quadratic in the run (a 1 MiB title took an
# hour); the possessive `++` never gives back what it took. Same matches as `[^\s@;,]+@[^\s@;,]+`: a
# match from inside a run ends where the one from the run's start does, and the leftmost match wins.
_EMAIL = re.compile(r"(?<![^\s@;,])[^\s@;,]++@[^\s@;,]++")


def mask_free_text(text: str) -> str:
    """Free text (an operator's note, a cause) with long digit runs and email addresses masked."""
    text = _EMAIL.sub(lambda m: mask_value("email", m.group(0)), text)
    return _DIGITS.sub(lambda m: mask_value("mobile", m.group(0)), text)


def message_for(payload: dict, trusted: bool) -> dict:
    """The message an endpoint receives: personal values masked unless the endpoint is trusted."""
    if trusted:
        return {**payload, "masked": False}
    out = dict(payload)
    out["changes"] = [
        {**c, "old": _mask(c["field"], c["old"]), "new": _mask(c["field"], c["new"]),
         "cause": mask_free_text(c["cause"])} for c in payload["changes"]]
    out["causes"] = [{**c, "cause": mask_free_text(c["cause"])} for c in payload.get("causes", [])]
    out["notes"] = [{**n, "text": mask_free_text(n["text"]), "cause": mask_free_text(n["cause"])}
                    for n in payload.get("notes", [])]
    out["masked"] = True
    return out


def _mask(field: str, value: str) -> str:
    if field in PERSONAL_COLUMNS:
        return mask_value(field, value)
    return mask_free_text(value)
