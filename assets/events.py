import dagster as dg
import pandas as pd

from assets.metadata import bar_chart, counts_table
from assets.partitions import LEAD_STORE_TAG
from assets.resources import LeadStoreResource
from datafactory_pipelines.events.apply import apply_events
from datafactory_pipelines.rules import load_rules


class LeadEventsConfig(dg.Config):
    first_seq: int = 0  # the batch's sequence range in the event table (inclusive)
    last_seq: int = -1  # -1: every waiting event from first_seq on


@dg.asset(
    group_name="events",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def lead_events(context: dg.AssetExecutionContext, config: LeadEventsConfig,
                lead_store: LeadStoreResource) -> dg.MaterializeResult:
    """Events from other systems (POST /events, inbox/events/*.jsonl, tracking-link clicks) applied to the
    leads by the rules (shipped + $DATAFACTORY_HOME/rules), in one transaction with each event's status.
    Counts per event type, rule and outcome; no personal data."""
    paths = lead_store.paths()
    report = apply_events(lead_store.open(), load_rules(paths.home), config.first_seq,
                          None if config.last_seq < 0 else config.last_seq)
    by_pair = pd.DataFrame([{"type": t, "outcome": s, "events": n} for (t, s), n in
                            sorted(report.by_type_and_status.items())])
    context.log.info(f"events {report.first_seq}..{report.last_seq}: {dict(report.by_status)}")
    return dg.MaterializeResult(metadata={
        "events": report.events,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "field_changes": report.field_changes,
        "conflicts_queued": report.conflicts,
        "contacts_flagged": report.flags,
        "leads_touched": report.leads_touched,
        "by_outcome": bar_chart(list(report.by_status), list(report.by_status.values()), "outcome", "events"),
        "by_rule": counts_table(dict(report.by_rule), "rule", "events"),
        "by_type": counts_table(dict(report.by_type), "type", "events"),
        "by_type_and_outcome": dg.MetadataValue.md(by_pair.to_markdown(index=False) if len(by_pair) else "_none_"),
    })


apply_lead_events = dg.define_asset_job(
    "apply_lead_events",
    selection=[lead_events],
    description="Apply one batch of stored events (a sequence range of the event table) through the rules.",
    tags=LEAD_STORE_TAG,
    # one step: a second process for it cost ~3 s of every run (the dispatcher's fallback path)
    executor_def=dg.in_process_executor,
)
