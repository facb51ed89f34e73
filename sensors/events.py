import os
from collections.abc import Callable

import dagster as dg
from dagster._core.execution.job_execution_result import JobExecutionResult

from assets.events import apply_lead_events
from assets.partitions import LEAD_STORE_TAG
from assets.resources import LeadStoreResource
from datafactory_pipelines.events.feed import EVENT_FILE_SUFFIXES, feed_window, ingest_event_files
from datafactory_pipelines.inbox import inbox_files
from datafactory_pipelines.notify.dispatcher import dispatcher_alive
from sensors.launched_runs import run_job_here

BATCH_EVENTS = 5000  # events per run
IN_PROGRESS = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED}
MAX_RUNS_PER_TICK = 20


def _settle_seconds() -> float:
    return float(os.environ.get("DATAFACTORY_INBOX_SETTLE_SECONDS", "2"))


@dg.sensor(
    job=apply_lead_events,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reads the event table from its cursor (the last sequence number handed out) and requests one "
                "apply_lead_events run per batch, run key = the batch's sequence range. Event files dropped "
                "into inbox/events/ (JSON Lines) are accepted into the table first.",
)
def event_feed_sensor(context: dg.SensorEvaluationContext, lead_store: LeadStoreResource) -> dg.SensorResult:
    paths = lead_store.paths()
    files = [p for p in inbox_files(paths.inbox / "events", _settle_seconds())
             if p.suffix.lower() in EVENT_FILE_SUFFIXES]
    handed_over = dispatcher_alive(paths.store_files)
    if handed_over and not files:  # no need to open the store, which the dispatcher's server holds
        return dg.SensorResult(skip_reason=f"handed over to the notification dispatcher ({handed_over})")
    store = lead_store.open()
    for outcome in ingest_event_files(store, files, paths.processed / "events", paths.rejected / "events"):
        context.log.info(f"{outcome.path.name}: {outcome.accepted} events accepted, {outcome.duplicates} replays, "
                         f"{len(outcome.errors)} bad lines")
    if handed_over:  # it applies the events within a second; recorded by dispatch_journal_sensor
        return dg.SensorResult(skip_reason=f"handed over to the notification dispatcher ({handed_over})")
    cursor = int(context.cursor or 0)
    requests = []
    behind = feed_window(store, 0, BATCH_EVENTS)
    if behind is not None and behind[0] <= cursor and not context.instance.get_run_records(
            dg.RunsFilter(job_name=apply_lead_events.name, statuses=list(IN_PROGRESS)), limit=1):
        # events behind the cursor still waiting and no run on its way: their run failed; try once more
        # per cursor position (the key repeats until the feed moves on, and Dagster runs a key once)
        first, last, count = behind
        last = min(last, cursor)
        requests.append(dg.RunRequest(
            run_key=f"events-{first}-{last}-retry-at-{cursor}",
            run_config={"ops": {"lead_events": {"config": {"first_seq": first, "last_seq": last}}}},
            tags={"datafactory/events": str(count), **LEAD_STORE_TAG},
        ))
    while len(requests) < MAX_RUNS_PER_TICK:
        window = feed_window(store, cursor, BATCH_EVENTS)
        if window is None:
            break
        first, last, count = window
        requests.append(dg.RunRequest(
            run_key=f"events-{first}-{last}",
            run_config={"ops": {"lead_events": {"config": {"first_seq": first, "last_seq": last}}}},
            tags={"datafactory/events": str(count), **LEAD_STORE_TAG},
        ))
        cursor = last
    return dg.SensorResult(run_requests=requests, cursor=str(cursor))


def process_event_feed(instance: dg.DagsterInstance, progress: Callable[[str], None] = print,
                       ) -> list[JobExecutionResult]:
    """Evaluate the sensor once and run what it requests, in this process (`datafactory apply-events`)."""
    context = dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()})
    result = event_feed_sensor(context)
    if result.skip_reason:  # e.g. handed over to the notification dispatcher, which applies them at once
        progress(result.skip_reason.skip_message)
    runs = []
    for request in result.run_requests or []:
        progress(f"apply_lead_events {request.run_key} …")
        # made as the daemon makes the sensor's runs (the Overview timeline shows them), executed here
        runs.append(run_job_here(
            instance, apply_lead_events.name,
            run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={**request.tags, "dagster/sensor_name": event_feed_sensor.name,
                  "datafactory/launched_by": "datafactory apply-events"}))
    return runs
