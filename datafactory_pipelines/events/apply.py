"""Applying stored events to leads: resolve each event's lead, run the rules, write the outcome.

One batch is one transaction: every change the rules make (golden record, `lead_overrides` like an
operator's edit, a history row naming the event and the rule, conflicts, contact flags) and every
event's status. The batch reads only the leads its events name: cost follows the change.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from datafactory_pipelines.conflicts import conflict_policy, group_id, kind_of
from datafactory_pipelines.events.feed import RECEIVED
from datafactory_pipelines.masking import mask_value
from datafactory_pipelines.rules import SETTABLE_FIELDS, RuleSet
from datafactory_pipelines.rules.engine import EventPlan, Standardizer, plan_event
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.change import StoreChange
from datafactory_pipelines.store.key_fields import KEY_FIELDS
from datafactory_pipelines.store.schema import CONFLICT_COLUMNS, OVERRIDE_COLUMNS

logger = logging.getLogger(__name__)

# data keys that name the person, by the lead column they match
IDENTIFYING_KEYS = {"mobile": ("mobile", "old_mobile"), "email": ("email", "old_email"), "wechat": ("wechat",)}
EVENT_ACTION = "event"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class ApplyReport:
    first_seq: int = 0
    last_seq: int = 0
    events: int = 0
    by_type: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    by_rule: Counter = field(default_factory=Counter)
    by_type_and_status: Counter = field(default_factory=Counter)
    field_changes: int = 0
    conflicts: int = 0
    flags: int = 0
    leads_touched: int = 0
    plans: list[EventPlan] = field(default_factory=list)


def identifiers(event: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """The lead ids and contact values an event names."""
    data = event.get("data") or {}
    ids = [v for v in (event.get("subject"), data.get("lead_id")) if v]
    contacts: dict[str, list[str]] = {k: [data[key] for key in keys if data.get(key)]
                                      for k, keys in IDENTIFYING_KEYS.items()}
    if event.get("type") == "lead.contact_bounced" and data.get("channel") in ("mobile", "email"):
        contacts[data["channel"]].append(data.get("value", ""))
    return ids, contacts


def resolve_leads(tx: StoreChange, events: list[dict[str, Any]]) -> tuple[
        list[list[str]], dict[str, dict[str, Any]]]:
    """For each event, the active leads it names (explicit lead id first, else any contact value);
    and those leads' current rows. Reads only the leads named."""
    wanted_ids: set[str] = set()
    wanted: dict[str, set[str]] = {k: set() for k in IDENTIFYING_KEYS}
    named = []
    for event in events:
        ids, contacts = identifiers(event)
        named.append((ids, contacts))
        wanted_ids.update(ids)
        for kind, values in contacts.items():
            wanted[kind].update(values)
    rows: dict[str, dict[str, Any]] = {}
    by_id: dict[str, str] = {}
    if wanted_ids:
        found = tx.leads_named(wanted_ids)
        merged = found[found["status"] == "merged"]
        for row in found[found["status"] == "active"].to_dict("records"):
            rows[row["lead_id"]] = row
            by_id[row["lead_id"]] = row["lead_id"]
        if len(merged):  # an id that was merged names the lead it was merged into
            survivors = set(merged["merged_into"].dropna())
            alive = tx.leads_named(survivors, active_only=True)
            for row in alive.to_dict("records"):
                rows[row["lead_id"]] = row
            for old, new in zip(merged["lead_id"], merged["merged_into"], strict=True):
                if new in rows:
                    by_id[old] = new
    by_contact: dict[tuple[str, str], set[str]] = {}
    for kind, values in wanted.items():
        if not values:
            continue
        found = tx.active_leads_by_contact(kind, values)
        missing = values - set(found[kind])
        if missing and kind in ("mobile", "email"):  # not anyone's primary: perhaps someone's alternate
            more = tx.active_leads_by_alternate(kind, missing)
        else:
            more = pd.DataFrame()
        for row in found.to_dict("records"):
            rows.setdefault(row["lead_id"], row)
            by_contact.setdefault((kind, row[kind]), set()).add(row["lead_id"])
        for row in more.to_dict("records"):
            matched = row.pop("_matched")
            rows.setdefault(row["lead_id"], row)
            by_contact.setdefault((kind, matched), set()).add(row["lead_id"])
    matches = []
    for ids, contacts in named:
        explicit = {by_id[i] for i in ids if i in by_id}
        if explicit:
            matches.append(sorted(explicit))
            continue
        leads: set[str] = set()
        for kind, values in contacts.items():
            for value in values:
                leads |= by_contact.get((kind, value), set())
        matches.append(sorted(leads))
    return matches, rows


