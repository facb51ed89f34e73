import dagster as dg

from assets.imports import standardized_contacts
from assets.metadata import counts_table, preview
from assets.partitions import lead_files, live_import_of
from assets.resources import LeadStoreResource

QUARANTINE_PREVIEW = ["source_file", "sheet", "source_row", "reject_reason", "name_raw", "mobile_raw", "email_raw"]


@dg.asset(
    deps=[standardized_contacts],
    partitions_def=lead_files,
    group_name="imports",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def quarantined_records(context: dg.AssetExecutionContext, lead_store: LeadStoreResource) -> dg.MaterializeResult:
    """Rows of this file that reach nobody (no valid mobile, landline, email, WeChat, QQ, Douyin or
    Kuaishou), set aside with the reason. They stay in the lead store, out of linkage, and can be
    fixed in the source file and dropped again. Dirty input lands here; it is not a failed check."""
    store = lead_store.open()
    imports = store.imports()
    import_id = live_import_of(imports, context.partition_key)
    this = imports[imports["import_id"] == import_id]
    rows = store.quarantine(import_id) if len(this) else store.quarantine("")
    total = store.quarantine_count()  # a count, not the rows of the whole store
    return dg.MaterializeResult(
        metadata={
            "quarantined_in_file": len(rows),
            "quarantined_in_store": total,
            "share_of_file": dg.MetadataValue.float(
                round(len(rows) / max(1, int(this["rows_read"].iloc[0]) if len(this) else 1), 4)),
            "reasons": counts_table(rows["reject_reason"].value_counts().to_dict(), "reason"),
            "preview": preview(rows, QUARANTINE_PREVIEW),
        }
    )
