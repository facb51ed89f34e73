"""Sensor: the notification outbox."""
import os
from datetime import datetime, timezone

import dagster as dg

from assets.notify import deliver_notifications
from assets.resources import LeadStoreResource
from datafactory_pipelines.notify.config import NotifyConfigError, load_notify_config
from datafactory_pipelines.notify.delivery import due_batch
from datafactory_pipelines.notify.dispatcher import dispatcher_alive

IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED]
# a due batch that no run has cleared for this long gets a new run key (run keys are remembered forever)
STALE_SECONDS = 600


def _interval() -> int:
    return int(os.environ.get("DATAFACTORY_OUTBOX_INTERVAL_SECONDS", "15"))


def outbox_run_key(first_id: int, last_id: int, max_attempt: int, fingerprint: str, stale_rounds: int) -> str:
    key = f"outbox:{first_id}-{last_id}:attempt{max_attempt}:{fingerprint}"
    return key + (f":stale{stale_rounds}" if stale_rounds else "")


@dg.sensor(
    job=deliver_notifications,
    minimum_interval_seconds=_interval(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the lead store's notification outbox: when messages or retries are due, requests one "
                "deliver_notifications run, keyed by the due batch's outbox id range and attempt.",
)
def outbox_sensor(context: dg.SensorEvaluationContext, lead_store: LeadStoreResource) -> dg.SensorResult:
    handed_over = dispatcher_alive(lead_store.paths().store_files)
    if handed_over:  # it delivers within a second; recorded by dispatch_journal_sensor
        return dg.SensorResult(skip_reason=f"handed over to the notification dispatcher ({handed_over})")
    try:
        config = load_notify_config(lead_store.paths().home)
    except NotifyConfigError as err:
        return dg.SensorResult(skip_reason=str(err))
    if not config.has_channels:
        return dg.SensorResult(skip_reason=f"no webhooks or mail configured in {config.source}")
    running = context.instance.get_run_records(
        dg.RunsFilter(job_name=deliver_notifications.name, statuses=IN_PROGRESS), limit=1)
    if running:
        return dg.SensorResult(skip_reason=f"delivery run {running[0].dagster_run.run_id} is still going")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    batch = due_batch(lead_store.open(), config, now)
    if batch.empty:
        return dg.SensorResult(skip_reason="nothing due in the outbox")
    waited = (now - batch.oldest_due).total_seconds() if batch.oldest_due else 0.0
    key = outbox_run_key(batch.first_id, batch.last_id, batch.max_attempt, batch.fingerprint,
                         int(max(0.0, waited) // STALE_SECONDS))
    context.log.info(f"{batch.unrouted} new message(s), {batch.deliveries} due delivery(ies): {key}")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=key, tags={
        "datafactory/outbox_range": f"{batch.first_id}-{batch.last_id}",
        "datafactory/outbox_attempt": str(batch.max_attempt),
        **deliver_notifications.tags,
    })])