def _event_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["event_id"], "source": row["source"], "type": row["type"], "subject": row["subject"],
            "time": row["event_time"], "data": json.loads(row["data"])}


def plan_events(tx: StoreChange, rules: RuleSet, rows: list[dict[str, Any]]) -> list[EventPlan]:
    """Plans for stored events, in sequence order; later events see earlier events' changes."""
    events = [_event_dict(r) for r in rows]
    matches, leads = resolve_leads(tx, events)
    waiting = tx.open_conflict_keys(set(leads)) if leads else set()
    policy = conflict_policy()
    standard = Standardizer()
    standard.prime([e for e, found in zip(events, matches, strict=True) if len(found) == 1])
    plans = []
    claimed: dict[tuple[str, str], str] = {}  # primary contacts set by earlier events of this batch
    for row, event, found in zip(rows, events, matches, strict=True):
        seq = int(row["seq"])
        if not found:
            plans.append(EventPlan(seq=seq, status="no_match"))
            continue
        if len(found) > 1:
            plans.append(EventPlan(seq=seq, status="ambiguous", error=f"{len(found)} leads match"))
            continue
        plan = plan_event(rules, event, leads[found[0]], policy, waiting, seq, standard)
        plan = _refused_if_key_taken(tx, plan, claimed)
        if plan.lead_after is not None:
            leads[found[0]] = plan.lead_after
        plans.append(plan)
    return plans


def _refused_if_key_taken(tx: StoreChange, plan: EventPlan,
                          claimed: dict[tuple[str, str], str]) -> EventPlan:
    """A plan that would give its lead a primary mobile or email another active lead has is not applied
    (status failed, the reason masked); the rest of the batch goes on."""
    for change in plan.changes:
        if change.field not in KEY_FIELDS or not change.new:
            continue
        holder = claimed.get((change.field, change.new))
        if holder == change.lead_id:
            holder = None
        holder = holder or tx.primary_contact_holder(change.field, change.new, change.lead_id)
        if holder:
            return EventPlan(seq=plan.seq, status="failed", lead_id=plan.lead_id, fired=plan.fired,
                             error=f"{change.lead_id} would get primary {change.field} "
                                   f"{mask_value(change.field, change.new)}, which active lead {holder} has: two "
                                   "active leads cannot share a primary mobile or email (not applied)")
    for change in plan.changes:
        if change.field in KEY_FIELDS and change.new:
            claimed[(change.field, change.new)] = change.lead_id
    return plan


