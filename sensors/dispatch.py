"""Sensor: what the notification dispatcher did, recorded in Dagster (no run per batch).

The dispatcher of `datafactory serve --dispatch` applies events and delivers notifications within a second
or two; a run per batch would cost 7-12 s of launch each. It writes a journal line per batch (counts only);
this sensor reads the journal from its cursor (the file's inode and a byte offset) and records each line as
a materialization of `lead_events` or `notification_deliveries`, with the same counts a run of those assets
reports. It never opens the lead store.
"""

import dagster as dg
import pandas as pd

from assets.metadata import bar_chart, counts_table
from assets.resources import LeadStoreResource
from datafactory_pipelines.notify.journal import DELIVERIES, EVENTS, JournalEntry, journal_path, read_journal

SOURCE = "notify dispatcher (datafactory serve --dispatch)"


def events_metadata(counts: dict) -> dict:
    by_outcome = counts.get("by_outcome", {})
    pairs = pd.DataFrame(counts.get("by_type_and_outcome", []), columns=["type", "outcome", "events"])
    return {
        "events": int(counts.get("events", 0)),
        "first_seq": int(counts.get("first_seq", 0)),
        "last_seq": int(counts.get("last_seq", 0)),
        "field_changes": int(counts.get("field_changes", 0)),
        "conflicts_queued": int(counts.get("conflicts_queued", 0)),
        "contacts_flagged": int(counts.get("contacts_flagged", 0)),
        "leads_touched": int(counts.get("leads_touched", 0)),
        "by_outcome": bar_chart(list(by_outcome), [int(n) for n in by_outcome.values()], "outcome", "events"),
        "by_rule": counts_table(counts.get("by_rule", {}), "rule", "events"),
        "by_type": counts_table(counts.get("by_type", {}), "type", "events"),
        "by_type_and_outcome": dg.MetadataValue.md(pairs.to_markdown(index=False) if len(pairs) else "_none_"),
    }


def deliveries_metadata(counts: dict) -> dict:
    return {key: (int(value) if isinstance(value, int) else str(value)) for key, value in counts.items()}


def materialization(entry: JournalEntry) -> dg.AssetMaterialization | None:
    if entry.kind == EVENTS:
        key, metadata = "lead_events", events_metadata(entry.counts)
    elif entry.kind == DELIVERIES:
        key, metadata = "notification_deliveries", deliveries_metadata(entry.counts)
    else:
        return None
    return dg.AssetMaterialization(asset_key=key, description=f"by the {SOURCE} at {entry.at}",
                                   metadata={**metadata, "dispatched_at": entry.at, "dispatched_by": SOURCE})


@dg.sensor(
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records in Dagster every batch of events the notification dispatcher applied and every "
                "delivery pass it made (materializations of lead_events and notification_deliveries, with "
                "counts), read from its journal; launches no run.",
)
def dispatch_journal_sensor(context: dg.SensorEvaluationContext, lead_store: LeadStoreResource) -> dg.SensorResult:
    path = journal_path(lead_store.paths().store_files)
    try:
        file_id = path.stat().st_ino
    except FileNotFoundError:
        return dg.SensorResult(skip_reason=f"no {path.name} yet (no dispatcher has run)")
    # cursor "inode:offset": a journal moved away (rotated) and begun again is read from its start
    read_id, _, offset = (context.cursor or "").rpartition(":")
    entries = read_journal(path, int(offset) if offset and read_id == str(file_id) else 0)
    if not entries:
        return dg.SensorResult(skip_reason=f"nothing new in {path.name}")
    events = [m for m in (materialization(e) for e in entries) if m is not None]
    context.log.info(f"{len(events)} batch(es) recorded from the dispatcher's journal")
    return dg.SensorResult(asset_events=events, cursor=f"{file_id}:{entries[-1].offset}")
