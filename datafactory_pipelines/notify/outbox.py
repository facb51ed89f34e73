"""The outbox: every change to a lead that has an owner becomes a message, in the change's own transaction.

`append_outbox` is called where history rows are appended (the store's one place for every lead change:
imports, relinks, merges, edits, decisions, restores, rules). All changes to one lead within one
transaction become ONE message listing each field's old and new value, why it changed (action, actor,
cause: import id, event id and rule, conflict, note) and the owner. The message id is derived from the
first history row behind it, so it is stable: every delivery attempt of it carries the same id.

Values are stored in full (the store holds them anyway); each endpoint gets them masked unless it is
trusted (see `message_for`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime
from typing import Any

import pandas as pd

from datafactory_pipelines.masking import PERSONAL_COLUMNS, mask_value

log = logging.getLogger(__name__)

MESSAGE_TYPE = "lead.changed"
OUTBOX_COLUMNS = ["outbox_id", "message_id", "created_at", "lead_id", "owner", "n_changes", "first_seq", "last_seq",
                  "txn_key", "payload", "routed_at"]


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def message_id_for(lead_id: str, first_hash: str) -> str:
    """A stable id, Standard Webhooks style: the same for every attempt and every endpoint."""
    return "msg_" + hashlib.sha256(f"{lead_id}|{first_hash}".encode()).hexdigest()[:27]


def append_outbox(con: Any, history_rows: pd.DataFrame) -> int:
    """Write (or extend) one outbox message per owned lead among `history_rows`, on the caller's
    connection, inside its open transaction. Returns the number of messages written or extended."""
    if history_rows.empty:
        return 0
    rows = history_rows.sort_values("seq")
    lead_ids = rows["lead_id"].drop_duplicates()
    con.register("outbox_lead_ids", pd.DataFrame({"lead_id": lead_ids.to_numpy()}))
    try:
        stored = dict(con.execute(
            "SELECT lead_id, owner FROM leads WHERE lead_id IN (SELECT lead_id FROM outbox_lead_ids) "
            "AND coalesce(owner, '') <> ''").fetchall())
    finally:
        con.unregister("outbox_lead_ids")
    owner_rows = rows[rows["field"] == "owner"]
    changed_to = owner_rows.groupby("lead_id", sort=False)["new_value"].last().to_dict()
    changed_from = owner_rows.groupby("lead_id", sort=False)["old_value"].first().to_dict()
    owners: dict[str, tuple[str, str]] = {}
    for lead in lead_ids:
        previous = changed_from.get(lead, "") or ""
        # a lead handed to a new owner tells the new one; a lead whose owner was removed tells the old one
        owner = changed_to.get(lead) or stored.get(lead) or previous
        if owner:
            owners[lead] = (owner, previous if lead in changed_to and previous != owner else "")
    if not owners:
        return 0
    rows = rows[rows["lead_id"].isin(list(owners))]
    changes: dict[str, list[dict]] = {}
    first_hash: dict[str, str] = {}
    for seq, lead, field, old, new, action, actor, cause, hash_ in zip(
            rows["seq"], rows["lead_id"], rows["field"], rows["old_value"], rows["new_value"], rows["action"],
            rows["actor"], rows["cause"], rows["hash"], strict=True):
        changes.setdefault(lead, []).append({"seq": int(seq), "field": field, "old": old or "", "new": new or "",
                                             "action": action, "actor": actor, "cause": cause or ""})
        first_hash.setdefault(lead, hash_)
    return _write_messages(con, owners, changes, {}, first_hash)


def append_notice(con: Any, lead_id: str, text: str, actor: str = "rules", cause: str = "") -> int:
    """A note for the lead's owner (a rule's `notify` action), in the caller's transaction: it joins the
    message of this transaction's changes to the lead, or is a message of its own. 0 when the lead has
    no owner."""
    found = con.execute("SELECT owner FROM leads WHERE lead_id = ?", [lead_id]).fetchall()
    owner = found[0][0] if found else ""
    if not owner:
        return 0
    note = {"text": text, "actor": actor, "cause": cause}
    key = hashlib.sha256(f"{lead_id}|{text}|{actor}|{cause}".encode()).hexdigest()
    return _write_messages(con, {lead_id: (owner, "")}, {}, {lead_id: [note]}, {lead_id: key})


def _write_messages(con: Any, owners: dict[str, tuple[str, str]], changes: dict[str, list[dict]],
                    notes: dict[str, list[dict]], first_key: dict[str, str]) -> int:
    """Insert one message per lead, or extend the one this same transaction already wrote."""
    txid, began = con.execute("SELECT txid_current(), now()").fetchall()[0]
    txn_key = f"{txid}@{pd.Timestamp(began).isoformat()}"  # the transaction: its id and start time
    moment = pd.Timestamp(began)
    now = (moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment).to_pydatetime()
    leads = list(dict.fromkeys([*changes, *notes]))
    con.register("outbox_lead_ids", pd.DataFrame({"lead_id": leads}))
    try:
        earlier = {lead: (outbox_id, json.loads(payload)) for outbox_id, lead, payload in con.execute(
            "SELECT outbox_id, lead_id, payload FROM outbox WHERE txn_key = ? "
            "AND lead_id IN (SELECT lead_id FROM outbox_lead_ids)", [txn_key]).fetchall()}
    finally:
        con.unregister("outbox_lead_ids")
    fresh = []
    for lead in leads:
        owner, previous = owners[lead]
        if lead in earlier:  # the same transaction changed this lead before: one message, extended
            outbox_id, payload = earlier[lead]
            payload["changes"].extend(changes.get(lead, []))
            payload.setdefault("notes", []).extend(notes.get(lead, []))
            payload["owner"] = owner
            if previous and not payload.get("previous_owner"):
                payload["previous_owner"] = previous
            _summarize(payload)
            seqs = [c["seq"] for c in payload["changes"]]
            con.execute("UPDATE outbox SET owner = ?, n_changes = ?, first_seq = ?, last_seq = ?, payload = ? "
                        "WHERE outbox_id = ?", [owner, len(seqs), min(seqs, default=None), max(seqs, default=None),
                                                json.dumps(payload, ensure_ascii=False), outbox_id])
            continue
        payload = {"type": MESSAGE_TYPE, "message_id": message_id_for(lead, first_key[lead]), "lead_id": lead,
                   "owner": owner, "created_at": _iso(now), "changes": changes.get(lead, []),
                   "notes": notes.get(lead, [])}
        if previous:
            payload["previous_owner"] = previous
        _summarize(payload)
        fresh.append(payload)
    if fresh:
        start = con.execute("SELECT coalesce(max(outbox_id), 0) + 1 FROM outbox").fetchall()[0][0]
        seqs = [[c["seq"] for c in p["changes"]] for p in fresh]
        frame = pd.DataFrame({
            "outbox_id": range(start, start + len(fresh)),
            "message_id": [p["message_id"] for p in fresh],
            "created_at": now,
            "lead_id": [p["lead_id"] for p in fresh],
            "owner": [p["owner"] for p in fresh],
            "n_changes": [len(s) for s in seqs],
            "first_seq": pd.array([min(s, default=None) for s in seqs], dtype="Int64"),
            "last_seq": pd.array([max(s, default=None) for s in seqs], dtype="Int64"),
            "txn_key": txn_key,
            "payload": [json.dumps(p, ensure_ascii=False) for p in fresh],
            "routed_at": pd.Series([None] * len(fresh), dtype="datetime64[us]"),
        })[OUTBOX_COLUMNS]
        con.register("outbox_rows", frame)
        try:
            con.execute(f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)}) SELECT * FROM outbox_rows")
        finally:
            con.unregister("outbox_rows")
    log.debug("outbox: %d new message(s), %d extended", len(fresh), len(leads) - len(fresh))
    return len(leads)


def _summarize(payload: dict) -> None:
    """The fields changed and the distinct causes, for readers who do not want every row."""
    payload["fields"] = list(dict.fromkeys(c["field"] for c in payload["changes"]))
    payload["causes"] = [dict(zip(("action", "actor", "cause"), key, strict=True)) for key in dict.fromkeys(
        [(c["action"], c["actor"], c["cause"]) for c in payload["changes"]]
        + [("notify", n["actor"], n["cause"]) for n in payload.get("notes", [])])]


_DIGITS = re.compile(r"\d{7,}")
_EMAIL = re.compile(r"[^\s@;,]+@[^\s@;,]+")


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