def write_plans(tx: StoreChange, plans: list[EventPlan], rows: list[dict[str, Any]]) -> None:
    """Every plan's changes and every event's status, inside the caller's transaction."""
    at = _now()
    stamp = at.isoformat(timespec="microseconds")
    by_seq = {int(r["seq"]): r for r in rows}
    change_rows = []
    for plan in plans:
        event = by_seq[plan.seq]
        cause = f"event {event['event_id']} from {event['source']} (seq {plan.seq})"
        change_rows += [(c.lead_id, c.field, c.old, c.new, f"rule {c.rule}", cause, c.rule, plan.seq)
                        for c in plan.changes]
    if change_rows:
        changes = pd.DataFrame(change_rows, columns=["lead_id", "field", "old", "new", "actor", "cause", "rule",
                                                     "seq"])
        # one actor and cause per row; the owners hear of it in this transaction (the store's one history writer)
        tx.append_history(changes[["lead_id", "field", "old", "new"]].set_axis(
            ["lead_id", "field", "old_value", "new_value"], axis=1), EVENT_ACTION, changes["actor"],
            changes["cause"], at=at)
        final = changes.drop_duplicates(["lead_id", "field"], keep="last")
        # one UPDATE (one pass over leads) for every changed field: a column per field and a flag saying
        # whether this lead's value of it changed
        wide = final.pivot(index="lead_id", columns="field", values="new")
        fields = [str(c) for c in wide.columns]
        values = pd.DataFrame({"lead_id": wide.index.to_numpy()})
        for i, column in enumerate(fields):
            changed = wide[column].notna().to_numpy()
            values[f"v{i}"] = pd.Series(wide[column].to_numpy(dtype=object), dtype=object).where(changed, None)
            values[f"c{i}"] = changed
        tx.set_lead_values(values, fields, stamp)
        # a rule's value holds against later imports the way an operator's edit does
        pinned = final[final["field"].isin(SETTABLE_FIELDS)]
        if len(pinned):
            overrides = pd.DataFrame({"lead_id": pinned["lead_id"].to_numpy(), "field": pinned["field"].to_numpy(),
                                      "value": pinned["new"].to_numpy(), "decided_by": pinned["actor"].to_numpy(),
                                      "note": pinned["cause"].to_numpy(), "decided_at": at, "origin": EVENT_ACTION,
                                      "conflict_id": pd.array([None] * len(pinned), dtype="Int64")})[OVERRIDE_COLUMNS]
            tx.add_overrides(overrides)
    for plan in plans:  # a rule's `notify` action: a note in the owner's message of this batch
        owner = plan.lead_after.get("owner") if plan.lead_after is not None else None
        owned = bool(plan.lead_id) and isinstance(owner, str) and owner != ""
        for note in plan.notes if owned else []:  # (append_notice does nothing for a lead with no owner)
            event = by_seq[plan.seq]
            tx.append_notice(plan.lead_id, note["message"], actor=f"rule {note['rule']}",
                          cause=f"event {event['event_id']} from {event['source']} (seq {plan.seq})")
    conflict_rows = []
    for plan in plans:
        event = by_seq[plan.seq]
        for c in plan.conflicts:
            kind = kind_of(c["field"])
            conflict_rows.append({
                "group_id": group_id(c["field"], kind, event["source"], f"rule {c['rule']}"), "lead_id": c["lead_id"],
                "field": c["field"], "kind": kind, "current_value": c["current_value"],
                "incoming_value": c["incoming_value"], "incoming_record": None, "source": event["source"],
                "import_id": f"event {event['event_id']}", "status": "open", "created_at": at, "decided_by": None,
                "decided_at": None, "decision": None})
    if conflict_rows:
        first = tx.next_conflict_id()
        conflicts = pd.DataFrame(conflict_rows)
        conflicts.insert(0, "conflict_id", range(first, first + len(conflicts)))
        conflicts["incoming_record"] = pd.array([None] * len(conflicts), dtype="Int64")
        conflicts["decided_at"] = pd.Series([pd.NaT] * len(conflicts), dtype="datetime64[us]")
        tx.add_conflicts(conflicts[CONFLICT_COLUMNS])
    flag_rows = [{**f, "event_seq": plan.seq, "flagged_at": at} for plan in plans for f in plan.flags]
    if flag_rows:
        tx.add_contact_flags(pd.DataFrame(flag_rows))
    statuses = pd.DataFrame({
        "seq": [p.seq for p in plans], "status": [p.status for p in plans],
        "lead_id": pd.Series([p.lead_id for p in plans], dtype=object),
        "outcome": [json.dumps({"rules": p.fired, "changes": len(p.changes), "conflicts": len(p.conflicts),
                                "flags": len(p.flags), **({"notify": p.notes} if p.notes else {}),
                                **({"untrusted": p.held} if p.held else {}),
                                **({"error": p.error} if p.error else {})}, ensure_ascii=False) for p in plans]})
    tx.set_event_outcomes(statuses, at)


def apply_events(store: LeadStore, rules: RuleSet, first_seq: int = 0, last_seq: int | None = None) -> ApplyReport:
    """Apply the waiting events with first_seq <= seq <= last_seq, in one transaction."""
    report = ApplyReport(first_seq=first_seq)
    with store.change(f"apply events from seq {first_seq}") as tx:  # reads, rules, writes: one transaction
        rows = tx.waiting_events(first_seq, last_seq if last_seq is not None else 2**62, RECEIVED)
        if not rows:
            return report
        plans = plan_events(tx, rules, rows)
        write_plans(tx, plans, rows)
    types = {int(r["seq"]): r["type"] for r in rows}
    report.last_seq = int(rows[-1]["seq"])
    report.events = len(rows)
    report.plans = plans
    for plan in plans:
        report.by_type[types[plan.seq]] += 1
        report.by_status[plan.status] += 1
        report.by_type_and_status[(types[plan.seq], plan.status)] += 1
        for rule in plan.fired:
            report.by_rule[rule] += 1
        report.field_changes += len(plan.changes)
        report.conflicts += len(plan.conflicts)
        report.flags += len(plan.flags)
    report.leads_touched = len({c.lead_id for p in plans for c in p.changes})
    logger.info("applied events %d..%d: %s", report.first_seq, report.last_seq, dict(report.by_status))
    return report


def dry_run(store: LeadStore, rules: RuleSet, events: list[dict[str, Any]]) -> list[EventPlan]:
    """What the rules would do with these (validated) events now; nothing is written."""
    rows = [{"seq": i, "event_id": e["id"], "source": e["source"], "type": e["type"], "subject": e.get("subject"),
             "event_time": e.get("time"), "data": json.dumps(e["data"], ensure_ascii=False)}
            for i, e in enumerate(events, start=1)]
    with store.reading() as tx:
        return plan_events(tx, rules, rows)
