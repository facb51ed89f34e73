import dagster as dg

from assets.conflicts import conflict_queue, operator_decisions
from assets.imports import raw_imports, standardized_contacts
from assets.leads import curated_leads, entity_clusters
from assets.partitions import LEAD_STORE_TAG
from assets.quarantine import quarantined_records
from expectations.checks import curated_leads_key_fields

import_lead_file = dg.define_asset_job(
    "import_lead_file",
    # the import's own gates (its records; the leads it curated) run in its steps; the whole-table GX check
    # of the curated leads (seconds per 100k leads) is the nightly relink's
    selection=dg.AssetSelection.assets(raw_imports, standardized_contacts, quarantined_records, entity_clusters,
                                       curated_leads, conflict_queue)
    - dg.AssetSelection.checks(curated_leads_key_fields),
    description="Import one dropped file (a lead_files partition), relink, and update the curated leads.",
    tags=LEAD_STORE_TAG,
    # one process for the whole run: its steps follow each other on one store with one writer, and a
    # process per step would load the code location again for each (seconds of every import)
    executor_def=dg.in_process_executor,
)
relink_leads = dg.define_asset_job(
    "relink_leads",
    selection=dg.AssetSelection.assets(entity_clusters, curated_leads, conflict_queue),
    description="Relink every record in the lead store and rebuild the golden records.",
    tags=LEAD_STORE_TAG,
)
apply_operator_workbook = dg.define_asset_job(
    "apply_operator_workbook",
    selection=[operator_decisions, conflict_queue],
    description="Apply a filled-in conflict workbook or an edits sheet dropped into the inbox.",
    tags=LEAD_STORE_TAG,
)
