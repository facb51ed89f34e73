"""The outbox: every change to a lead that has an owner becomes a message, in the change's own transaction.

`append_outbox` is called where history rows are appended (the store's one place for every lead change:
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
from typing import TYPE_CHECKING, Any

from datafactory_pipelines.masking import PERSONAL_COLUMNS, mask_value

if TYPE_CHECKING:  # appending to the outbox needs no frames (a one-lead edit loads no pandas)
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

MESSAGE_TYPE = "lead.changed"
OUTBOX_COLUMNS = ["outbox_id", "message_id", "created_at", "lead_id", "owner", "previous_owner", "n_changes",
                  "first_seq", "last_seq", "txn_key", "notes", "routed_at"]


def message_id_for(lead_id: str, first_key: str) -> str:
    """A stable id, Standard Webhooks style (the same for every attempt and every endpoint).
    Equal to the SQL in `append_outbox`."""
    return "msg_" + hashlib.sha256(f"{lead_id}|{first_key}".encode()).hexdigest()[:27]


def _transaction_key(con: Any) -> str:
    """This transaction: its id and start time (ids alone restart when the database is reopened)."""
    txid, began = con.execute("SELECT txid_current(), now()").fetchall()[0]
    return f"{txid}@{began.isoformat()}"


def append_outbox(con: Any, history_rows: pd.DataFrame | pa.Table) -> int:
    """One outbox message per owned lead among `history_rows` (a frame or Arrow table of history rows; or the
    message this same transaction already wrote for it, extended), on the caller's connection, inside its
    open transaction.

    The owner is the lead's owner after the change: a lead handed to someone else tells the new owner
    (and names the previous one); a lead whose owner was removed tells the old one.
    Returns the number of leads whose message was written or extended."""
    if not len(history_rows):
        return 0
    con.register("outbox_history", history_rows)  # the SQL reads seq, lead_id, field, old_value, new_value, hash
    try:
        return _append_outbox_from(con, "outbox_history")
    finally:
        con.unregister("outbox_history")


def append_outbox_for_seqs(con: Any, first_seq: int, last_seq: int) -> int:
    """`append_outbox` for history rows first_seq..last_seq already written in this transaction (no frames)."""
    if last_seq < first_seq:
        return 0
    # read in place, not copied into a temporary table: a dropped table's memory is kept until the transaction
    # ends (a full pass appends the outbox slice by slice: 0.6 GB at 4M history rows)
    return _append_outbox_from(con, f"(SELECT seq, lead_id, field, old_value, new_value, hash FROM history "
                                    f"WHERE seq BETWEEN {int(first_seq)} AND {int(last_seq)})")


def _append_outbox_from(con: Any, history_rows: str) -> int:
    """The outbox rows for the history rows in the relation `history_rows` (seq, lead_id, field, old_value,
    new_value, hash)."""
    key = _transaction_key(con)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE outbox_batch AS
        WITH per_lead AS (
            SELECT lead_id, min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS n_changes,
                   arg_min(hash, seq) AS first_hash,
                   arg_max(new_value, seq) FILTER (WHERE field = 'owner') AS owner_to,
                   arg_min(old_value, seq) FILTER (WHERE field = 'owner') AS owner_from
            FROM {history_rows} GROUP BY lead_id)
        SELECT p.*, coalesce(nullif(p.owner_to, ''), nullif(l.owner, ''), nullif(p.owner_from, '')) AS owner
        FROM per_lead p LEFT JOIN leads l USING (lead_id)""")
    con.execute("DELETE FROM outbox_batch WHERE owner IS NULL")
    con.execute("""
        UPDATE outbox SET owner = b.owner, last_seq = b.last_seq, n_changes = outbox.n_changes + b.n_changes,
               previous_owner = coalesce(outbox.previous_owner,
                   CASE WHEN b.owner_to IS NOT NULL AND b.owner_from <> b.owner THEN b.owner_from END)
        FROM outbox_batch b WHERE outbox.txn_key = ? AND outbox.lead_id = b.lead_id""", [key])
    written = con.execute("SELECT count(*) FROM outbox_batch").fetchall()[0][0]
    con.execute(f"""
        INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)})
        SELECT (SELECT coalesce(max(outbox_id), 0) FROM outbox) + row_number() OVER (ORDER BY b.first_seq),
               'msg_' || substr(sha256(b.lead_id || '|' || b.first_hash), 1, 27),
               timezone('UTC', now()), b.lead_id, b.owner,
               CASE WHEN b.owner_to IS NOT NULL AND b.owner_from <> b.owner THEN nullif(b.owner_from, '') END,
               b.n_changes, b.first_seq, b.last_seq, ?, NULL, NULL
        FROM outbox_batch b
        WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.txn_key = ? AND o.lead_id = b.lead_id)""", [key, key])
    con.execute("DROP TABLE outbox_batch")
    return int(written)


def append_notice(con: Any, lead_id: str, text: str, actor: str = "rules", cause: str = "") -> int:
    """A note for the lead's owner (a rule's `notify` action), in the caller's transaction: it joins the
    message of this transaction's changes to the lead, or is a message of its own. 0 when the lead has
    no owner."""
    found = con.execute("SELECT owner FROM leads WHERE lead_id = ?", [lead_id]).fetchall()
    owner = found[0][0] if found else ""
    if not owner:
        return 0
    key = _transaction_key(con)
    note = {"text": text, "actor": actor, "cause": cause}
    mine = con.execute("SELECT outbox_id, notes FROM outbox WHERE txn_key = ? AND lead_id = ?",
                       [key, lead_id]).fetchall()
    if mine:
        notes = json.loads(mine[0][1] or "[]") + [note]
        con.execute("UPDATE outbox SET notes = ? WHERE outbox_id = ?",
                    [json.dumps(notes, ensure_ascii=False), mine[0][0]])
        return 1
    message_id = message_id_for(lead_id, hashlib.sha256(f"{key}|{text}|{actor}|{cause}".encode()).hexdigest())
    con.execute(f"""
        INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)})
        SELECT (SELECT coalesce(max(outbox_id), 0) + 1 FROM outbox), ?, timezone('UTC', now()), ?, ?, NULL, 0,
               NULL, NULL, ?, ?, NULL""", [message_id, lead_id, owner, key, json.dumps([note], ensure_ascii=False)])
    return 1


def build_messages(con: Any, outbox: pd.DataFrame) -> dict[int, dict]:
    """The full message of each outbox row (outbox columns), its changes read from the history."""
    import pandas as pd

    if outbox.empty:
        return {}
    wanted = outbox[["outbox_id", "lead_id", "first_seq", "last_seq"]].astype(
        {"outbox_id": "int64", "lead_id": str, "first_seq": "Int64", "last_seq": "Int64"})
    con.register("outbox_wanted", wanted)
    try:
        rows = con.execute("""
            SELECT w.outbox_id, h.seq, h.field, h.old_value, h.new_value, h.action, h.actor, h.cause
            FROM outbox_wanted w JOIN history h
              ON h.lead_id = w.lead_id AND h.seq BETWEEN w.first_seq AND w.last_seq
            ORDER BY w.outbox_id, h.seq""").fetchall()
    finally:
        con.unregister("outbox_wanted")
    changes: dict[int, list[dict]] = {}
    for outbox_id, seq, field, old, new, action, actor, cause in rows:
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
