"""Restoring, always by writing new history rows, never by rewriting old ones.

Every restore is one change: under the store's writer lock and in one transaction (all or nothing).

- undo an import, as if it never happened: its records leave linkage (kept, marked) and the import
  is marked undone (its file may be imported again); the leads it touched are relinked and curated
  afresh from the records left, so the leads it created retire, the merges it caused come apart and
  a value only it supported goes back to what the other records give. Open conflicts raised since
  the import close, each with a history row. A value a person set by hand after the import keeps
  that value and is queued as a conflict, never silently overwritten. Only the touched leads'
  history is read.
- as of a time, for one lead: every field back to its value then (as a restore edit).
- as of a time, for everything: live imports made after it are undone, then every lead's fields
  are restored to their values then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd

from datafactory_pipelines.conflicts import EDITABLE_FIELDS, group_id
from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.pipeline import relink_and_curate
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.restores_sql import note_prefix


@dataclass
class RestoreReport:
    records_retired: int = 0
    fields_restored: int = 0
    leads_retired: list[str] = field(default_factory=list)
    contested: list[tuple[str, str]] = field(default_factory=list)  # (lead_id, field) changed again later
    imports_undone: list[str] = field(default_factory=list)
    conflicts_closed: int = 0  # open conflicts the undone import took part in
    restore_id: str = ""  # names this restore in the restores log; `restore --undo-restore ID` takes it back


HAND_SET_ACTIONS = ("edit", "conflict decision")  # what a person, not a file, decided


def _caused_by(history: pd.DataFrame, import_id: str) -> pd.Series:
    """Rows whose cause (one import id, or several joined by commas) names this import."""
    causes = "," + history["cause"].fillna("").astype(str) + ","
    return causes.str.contains(f",{import_id},", regex=False)


def new_restore_id() -> str:
    """A restore's id: R and the UTC time to the microsecond (one writer at a time: unique, in order)."""
    return "R" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def undo_import(store: LeadStore, import_id: str, by: str) -> RestoreReport:
    """Revert exactly what an import changed, as one change (one transaction, under the writer lock)."""
    with store.exclusive(f"undo import {import_id}", atomic=True):
        report = _undo_import(store, import_id, by)
        report.restore_id = new_restore_id()
        store.record_restore(report.restore_id, "undo import", import_id, by, [import_id])
        return report


def _undo_import(store: LeadStore, import_id: str, by: str) -> RestoreReport:
    """As if the import never happened. Reads only the leads it touched and their history.

    - its records leave linkage (kept, marked) and the import is marked undone, so its file may come back;
    - the merges it caused come apart; the leads it touched are relinked and curated fresh from
      the records left, so a value whose only support was this import goes back to what the rest give;
    - open conflicts it took part in close, each with a history row saying why;
    - a value a person set by hand after it (edit, decision) stays and is queued for review.
    """
    touched = store.leads_touched_by_import(import_id)
    history = store.history_of_leads(touched)
    caused_rows = _caused_by(history, import_id)
    caused = history[caused_rows]
    contested = _hand_set_after(history, caused_rows)
    mine = set(store.import_records(import_id)["record_id"].astype(int))
    report = RestoreReport(imports_undone=[import_id])
    report.records_retired = store.retire_import(import_id, by)
    # merges this import caused: the merged leads get their own records (and ids) back before relinking
    merges = caused[(caused["field"] == "merged_into") & (caused["new_value"] != "")]
    store.revive_merges(list(zip(merges["lead_id"], merges["new_value"], strict=True)))
    cause = f"undo import {import_id}"
    closing = _conflicts_it_took_part_in(store, touched, import_id, mine)
    store.close_conflicts(closing, by, cause)
    report.conflicts_closed = len(closing)
    before = store.active_among(touched)
    outcome = relink_and_curate(store, retrain=_model_learned_from(store, mine), actor=by, cause=cause,
                                action="restore", curate_fresh=touched)
    # a lead that is no longer active: one of the touched leads, or one the relink merged into another
    report.leads_retired = sorted((before - store.active_among(sorted(before))) | set(outcome.merges))
    report.contested = [(lead, name) for lead, name, _ in contested]
    if contested:
        _report_contested(store, contested, import_id)
    return report


def _model_learned_from(store: LeadStore, its_records: set[int]) -> bool:
    """Whether the stored linkage model was learned with the import's records among its data.

    Record ids only grow, so a model learned from at least as many records as existed before the
    import cannot predate it. Such a model is learned again (or the shipped one used) on undo.
    """
    saved = store.link_model()
    if not saved or not its_records:
        return False
    trained_on = json.loads(saved).get("trained_on", {})
    return trained_on.get("source") != "sample" and int(trained_on.get("records", 0)) >= min(its_records)


