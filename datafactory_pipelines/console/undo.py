"""What undoing an import would change, found by doing it and rolling it back.

`restore.undo_import` runs as one atomic change (one transaction); the preview runs the very same code inside
that transaction and then rolls it back, so what the admin is shown is what the undo does, not an estimate
(records taken out, leads retired, conflicts closed, hand-set values that would be queued), and the field
changes the history would have received. Nothing of it is kept: no history row, no outbox message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datafactory_pipelines.restore import RestoreReport
from datafactory_pipelines.store import LeadStore

SHOWN_CHANGES = 200


class _RollBack(Exception):
    """Raised at the end of a preview so that the change's transaction rolls back."""


@dataclass
class UndoPreview:
    report: RestoreReport
    changes: list[dict] = field(default_factory=list)  # history rows the undo would append (first SHOWN_CHANGES)
    total_changes: int = 0


def preview_undo(store: LeadStore, import_id: str, by: str) -> UndoPreview:
    from datafactory_pipelines.restore import _undo_import  # the undo's body, inside our own transaction

    seen: dict[str, UndoPreview] = {}
    try:
        with store.exclusive(f"preview undo of import {import_id} (rolled back)", atomic=True):
            last = store.history_head_seq()
            report = _undo_import(store, import_id, by)
            rows = store.history_after(last)
            seen["preview"] = UndoPreview(report, rows.head(SHOWN_CHANGES).to_dict("records"), len(rows))
            raise _RollBack
    except _RollBack:
        pass
    return seen["preview"]
