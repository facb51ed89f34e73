"""Running rules on one event and one lead: which rules fire and what each action would change.

Planning is pure (no store access): `events.apply` resolves the lead, calls `plan_event`, and writes
the plans of a whole batch in one transaction, through the same edit path as `lead set`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import celpy

from datafactory_pipelines.conflicts import same_entity
from datafactory_pipelines.decisions import DecisionError, standardized_value
from datafactory_pipelines.fields import LEAD_COLUMNS
from datafactory_pipelines.rules import PROTECTED_FIELDS, Action, Rule, RuleError, RuleSet
from datafactory_pipelines.standardize.company import standardize_companies
from datafactory_pipelines.standardize.email import standardize_emails
from datafactory_pipelines.standardize.ids import standardize_wechats
from datafactory_pipelines.standardize.name import standardize_names
from datafactory_pipelines.standardize.owner import standardize_owner
from datafactory_pipelines.standardize.phone import MOBILE_PATTERN, standardize_phones
from datafactory_pipelines.standardize.text import clean_text

REACH_FIELDS = ("mobile", "email", "wechat", "qq", "douyin", "kuaishou", "landline")
LIST_FIELDS = ("mobile_alternates", "email_alternates", "mobile_suspected_typos")
NO_REACHABLE_CONTACT = "no reachable contact"


class ActionError(ValueError):
    """An action that cannot be carried out on this lead; the event changes nothing."""


@dataclass
class FieldChange:
    lead_id: str
    field: str
    old: str
    new: str
    rule: str


@dataclass
class EventPlan:
    seq: int
    status: str  # applied | unchanged | no_rule | no_match | ambiguous | failed
    lead_id: str | None = None
    fired: list[str] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)
    held: list[dict[str, str]] = field(default_factory=list)  # protected fields an untrusted source may not set
    error: str = ""
    lead_after: dict[str, Any] | None = None


def split_list(value: object) -> list[str]:
    return [v for v in str(value or "").split(";") if v]


def cel_lead(lead: dict[str, Any]) -> dict[str, Any]:
    """The lead as rules see it: strings, with alternates as lists."""
    view = {}
    for column, value in lead.items():
        text = "" if value is None or (isinstance(value, float) and value != value) else value
        view[column] = split_list(text) if column in LIST_FIELDS else str(text) if not isinstance(text, int) else text
    return view


class _Context:
    def __init__(self, rule: Rule, event: dict[str, Any], lead: dict[str, Any], policy: dict[str, str],
                 plan: EventPlan, waiting: set[tuple[str, str, str]], standard: Standardizer,
                 trusted: bool = True) -> None:
        self.rule, self.event, self.lead, self.policy, self.plan, self.waiting = rule, event, lead, policy, plan, waiting
        self.standard = standard
        self.trusted = trusted  # does this rule trust the event's source
        self.held = ""  # why a change of this rule was held back (its `notify` must not claim it was made)

    def may_change(self, column: str) -> bool:
        """A source the rule does not trust may fill a protected field the lead lacks, never replace one."""
        return self.trusted or column not in PROTECTED_FIELDS or not str(self.lead.get(column) or "")

    def untrusted(self) -> str:
        return f"source {str(self.event.get('source'))[:200]!r} is not trusted by rule {self.rule.name!r}"

    def hold(self, column: str, value: str) -> None:
        """An untrusted source's value for a protected field the lead has: never written over it, but a
        conflict an operator decides (accepting it goes through the decision path, as for an import's)."""
        if str(self.lead.get(column) or "") == value:
            return
        self.conflict(column, value)
        self.held = self.untrusted()
        self.plan.held.append({"field": column, "outcome": "conflict", "reason": self.held})

    def set(self, column: str, value: str) -> None:
        old = str(self.lead.get(column) or "")
        if old != value:
            self.plan.changes.append(FieldChange(self.lead["lead_id"], column, old, value, self.rule.name))
            self.lead[column] = value

    def conflict(self, column: str, value: str) -> None:
        current = str(self.lead.get(column) or "")
        key = (self.lead["lead_id"], column, value)
        if not current or current == value or key in self.waiting:
            return
        self.waiting.add(key)
        self.plan.conflicts.append({"lead_id": self.lead["lead_id"], "field": column, "current_value": current,
                                    "incoming_value": value, "rule": self.rule.name})


_STANDARD_MOBILE = re.compile(MOBILE_PATTERN)
# event data keys whose values a rule usually writes into this field
PRIMED_KEYS = {"mobile": ("mobile", "old_mobile", "new_mobile"), "email": ("email", "old_email", "new_email"),
               "wechat": ("wechat",), "name": ("name",), "company": ("company",)}


class Standardizer:
    """`decisions.standardized_value` (the edit path's standardization) for a whole batch: the values
    events carry are standardized in one vectorized call per field; any other value goes one by one."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], str | DecisionError] = {}

    def prime(self, events: list[dict[str, Any]]) -> None:
        wanted: dict[str, set[str]] = {f: set() for f in PRIMED_KEYS}
        for event in events:
            data = event.get("data") or {}
            for column, keys in PRIMED_KEYS.items():
                wanted[column].update(str(data[k]) for k in keys if data.get(k))
            if data.get("channel") in ("mobile", "email") and data.get("value"):
                wanted[data["channel"]].add(str(data["value"]))
        for column, values in wanted.items():
            pending = sorted(v for v in values if (column, v) not in self.known
                             and not (column == "mobile" and _STANDARD_MOBILE.fullmatch(v)))
            if not pending:
                continue
            texts = [clean_text(v) for v in pending]
            if column == "mobile":
                found = standardize_phones(texts)["mobile"].tolist()
                results = [m or DecisionError(f"mobile {t!r} is not a valid CN mobile number")
                           for m, t in zip(found, texts, strict=True)]
            elif column in ("email", "wechat"):
                table = (standardize_emails if column == "email" else standardize_wechats)(texts)
                results = [DecisionError(f"{column} {t!r} is not valid: {r}") if st == "invalid" else v
                           for v, st, r, t in zip(table[column], table[f"{column}_status"],
                                                  table[f"{column}_reason"], texts, strict=True)]
            elif column == "name":
                results = [n or t for n, t in zip(standardize_names(texts)["name"], texts, strict=True)]
            else:
                results = list(standardize_companies(texts)["company"])
            self.known.update({(column, v): r for v, r in zip(pending, results, strict=True)})

    def __call__(self, column: str, value: object) -> str:
        text = str(value)
        if column == "mobile" and _STANDARD_MOBILE.fullmatch(text):
            return text
        result = self.known.get((column, text))
        if result is None:
            try:
                result = standardized_value(column, text)
            except DecisionError as err:
                result = err
            self.known[(column, text)] = result
        if isinstance(result, DecisionError):
            raise ActionError(str(result))
        return result


def _run_action(ctx: _Context, action: Action, plain: dict[str, Any], cel: Callable[[], dict[str, Any]]) -> None:
    p = action.params

    def value_of(name: str, default: Any = "") -> Any:
        return p[name].evaluate(plain, cel) if name in p else default

    lead = ctx.lead
    if action.kind in ("set", "copy_fields"):
        if action.kind == "set":
            pairs = [(p["field"], value_of("value"))]
        else:
            data = ctx.event.get("data") or {}
            pairs = [(f, data.get(f)) for f in p["fields"]]
        for column, raw in pairs:
            if raw in (None, ""):
                continue
            value = ctx.standard(column, raw)
            current = str(lead.get(column) or "")
            if not ctx.may_change(column):
                ctx.hold(column, value)
            elif (p.get("respect_policy") and ctx.policy.get(column) == "ask" and current and current != value
                    and not same_entity(column, current, value)):
                ctx.conflict(column, value)
            else:
                ctx.set(column, value)
    elif action.kind in ("add_alternate", "make_primary"):
        channel = p["channel"]
        value = ctx.standard(channel, value_of("value"))
        primary = str(lead.get(channel) or "")
        alternates = split_list(lead.get(f"{channel}_alternates"))
        if action.kind == "add_alternate":
            if value != primary and value not in alternates:
                ctx.set(f"{channel}_alternates", ";".join([*alternates, value]))
        elif value != primary and not ctx.may_change(channel):
            ctx.hold(channel, value)
        elif value != primary:
            rest = [a for a in alternates if a != value]
            ctx.set(channel, value)
            ctx.set(f"{channel}_alternates", ";".join(([primary] if primary else []) + rest))
    elif action.kind == "mark_invalid":
        channel = p["channel"]
        value = ctx.standard(channel, value_of("value"))
        status = str(value_of("status", "invalid")) or "invalid"
        primary = str(lead.get(channel) or "")
        alternates = split_list(lead.get(f"{channel}_alternates"))
        if value == primary and not ctx.may_change(channel):  # flagged below, but the primary stays
            ctx.plan.held.append({"field": channel, "outcome": "not applied",
                                  "reason": f"{ctx.untrusted()}: the primary is flagged, not replaced"})
        elif value == primary:  # the next alternate takes its place; the old value stays in the history
            ctx.set(channel, alternates[0] if alternates else "")
            ctx.set(f"{channel}_alternates", ";".join(alternates[1:]))
        elif value in alternates:
            ctx.set(f"{channel}_alternates", ";".join(a for a in alternates if a != value))
        ctx.plan.flags.append({"lead_id": lead["lead_id"], "channel": channel, "value": value, "status": status,
                               "reason": str(value_of("reason", "")), "rule": ctx.rule.name})
    elif action.kind == "queue_conflict":
        ctx.conflict(p["field"], ctx.standard(p["field"], value_of("value")))
    elif action.kind == "touch_source":
        source = str(value_of("source") or "").strip()
        if source:
            if not str(lead.get("first_source") or ""):
                ctx.set("first_source", source)
            ctx.set("latest_source", source)
    elif action.kind == "assign_owner":
        if "owner" not in LEAD_COLUMNS:
            raise ActionError("this lead store has no owner field yet")
        owner = standardize_owner(value_of("owner"))  # as imports and `lead set owner=` clean it
        if not owner:
            raise ActionError("owner is empty once control and invisible characters are removed")
        ctx.set("owner", owner)
    elif action.kind == "notify":
        message = str(value_of("message", ctx.rule.name))
        if ctx.held:
            message += f" — not applied: {ctx.held}; a conflict waits for an operator's decision"
        ctx.plan.notes.append({"rule": ctx.rule.name, "message": message})


def plan_event(rules: RuleSet, event: dict[str, Any], lead: dict[str, Any] | None, policy: dict[str, str],
               waiting: set[tuple[str, str, str]] | None = None, seq: int = 0,
               standard: Standardizer | None = None) -> EventPlan:
    """What the rules do with one event on one lead (the lead as it is before the event).

    `waiting` holds (lead, field, value) of conflicts already open, so a repeated event queues none.
    On an error nothing of this event is kept and the plan says why.
    """
    waiting = waiting if waiting is not None else set()
    standard = standard or Standardizer()
    plan = EventPlan(seq=seq, status="no_rule", lead_id=lead["lead_id"] if lead else None)
    candidates = rules.for_type(event["type"])
    if lead is None or not candidates:
        return plan
    state = copy.copy(lead)
    prior = cel_lead(lead)
    plain = {"event": event, "lead": prior, "trusted_sources": rules.trusted_sources}
    made: dict[str, Any] = {}

    def cel() -> dict[str, Any]:  # CEL values, made only when an expression is not answered from its cache
        if not made:
            made.update({"event": celpy.json_to_cel(event), "lead": celpy.json_to_cel(prior)})
        made["trusted_sources"] = celpy.json_to_cel(plain["trusted_sources"])
        return made

    added: set[tuple[str, str, str]] = set()
    try:
        for rule in candidates:
            trusted = rules.trusted_by(rule)  # `trusted_sources` in CEL: the sources this rule trusts
            plain["trusted_sources"] = trusted
            if rule.when.evaluate(plain, cel) is not True:
                continue
            plan.fired.append(rule.name)
            ctx = _Context(rule, event, state, policy, plan, waiting | added, standard,
                           trusted=event.get("source") in trusted)
            for action in rule.actions:
                _run_action(ctx, action, plain, cel)
            added = ctx.waiting - waiting
        if plan.fired and plan.changes:  # a lead left with no way to reach them is flagged, never deleted
            reachable = any(str(state.get(f) or "") for f in REACH_FIELDS)
            flag = "" if reachable else NO_REACHABLE_CONTACT
            if str(state.get("contact_status") or "") != flag:
                plan.changes.append(FieldChange(state["lead_id"], "contact_status",
                                                str(state.get("contact_status") or ""), flag,
                                                plan.changes[-1].rule))
                state["contact_status"] = flag
    except (ActionError, RuleError) as err:
        return EventPlan(seq=seq, status="failed", lead_id=lead["lead_id"], fired=plan.fired,
                         error=f"rule {plan.fired[-1] if plan.fired else '?'}: {err}")
    waiting |= added
    if plan.fired:
        plan.status = "applied" if plan.changes or plan.conflicts or plan.flags or plan.notes else \
            "not_applied" if plan.held else "unchanged"
    plan.lead_after = state
    return plan
