"""The Dagster entry point: `dagster dev` loads `defs` from here."""

import dagster as dg

from assets.conflicts import conflict_queue, operator_decisions
from assets.events import apply_lead_events, lead_events
from assets.history import history_backup, restore, undo_lead_file
from assets.imports import import_lead_file_assets
from assets.jobs import apply_operator_workbook, import_lead_file, relink_leads
from assets.leads import link_and_curate
from assets.quarantine import quarantined_records
from assets.resources import LeadStoreResource
from expectations.checks import curated_leads_checks
from sensors.events import event_feed_sensor
from sensors.inbox import inbox_sensor

nightly_relink = dg.ScheduleDefinition(
    job=relink_leads,
    cron_schedule="30 2 * * *",
    run_config={"ops": {"entity_clusters": {"config": {"full_relink": True}}}},
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

daily_backup = dg.ScheduleDefinition(
    name="daily_history_backup",
    target=[history_backup],
    cron_schedule="15 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[import_lead_file_assets, quarantined_records, link_and_curate,
            operator_decisions, conflict_queue, history_backup, lead_events],
    asset_checks=[*curated_leads_checks],
    jobs=[import_lead_file, relink_leads, apply_operator_workbook, restore, undo_lead_file, apply_lead_events],
    sensors=[inbox_sensor, event_feed_sensor],
    schedules=[nightly_relink, daily_backup],
    resources={"lead_store": LeadStoreResource()},
)

# Owner notifications: the outbox sensor and its delivery job (assets/notify.py, sensors/notify.py).
from assets.notify import deliver_notifications, notification_deliveries  # noqa: E402
from sensors.notify import outbox_sensor  # noqa: E402

defs = dg.Definitions.merge(defs, dg.Definitions(
    assets=[notification_deliveries], jobs=[deliver_notifications], sensors=[outbox_sensor]))

# The notification dispatcher's record: its batches as materializations, no run per batch (sensors/dispatch.py).
from sensors.dispatch import dispatch_journal_sensor  # noqa: E402

defs = dg.Definitions.merge(defs, dg.Definitions(sensors=[dispatch_journal_sensor]))