def _hand_set_after(history: pd.DataFrame, caused_rows: pd.Series) -> list[tuple[str, str, str]]:
    """(lead, field, value before the import) for every field a person set by hand after the import changed it."""
    caused = history[caused_rows]
    if caused.empty:
        return []
    first = caused.sort_values("seq").groupby(["lead_id", "field"]).agg(first_seq=("seq", "min"),
                                                                        before=("old_value", "first"))
    hand = history[~caused_rows & history["action"].isin(HAND_SET_ACTIONS) & history["field"].isin(EDITABLE_FIELDS)]
    later = hand.join(first, on=["lead_id", "field"], how="inner")
    later = later[later["seq"] > later["first_seq"]].drop_duplicates(["lead_id", "field"])
    return [(lead, name, before or "") for lead, name, before in zip(later["lead_id"], later["field"],
                                                                     later["before"], strict=True)]


def _conflicts_it_took_part_in(store: LeadStore, touched: list[str], import_id: str,
                               its_records: set[int]) -> pd.DataFrame:
    """Open conflicts on the touched leads raised since the undone import (between it and later imports),
    or whose values only it carried. Older conflicts keep holding their value."""
    conflicts = store.conflicts_for(touched, "open")
    conflicts = conflicts[conflicts["kind"] != "undo import"]
    if conflicts.empty:
        return pd.DataFrame(columns=["conflict_id", "reason"])
    imported_at = pd.Timestamp(store.import_row(import_id)["imported_at"])
    held = sorted(set(conflicts["lead_id"]))  # only the leads with an open conflict: their records and overrides
    records = store.records_of_leads(held)
    records = records[~records["import_id"].eq(import_id)]
    overrides = store.overrides_for(held)
    pinned = set(zip(overrides["lead_id"], overrides["field"], overrides["value"], strict=True))
    closed = []
    for c in conflicts.itertuples():
        if c.import_id == import_id or (pd.notna(c.incoming_record) and int(c.incoming_record) in its_records):
            closed.append((c.conflict_id, f"import {import_id} was undone; it brought the incoming value"))
            continue
        if pd.Timestamp(c.created_at) >= imported_at:  # the value held against newer data was chosen with its help
            closed.append((c.conflict_id, f"import {import_id} was undone; the lead is curated again without it"))
            continue
        carried = set(records.loc[records["lead_id"] == c.lead_id, c.field].dropna()) \
            if c.field in records.columns else set()
        for value in (c.current_value, c.incoming_value):
            if value and value not in carried and (c.lead_id, c.field, value) not in pinned:
                closed.append((c.conflict_id, f"import {import_id} was undone; no record left carries {value}"))
                break
    return pd.DataFrame(closed, columns=["conflict_id", "reason"])


def _report_contested(store: LeadStore, contested: list[tuple[str, str, str]], import_id: str) -> None:
    """A field changed again after the undone import: the operator decides (keep, or the value from before)."""
    leads = store.leads_by_id(sorted({lead for lead, _, _ in contested})).set_index("lead_id")
    next_id = int(store.change_path_state()["max_conflict_id"]) + 1
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = []
    for offset, (lead, name, before_value) in enumerate(contested):
        if lead not in leads.index or leads.at[lead, name] == before_value:
            continue
        kind = "undo import"
        rows.append({"conflict_id": next_id + offset, "group_id": group_id(name, kind, "", import_id),
                     "lead_id": lead, "field": name, "kind": kind, "current_value": leads.at[lead, name],
                     "incoming_value": before_value, "incoming_record": None, "source": "", "import_id": import_id,
                     "status": "open", "created_at": now, "decided_by": None, "decided_at": None, "decision": None})
    if rows:
        store.add_conflicts(pd.DataFrame(rows))


def values_as_of(history: pd.DataFrame, moment: datetime) -> pd.Series:
    """(lead_id, field) -> the value it had at `moment`, replayed from the history."""
    upto = history[pd.to_datetime(history["changed_at"]) <= pd.Timestamp(moment)]
    return upto.sort_values("seq").groupby(["lead_id", "field"])["new_value"].last()


