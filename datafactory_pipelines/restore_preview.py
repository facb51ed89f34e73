"""What a restore will do, shown before it is done: the restore runs in full inside one transaction, the
store's leads are compared before and after, and the transaction is rolled back. The preview is the change
itself, not an estimate of it; nothing of it is committed (and no outbox row leaves: it is rolled back too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from datafactory_pipelines.fields import PERSONAL_COLUMNS, TRACKED_FIELDS
from datafactory_pipelines.masking import mask_value
from datafactory_pipelines.restore import RestoreReport
from datafactory_pipelines.store import LeadStore

EXAMPLES = 5


@dataclass
class RestorePlan:
    what: str
    report: RestoreReport
    active_before: int = 0
    active_after: int = 0
    retired: list[str] = field(default_factory=list)  # active before, not after
    revived: list[str] = field(default_factory=list)  # not active before, active after
    changed: dict[str, list[str]] = field(default_factory=dict)  # active lead -> fields that change
    examples: list[str] = field(default_factory=list)  # masked

    def lines(self) -> list[str]:
        report = self.report
        lines = [f"{self.what}:",
                 f"  imports undone: {len(report.imports_undone)}"
                 + (f" ({', '.join(report.imports_undone[:EXAMPLES])}{' …' if len(report.imports_undone) > EXAMPLES else ''})"
                    if report.imports_undone else ""),
                 f"  records taken out of linkage: {report.records_retired}",
                 f"  active leads: {self.active_before} -> {self.active_after}",
                 f"  leads retired: {len(self.retired)}" + _some(self.retired),
                 f"  leads back: {len(self.revived)}" + _some(self.revived),
                 f"  leads changed: {len(self.changed)}, fields restored: {report.fields_restored}",
                 *(f"    {line}" for line in self.examples)]
        if report.conflicts_closed:
            lines.append(f"  conflicts closed: {report.conflicts_closed}")
        if report.contested:
            lines.append(f"  set by hand after the import, kept and queued as conflicts: {len(report.contested)}")
        return lines


def _some(ids: list[str]) -> str:
    return f" (e.g. {', '.join(ids[:EXAMPLES])}{' …' if len(ids) > EXAMPLES else ''})" if ids else ""


class _RolledBack(Exception):
    def __init__(self, plan: RestorePlan) -> None:
        super().__init__("preview")
        self.plan = plan


def preview(store: LeadStore, what: str, run: Callable[[], RestoreReport]) -> RestorePlan:
    """Run `run` (a restore) inside one transaction, describe what it changed, and roll it all back."""
    try:
        with store.exclusive(f"preview: {what}", atomic=True):
            before = store.leads(include_retired=True)
            report = run()
            after = store.leads(include_retired=True)
            raise _RolledBack(describe(what, report, before, after))
    except _RolledBack as done:
        return done.plan


def describe(what: str, report: RestoreReport, before: pd.DataFrame, after: pd.DataFrame) -> RestorePlan:
    was = set(before.loc[before["status"] == "active", "lead_id"])
    now = set(after.loc[after["status"] == "active", "lead_id"])
    plan = RestorePlan(what, report, len(was), len(now), sorted(was - now), sorted(now - was))
    fields = [f for f in TRACKED_FIELDS if f in before.columns and f in after.columns and f != "status"]
    old, new = before.set_index("lead_id"), after.set_index("lead_id")
    for lead in sorted(was & now):
        differ = [f for f in fields if str(old.at[lead, f] or "") != str(new.at[lead, f] or "")]
        if differ:
            plan.changed[lead] = differ
            if len(plan.examples) < EXAMPLES:
                plan.examples.append(f"{lead}: " + "; ".join(
                    f"{f} {_shown(f, old.at[lead, f])} -> {_shown(f, new.at[lead, f])}"
                    for f in differ[:4]))
    return plan


def _shown(name: str, value: object) -> str:
    """A value for the terminal: personal ones masked, the rest cut short."""
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    if not text:
        return "∅"
    return mask_value(name, text) if name in PERSONAL_COLUMNS else text[:30]
