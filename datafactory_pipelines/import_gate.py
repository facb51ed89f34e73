"""A file whose curated leads fail the blocking key-field gate leaves nothing behind.

The gate (`changed_leads_key_fields`: a valid contact on each lead, ids and primary mobiles unique) is
evaluated inside the curation's own transaction, before it commits (assets/leads.py). When it fails, the
curation rolls back, and the imports whose records waited for it are undone (as if they never happened:
the store's way, by new history, never by deleting rows), and their files are moved from processed/ to
rejected/ with NAME.error.txt saying why. A file reported REJECTED is then neither in processed/ nor in the
store's leads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from datafactory_pipelines.config import Paths
from datafactory_pipelines.pipeline import import_id_for, reject_file
from datafactory_pipelines.restore import undo_import
from datafactory_pipelines.store import LeadStore

log = logging.getLogger(__name__)


class GateFailed(Exception):
    """The blocking gate failed inside the curation's transaction: raised to roll it back."""

    def __init__(self, reason: str, result: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


@dataclass
class RejectedImport:
    import_id: str
    file_name: str
    moved_to: Path | None


def reject_waiting_imports(store: LeadStore, paths: Paths, reason: str, by: str) -> list[RejectedImport]:
    """Undo every live import whose records wait to be linked (the curation that failed was theirs) and move
    their files from processed/ to rejected/."""
    rejected = []
    for import_id in store.imports_waiting_to_link():
        row = store.import_row(import_id)
        undo_import(store, import_id, by=by)
        archived = paths.processed / (import_id_for(row["file_name"], row["content_sha256"])
                                      + Path(row["file_name"]).suffix.lower())
        moved = None
        if archived.exists():  # under its own name again (processed/ names files by import id)
            staging = paths.processed / ".rejecting"
            staging.mkdir(exist_ok=True)
            named = staging / Path(row["file_name"]).name
            archived.replace(named)
            moved = reject_file(named, paths.rejected, f"{row['file_name']}: its leads failed the key-field "
                                                          f"check before they were committed: {reason}. The "
                                                          "import was undone; nothing of it is in the leads.")
        log.warning("import %s rejected by the key-field gate; undone, file %s", import_id, moved or "not found")
        rejected.append(RejectedImport(import_id, row["file_name"], moved))
    return rejected