def utc_naive(moment: datetime | str) -> datetime:
    """A time as the store keeps it (UTC, no zone): one with a zone is converted, one without is taken as UTC."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(timezone.utc).tz_localize(None)
    return stamp.to_pydatetime()


def restore_lead_as_of(store: LeadStore, lead_id: str, moment: datetime, by: str) -> RestoreReport:
    moment = utc_naive(moment)
    restore_id = new_restore_id()
    with store.exclusive(f"restore {lead_id} as of {moment}", atomic=True):
        report = _restore_fields(store, store.history(lead_id), [lead_id], moment, by, restore_id)
        report.restore_id = restore_id
        store.record_restore(restore_id, "lead as of", f"{lead_id} {moment:%Y-%m-%d %H:%M:%S}", by, [])
        return report


def restore_all_as_of(store: LeadStore, moment: datetime, by: str) -> RestoreReport:
    """Undo every later import and bring every field back, all in one transaction: it all happens or none of it."""
    moment = utc_naive(moment)
    restore_id = new_restore_id()
    with store.exclusive(f"restore everything as of {moment}", atomic=True):
        report = _restore_all_as_of(store, moment, by, restore_id)
        report.restore_id = restore_id
        store.record_restore(restore_id, "as of", f"{moment:%Y-%m-%d %H:%M:%S}", by, report.imports_undone)
        return report


def _restore_all_as_of(store: LeadStore, moment: datetime, by: str, restore_id: str) -> RestoreReport:
    imports = store.imports()
    later = imports[(pd.to_datetime(imports["imported_at"]) > pd.Timestamp(moment))
                    & imports["undone_at"].isna()]["import_id"].tolist()  # one undone before stays undone
    report = RestoreReport()
    for import_id in reversed(later):  # newest first
        undone = _undo_import(store, import_id, by)
        report.records_retired += undone.records_retired
        report.leads_retired += undone.leads_retired
        report.imports_undone.append(import_id)
    fields = _restore_fields(store, store.history(), list(store.leads()["lead_id"]), moment, by, restore_id)
    report.fields_restored = fields.fields_restored
    return report


def _restore_fields(store: LeadStore, history: pd.DataFrame, lead_ids: list[str], moment: datetime,
                    by: str, restore_id: str) -> RestoreReport:
    then = values_as_of(history, moment)
    leads = store.leads_by_id(lead_ids).set_index("lead_id")
    edits = []
    for lead in lead_ids:
        if lead not in leads.index:
            continue
        for name in EDITABLE_FIELDS:
            value = then.get((lead, name), "")
            if str(leads.at[lead, name] or "") != value:
                edits.append({"lead_id": lead, "field": name, "value": value})
    if edits:
        # the note starts with the restore's id: its overrides are found by it when it is taken back
        edit_leads(store, pd.DataFrame(edits), by=by,
                   note=f"{note_prefix(restore_id)}as of {moment:%Y-%m-%d %H:%M:%S}", origin="restore")
    return RestoreReport(fields_restored=len(edits))


def undo_restore(store: LeadStore, restore_id: str, by: str) -> RestoreReport:
    """Take a restore back, as if it never happened, as one change: the imports it undid are live again
    (their records back in linkage, the leads they made back with their ids), the field values it set give
    way to what the records (or an earlier edit) say. Written as new history; the restore stays in the log,
    marked undone."""
    with store.exclusive(f"undo restore {restore_id}", atomic=True):
        return _undo_restore(store, restore_id, by)


def _undo_restore(store: LeadStore, restore_id: str, by: str) -> RestoreReport:
    from datafactory_pipelines.linkage import load_config
    from datafactory_pipelines.linkage.engine import LEAD_LINK_COLUMNS, link_values

    row = store.restore_row(restore_id)
    if row is None:
        raise ValueError(f"no restore {restore_id} (datafactory restore --list shows them)")
    if row["undone_at"] is not None:
        raise ValueError(f"restore {restore_id} was already taken back ({row['undone_at']:%Y-%m-%d %H:%M} "
                         f"by {row['undone_by']})")
    report = RestoreReport(restore_id=restore_id)
    touched: set[str] = set(store.drop_restore_overrides(restore_id))
    for import_id in reversed(json.loads(row["imports_undone"] or "[]")):  # oldest first
        records = store.import_records(import_id)
        columns = [c for c in LEAD_LINK_COLUMNS if c in records.columns]
        values = link_values(records[columns], load_config()) if len(records) else pd.DataFrame(
            columns=["col", "value", "record_id", "surname"])
        report.records_retired -= store.revive_import(import_id, values)  # negative: records back in
        touched |= set(store.leads_touched_by_import(import_id))
        report.imports_undone.append(import_id)
    store.mark_restore_undone(restore_id, by)
    before = store.active_among(sorted(touched))
    relink_and_curate(store, actor=by, cause=f"undo restore {restore_id}", action="restore",
                      curate_fresh=sorted(touched))
    report.leads_retired = sorted(before - store.active_among(sorted(touched)))
    return report


def unmerge(store: LeadStore, lead_id: str, by: str) -> list[str]:
    """Split every lead merged into `lead_id` back out, with its own records and its own id.

    Both keep their history; the pair is remembered so linking never joins them again.
    """
    with store.exclusive(f"unmerge {lead_id}", atomic=True):
        return _unmerge(store, lead_id, by)


def _unmerge(store: LeadStore, lead_id: str, by: str) -> list[str]:
    merged = store.leads_merged_into(lead_id)
    if not merged:
        raise ValueError(f"no lead was merged into {lead_id}")
    for other in merged:
        store.split_lead(lead_id, other, by)
    relink_and_curate(store, actor=by, cause=f"unmerge {lead_id}", action="unmerge")
    return merged
