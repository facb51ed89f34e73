"""The restores log: which restore did what, so that it can be taken back (`restore --undo-restore ID`).

A restore's field edits are overrides whose note starts with "restore <ID> "; the imports it undid are listed
here. Taking it back removes those overrides (the values curation gives, or an earlier edit, hold again),
puts the imports' records back into linkage, and curates the leads again: as if the restore never happened.
The history is never rewritten: all of it is new history rows.
"""

from __future__ import annotations

RECORD = ("INSERT INTO restores (restore_id, kind, target, done_by, done_at, imports_undone) "
          "VALUES (?, ?, ?, ?, ?, ?)")
ONE = "SELECT * FROM restores WHERE restore_id = ?"
ALL = "SELECT * FROM restores ORDER BY done_at, restore_id"
MARK_UNDONE = "UPDATE restores SET undone_by = ?, undone_at = ? WHERE restore_id = ? AND undone_at IS NULL"
#: the leads whose overrides a restore wrote (its notes start with "restore <ID> ")
OVERRIDDEN_LEADS = ("SELECT DISTINCT lead_id FROM lead_overrides WHERE origin = 'restore' "
                    "AND starts_with(note, ?) ORDER BY lead_id")
DROP_OVERRIDES = "DELETE FROM lead_overrides WHERE origin = 'restore' AND starts_with(note, ?)"
LIVE_TWIN = ("SELECT b.import_id FROM imports a JOIN imports b ON b.content_sha256 = a.content_sha256 "
             "AND b.import_id <> a.import_id AND b.undone_at IS NULL WHERE a.import_id = ?")


def note_prefix(restore_id: str) -> str:
    """How a restore's overrides' notes begin."""
    return f"restore {restore_id} "
