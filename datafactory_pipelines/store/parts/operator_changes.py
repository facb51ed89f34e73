"""Operators' changes: edits, decisions, splits and revived merges, closed conflicts,
and filling a new store from a backup."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from datafactory_pipelines.store import key_fields
from datafactory_pipelines.store.schema import (
    CONFLICT_COLUMNS,
    LEAD_COLUMNS,
    OVERRIDE_COLUMNS,
)

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd



class OperatorChanges:
    path: Path

    def edit_fields(self, edits: list[tuple[str, str, str]], by: str, note: str, origin: str,
                    moment: datetime) -> int:
        """One-to-one edits (lead_id, field, value) of checked, standardized values, in one transaction: each
        kept as an override, set on its lead, and (where it changes the value) one history row and the outbox.
        Reads and writes only the edited leads' rows."""
        if not edits:
            return 0
        leads = sorted({lead for lead, _, _ in edits})
        fields = sorted({field for _, field, _ in edits})
        if not set(fields) <= set(LEAD_COLUMNS):
            raise ValueError(f"not a lead field: {', '.join(sorted(set(fields) - set(LEAD_COLUMNS)))}")
        stamp = moment.isoformat(timespec="microseconds")
        with self._transaction() as con:
            quoted = ", ".join(f'"{f}"' for f in fields)
            current = {row[0]: dict(zip(fields, row[1:], strict=True)) for row in con.execute(
                f"SELECT lead_id, {quoted} FROM leads WHERE lead_id IN ({', '.join('?' * len(leads))})",
                leads).fetchall()}
            changes = [(lead, field, str(current.get(lead, {}).get(field) or ""), str(value))
                       for lead, field, value in edits]
            self._append_history_rows(con, [c for c in changes if c[2] != c[3]], origin, by, note)
            con.execute(f"INSERT INTO lead_overrides ({', '.join(OVERRIDE_COLUMNS)}) VALUES "
                        + ", ".join(["(?, ?, ?, ?, ?, ?, ?, NULL)"] * len(edits)),
                        [v for lead, field, value in edits for v in (lead, field, value, by, note, moment, origin)])
            for lead, field, value in edits:
                con.execute(f'UPDATE leads SET "{field}" = ?, updated_at = ? WHERE lead_id = ?', [value, stamp, lead])
            key_fields.refuse_taken_primary_contacts(con, edits, f"{origin} of {', '.join(leads[:3])}")
        return len(edits)


    def revive_merges(self, merges: list[tuple[str, str]]) -> int:
        """Hand merged leads their first records back (undoing the merges an undone import caused), in one
        statement for all (merged, survivor) pairs; returns the records moved."""
        if not merges:
            return 0
        with self._transaction() as con:
            con.execute("DROP TABLE IF EXISTS reviving")
            con.execute("CREATE TEMPORARY TABLE reviving AS SELECT unnest(?) AS merged, unnest(?) AS survivor",
                        [[m for m, _ in merges], [s for _, s in merges]])
            moved = con.execute("SELECT count(*) FROM records r JOIN reviving v "
                                "ON r.lead_id = v.survivor AND r.first_lead_id = v.merged").fetchall()[0][0]
            con.execute("UPDATE records SET lead_id = v.merged FROM reviving v "
                        "WHERE records.lead_id = v.survivor AND records.first_lead_id = v.merged")
            con.execute("DROP TABLE reviving")
            self._queue_leads(con, [lead for pair in merges for lead in pair])
        return int(moved)


    def split_lead(self, survivor: str, merged: str, by: str) -> int:
        """Give a merged lead its own records back and keep the two apart from now on; returns records moved."""
        with self._transaction() as con:
            row = con.execute("SELECT status, merged_into FROM leads WHERE lead_id = ?", [merged]).fetchall()
            if not row or row[0][0] != "merged" or row[0][1] != survivor:
                raise ValueError(f"{merged} is not a lead merged into {survivor}")
            moved = con.execute("SELECT count(*) FROM records WHERE lead_id = ? AND first_lead_id = ?",
                                [survivor, merged]).fetchall()[0][0]
            if not moved:
                raise ValueError(f"no records of {merged} are left in {survivor}")
            con.execute("UPDATE records SET lead_id = ? WHERE lead_id = ? AND first_lead_id = ?",
                        [merged, survivor, merged])
            con.execute("INSERT INTO lead_splits VALUES (?, ?, ?, ?)",
                        [survivor, merged, by, datetime.now(timezone.utc).replace(tzinfo=None)])
            self._queue_leads(con, [survivor, merged])
        return int(moved)


    def add_conflicts(self, conflicts: pd.DataFrame) -> None:
        with self._transaction() as con:
            con.register("more_conflicts", conflicts[CONFLICT_COLUMNS])
            con.execute("INSERT INTO conflicts SELECT * FROM more_conflicts")
            con.unregister("more_conflicts")


    def close_conflicts(self, closed: pd.DataFrame, by: str, cause: str) -> None:
        """closed: conflict_id, reason. Each conflict is closed with a history row on its lead saying why."""
        import pandas as pd
        if closed.empty:
            return
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._transaction() as con:
            con.register("closing", closed[["conflict_id", "reason"]])
            rows = con.execute(
                "SELECT c.conflict_id, c.lead_id, c.field, c.current_value, c.incoming_value, k.reason "
                "FROM conflicts c JOIN closing k USING (conflict_id) WHERE c.status = 'open' ORDER BY c.conflict_id"
            ).df()
            con.execute("UPDATE conflicts SET status = 'closed', decided_by = ?, decided_at = ?, "
                        "decision = 'closed: ' || k.reason FROM closing k "
                        "WHERE conflicts.conflict_id = k.conflict_id AND conflicts.status = 'open'", [by, now])
            con.unregister("closing")
            diffs = pd.DataFrame({
                "lead_id": rows["lead_id"].to_numpy(), "field": "conflict",
                "old_value": [f"open #{i} {f}: {c} / {n}" for i, f, c, n in zip(
                    rows["conflict_id"], rows["field"], rows["current_value"], rows["incoming_value"], strict=True)],
                "new_value": [f"closed #{i}: {r}" for i, r in zip(rows["conflict_id"], rows["reason"], strict=True)]})
            self._append_history(con, diffs, "restore", by, cause)


    def load_snapshot(self, tables: dict[str, pd.DataFrame]) -> None:
        """Fill an empty store from a snapshot, in one transaction; a store holding data is refused."""
        with self._transaction() as con:
            used = con.execute("SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM leads) + "
                               "(SELECT count(*) FROM history)").fetchall()[0][0]
            if used:
                raise ValueError(f"{self.label} is not empty; restore a backup into a new store")
            con.execute("DELETE FROM store_meta")
            for name, frame in tables.items():
                con.register("snapshot_part", frame)
                columns = ", ".join(f'"{c}"' for c in frame.columns)
                con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM snapshot_part")
                con.unregister("snapshot_part")


    def apply_decisions(self, overrides: pd.DataFrame, decided: pd.DataFrame, lead_updates: pd.DataFrame) -> None:
        """Operators' decisions in one transaction: overrides appended, conflicts closed, leads updated,
        and every change written to the history."""
        import pandas as pd
        with self._transaction() as con:
            if len(lead_updates):
                con.register("updated_leads", lead_updates[["lead_id"]].drop_duplicates())
                before = con.execute("SELECT * FROM leads WHERE lead_id IN (SELECT lead_id FROM updated_leads)").df()
                con.unregister("updated_leads")
                old = [str(before.set_index("lead_id").at[lead, field] or "") if lead in set(before["lead_id"]) else ""
                       for lead, field in zip(lead_updates["lead_id"], lead_updates["field"], strict=True)]
                diffs = pd.DataFrame({"lead_id": lead_updates["lead_id"].to_numpy(),
                                      "field": lead_updates["field"].to_numpy(), "old_value": old,
                                      "new_value": lead_updates["value"].astype(str).to_numpy()})
                keep = diffs["old_value"] != diffs["new_value"]
                for (action, actor, cause), group in diffs[keep].groupby(
                        [lead_updates.loc[keep.to_numpy(), "action"].to_numpy(),
                         lead_updates.loc[keep.to_numpy(), "actor"].to_numpy(),
                         lead_updates.loc[keep.to_numpy(), "cause"].to_numpy()], sort=False):
                    self._append_history(con, group, action, actor, cause)
            if len(overrides):
                con.register("new_overrides", overrides[OVERRIDE_COLUMNS])
                con.execute("INSERT INTO lead_overrides SELECT * FROM new_overrides")
                con.unregister("new_overrides")
            if len(decided):
                con.register("decided", decided[["conflict_id", "decided_by", "decided_at", "decision"]])
                con.execute("UPDATE conflicts SET status = 'decided', decided_by = d.decided_by, "
                            "decided_at = d.decided_at, decision = d.decision FROM decided d "
                            "WHERE conflicts.conflict_id = d.conflict_id")
                con.unregister("decided")
            for row in lead_updates.itertuples(index=False):
                con.execute(f'UPDATE leads SET "{row.field}" = ?, updated_at = ? WHERE lead_id = ?',
                            [row.value, row.updated_at, row.lead_id])
            key_fields.refuse_taken_primary_contacts(
                con, list(zip(lead_updates["lead_id"], lead_updates["field"], lead_updates["value"].astype(str),
                              strict=True)), "the decision")
