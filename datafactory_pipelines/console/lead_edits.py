"""One lead edited from its page: a field set, an alternate made primary, a contact marked invalid, an unmerge.

Each is one change under the store's writer lock and in one transaction, through the same library calls as
the command line (`decisions.edit_leads` is `lead set`, `restore.unmerge` is `unmerge`): the same checks,
standardization, overrides, history and outbox. Before anything is written the lead is read again inside that
transaction and compared with the version the form was made from: a form opened before someone else changed
the lead is refused, never applied over their change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from datafactory_pipelines.decisions import DecisionError, edit_leads, standardized_value
from datafactory_pipelines.store import LeadStore

#: channels with a primary value and alternates (`<channel>_alternates`)
CHANNELS_WITH_ALTERNATES = ("mobile", "email")
FLAG_STATUSES = ("invalid", "unreachable")
ACTIONS = ("set", "primary", "invalid", "unmerge")


class StaleFormError(DecisionError):
    """The lead changed since the form was opened."""


@dataclass
class EditRequest:
    lead_id: str
    version: str  # lead_version() of the lead as the form showed it
    action: str  # one of ACTIONS
    by: str
    note: str = ""
    field: str = ""
    value: str = ""
    status: str = "invalid"  # for `invalid`: invalid | unreachable


def lead_version(lead: dict) -> str:
    """A short digest of every column of the lead's row: any change to the lead changes it."""
    text = json.dumps({k: str(v) for k, v in sorted(lead.items())}, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def split_list(text: object) -> list[str]:
    return [v for v in str(text or "").split(";") if v]


def apply_edit(store: LeadStore, request: EditRequest) -> str:
    """Apply one edit; returns what happened, in a few words. Raises DecisionError (StaleFormError when stale)."""
    if request.action not in ACTIONS:
        raise DecisionError(f"unknown edit {request.action!r}")
    with store.exclusive(f"console {request.action} of {request.lead_id} by {request.by}", atomic=True):
        found = store.lead_rows([request.lead_id])
        if not found:
            raise DecisionError(f"no lead {request.lead_id}")
        lead = found[0]
        if lead_version(lead) != request.version:
            raise StaleFormError(f"stale: lead {request.lead_id} changed since this page was opened "
                                 "(open it again to see the change)")
        if request.action == "set":
            edit_leads(store, [{"lead_id": request.lead_id, "field": request.field, "value": request.value}],
                       by=request.by, note=request.note)
            return f"{request.field} set"
        if request.action == "unmerge":
            from datafactory_pipelines.restore import unmerge

            split = unmerge(store, request.lead_id, by=request.by)
            return "split back out: " + ", ".join(split)
        return _alternates_edit(store, lead, request)


def _alternates_edit(store: LeadStore, lead: dict, request: EditRequest) -> str:
    channel = request.field
    if channel not in CHANNELS_WITH_ALTERNATES:
        raise DecisionError(f"{channel!r} has no alternates (one of {', '.join(CHANNELS_WITH_ALTERNATES)})")
    value = standardized_value(channel, request.value)  # the same check and spelling as every other path
    primary = str(lead.get(channel) or "")
    alternates = split_list(lead.get(f"{channel}_alternates"))
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    if request.action == "primary":
        if value == primary:
            raise DecisionError(f"{value} is already the primary {channel}")
        if value not in alternates:
            raise DecisionError(f"{value} is not among this lead's {channel} alternates")
        rest = ([primary] if primary else []) + [a for a in alternates if a != value]
        # the primary goes through `lead set` (checked, kept as an override that holds against later imports)
        edit_leads(store, [{"lead_id": lead["lead_id"], "field": channel, "value": value}], by=request.by,
                   note=request.note)
        store.edit_fields([(lead["lead_id"], f"{channel}_alternates", ";".join(rest))], by=request.by,
                          note=request.note, origin="edit", moment=moment)
        return f"{channel} made primary"
    if request.status not in FLAG_STATUSES:
        raise DecisionError(f"status {request.status!r}: one of {', '.join(FLAG_STATUSES)}")
    if value != primary and value not in alternates:
        raise DecisionError(f"{value} is not one of this lead's {channel} values")
    # as the events' mark_invalid rule does: the next alternate takes the primary's place; the old value
    # stays in the history and in the source records, and the flag says who marked it and why
    if value == primary:
        edits = [(lead["lead_id"], channel, alternates[0] if alternates else ""),
                 (lead["lead_id"], f"{channel}_alternates", ";".join(alternates[1:]))]
    else:
        edits = [(lead["lead_id"], f"{channel}_alternates", ";".join(a for a in alternates if a != value))]
    store.edit_fields(edits, by=request.by, note=request.note or f"marked {request.status}", origin="edit",
                      moment=moment)
    store.flag_contact(lead["lead_id"], channel, value, request.status, request.note, request.by, moment)
    return f"{channel} marked {request.status}"
