"""The outbox's SQL: messages appended in the change's own transaction, and read for delivery.

What a message is (one per owned lead and transaction, its id, its masking) is told in notify/outbox.py;
here is only how the rows are written and read. The hook is set-based (one aggregate and one insert), so
an import that creates 100,000 owned leads pays for one statement, not for 100,000 JSON documents.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import duckdb

from datafactory_pipelines.store.schema import OUTBOX_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def transaction_key(con: duckdb.DuckDBPyConnection) -> str:
    """This transaction: its id and start time (ids alone restart when the database is reopened)."""
    txid, began = con.execute("SELECT txid_current(), now()").fetchall()[0]
    return f"{txid}@{began.isoformat()}"


def append_outbox(con: duckdb.DuckDBPyConnection, history_rows: pd.DataFrame | pa.Table) -> int:
    """One outbox message per owned lead among `history_rows` (a frame or Arrow table of history rows; or the
    message this same transaction already wrote for it, extended), inside the open transaction.

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


def append_outbox_for_seqs(con: duckdb.DuckDBPyConnection, first_seq: int, last_seq: int) -> int:
    """`append_outbox` for history rows first_seq..last_seq already written in this transaction (no frames)."""
    if last_seq < first_seq:
        return 0
    # read in place, not copied into a temporary table: a dropped table's memory is kept until the transaction
    # ends (a full pass appends the outbox slice by slice: 0.6 GB at 4M history rows)
    return _append_outbox_from(con, f"(SELECT seq, lead_id, field, old_value, new_value, hash FROM history "
                                    f"WHERE seq BETWEEN {int(first_seq)} AND {int(last_seq)})")


def _append_outbox_from(con: duckdb.DuckDBPyConnection, history_rows: str) -> int:
    """The outbox rows for the history rows in the relation `history_rows` (seq, lead_id, field, old_value,
    new_value, hash)."""
    key = transaction_key(con)
    con.execute(f"""
        DROP TABLE IF EXISTS outbox_batch;
        CREATE TEMPORARY TABLE outbox_batch AS
        WITH per_lead AS (
            SELECT lead_id, min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS n_changes,
                   arg_min(hash, seq) AS first_hash,
                   arg_max(new_value, seq) FILTER (WHERE field = 'owner') AS owner_to,
                   arg_min(old_value, seq) FILTER (WHERE field = 'owner') AS owner_from
            FROM {history_rows} AS history_rows GROUP BY lead_id)
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


def append_notice(con: duckdb.DuckDBPyConnection, lead_id: str, text: str, actor: str = "rules",
                  cause: str = "") -> int:
    """A note for the lead's owner (a rule's `notify` action), in the open transaction: it joins the
    message of this transaction's changes to the lead, or is a message of its own. 0 when the lead has
    no owner."""
    found = con.execute("SELECT owner FROM leads WHERE lead_id = ?", [lead_id]).fetchall()
    owner = found[0][0] if found else ""
    if not owner:
        return 0
    key = transaction_key(con)
    note = {"text": text, "actor": actor, "cause": cause}
    mine = con.execute("SELECT outbox_id, notes FROM outbox WHERE txn_key = ? AND lead_id = ?",
                       [key, lead_id]).fetchall()
    if mine:
        notes = json.loads(mine[0][1] or "[]") + [note]
        con.execute("UPDATE outbox SET notes = ? WHERE outbox_id = ?",
                    [json.dumps(notes, ensure_ascii=False), mine[0][0]])
        return 1
    first_key = hashlib.sha256(f"{key}|{text}|{actor}|{cause}".encode()).hexdigest()
    message_id = "msg_" + hashlib.sha256(f"{lead_id}|{first_key}".encode()).hexdigest()[:27]  # message_id_for
    con.execute(f"""
        INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)})
        SELECT (SELECT coalesce(max(outbox_id), 0) + 1 FROM outbox), ?, timezone('UTC', now()), ?, ?, NULL, 0,
               NULL, NULL, ?, ?, NULL""", [message_id, lead_id, owner, key, json.dumps([note], ensure_ascii=False)])
    return 1


def outbox_changes(con: duckdb.DuckDBPyConnection, outbox: pd.DataFrame) -> list[tuple]:
    """(outbox_id, seq, field, old_value, new_value, action, actor, cause) of the history rows behind each
    outbox row (outbox_id, lead_id, first_seq, last_seq), in outbox and sequence order."""
    wanted = outbox[["outbox_id", "lead_id", "first_seq", "last_seq"]].astype(
        {"outbox_id": "int64", "lead_id": str, "first_seq": "Int64", "last_seq": "Int64"})
    con.register("outbox_wanted", wanted)
    try:
        return con.execute("""
            SELECT w.outbox_id, h.seq, h.field, h.old_value, h.new_value, h.action, h.actor, h.cause
            FROM outbox_wanted w JOIN history h
              ON h.lead_id = w.lead_id AND h.seq BETWEEN w.first_seq AND w.last_seq
            ORDER BY w.outbox_id, h.seq""").fetchall()
    finally:
        con.unregister("outbox_wanted")
