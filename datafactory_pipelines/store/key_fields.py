"""The key-field rule every change obeys before it commits: no two active leads share a primary mobile or
a primary email. A change on any path (an edit, a decision, an event, a restore) that would break it is
refused inside its own transaction, so it rolls back whole and says which leads and which field; the
message masks the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datafactory_pipelines.masking import mask_value

if TYPE_CHECKING:
    import duckdb

KEY_FIELDS = ("mobile", "email")


class KeyFieldConflictError(ValueError):
    """A change would give two active leads the same primary mobile or email; nothing of it was written."""


def shared_primary_contacts(con: duckdb.DuckDBPyConnection, lead_ids: list[str]) -> list[tuple[str, str, str, str]]:
    """(field, value, lead, other lead) for every active lead among `lead_ids` whose primary mobile or email
    another active lead also has as its primary (read inside the caller's transaction: what it wrote counts)."""
    if not lead_ids:
        return []
    found = []
    placeholders = ", ".join("?" * len(lead_ids))
    for field in KEY_FIELDS:
        rows = con.execute(
            f'SELECT a."{field}", a.lead_id, min(b.lead_id) FROM leads a JOIN leads b '
            f'ON b."{field}" = a."{field}" AND b.lead_id <> a.lead_id AND b.status = \'active\' '
            f"WHERE a.lead_id IN ({placeholders}) AND a.status = 'active' "
            f"AND a.\"{field}\" IS NOT NULL AND a.\"{field}\" <> '' "
            f'GROUP BY a."{field}", a.lead_id ORDER BY a.lead_id', list(lead_ids)).fetchall()
        found += [(field, str(value), str(lead), str(other)) for value, lead, other in rows]
    return found


def holder_of(con: duckdb.DuckDBPyConnection, field: str, value: str, other_than: str) -> str | None:
    """The active lead other than `other_than` whose primary `field` is `value`, if any (None too when
    `other_than` is not itself active: a retired lead holds nothing)."""
    if field not in KEY_FIELDS or not value:
        return None
    rows = con.execute(f"SELECT min(lead_id) FROM leads WHERE status = 'active' AND \"{field}\" = ? "
                       "AND lead_id <> ? AND EXISTS (SELECT 1 FROM leads WHERE lead_id = ? AND status = 'active')",
                       [value, other_than, other_than]).fetchall()
    return rows[0][0] if rows and rows[0][0] else None


def describe(shared: list[tuple[str, str, str, str]]) -> str:
    return "; ".join(f"{lead} and {other} would both have primary {field} {mask_value(field, value)}"
                     for field, value, lead, other in shared[:5]) + (" …" if len(shared) > 5 else "")


def taken_primary_contacts(con: duckdb.DuckDBPyConnection,
                           changes: list[tuple[str, str, str]]) -> list[tuple[str, str, str, str]]:
    """(field, value, lead, holder) for each change (lead, field, new value), already written in the caller's
    transaction, that left a primary mobile or email on two active leads (run after the writes: two leads
    swapping numbers in one change is no conflict)."""
    taken = []
    for lead, field, value in changes:
        if field not in KEY_FIELDS or not value:
            continue
        holder = holder_of(con, field, value, lead)
        if holder is not None:
            taken.append((field, value, lead, holder))
    return taken


def refuse_taken_primary_contacts(con: duckdb.DuckDBPyConnection, changes: list[tuple[str, str, str]],
                                  what: str) -> None:
    """Raise KeyFieldConflictError (the caller's transaction rolls back whole) when a change would give a lead
    a primary mobile or email that another active lead has."""
    taken = taken_primary_contacts(con, changes)
    if taken:
        raise KeyFieldConflictError(f"{what} refused: {describe(taken)}. Two active leads cannot share a "
                                    "primary mobile or email: merge them (or decide the conflict), or set "
                                    "another value")
