"""The Dagster entry point: `dagster dev` loads `defs` from here."""

import dagster as dg

from assets.imports import raw_imports, standardized_contacts
from assets.leads import curated_leads, entity_clusters
from assets.partitions import LEAD_STORE_TAG
from assets.quarantine import quarantined_records
from assets.resources import LeadStoreResource
from expectations.checks import curated_leads_checks, standardized_contacts_checks
from sensors.inbox import inbox_sensor

import_lead_file = dg.define_asset_job(
    "import_lead_file",
    selection=[raw_imports, standardized_contacts, quarantined_records, entity_clusters, curated_leads],
    description="Import one dropped file (a lead_files partition), relink, and update the curated leads.",
    tags=LEAD_STORE_TAG,
)
relink_leads = dg.define_asset_job(
    "relink_leads",
    selection=[entity_clusters, curated_leads],
    description="Relink every record in the lead store and rebuild the golden records.",
    tags=LEAD_STORE_TAG,
)
nightly_relink = dg.ScheduleDefinition(
    job=relink_leads,
    cron_schedule="30 2 * * *",
    run_config={"ops": {"entity_clusters": {"config": {"full_relink": True}}}},
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

defs = dg.Definitions(
    assets=[raw_imports, standardized_contacts, quarantined_records, entity_clusters, curated_leads],
    asset_checks=[*standardized_contacts_checks, *curated_leads_checks],
    jobs=[import_lead_file, relink_leads],
    sensors=[inbox_sensor],
    schedules=[nightly_relink],
    resources={"lead_store": LeadStoreResource()},
)
