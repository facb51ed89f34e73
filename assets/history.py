import json

import dagster as dg

from assets.partitions import LEAD_STORE_TAG, lead_files, live_import_of
from assets.resources import LeadStoreResource
from datafactory_pipelines.backup import backup
from datafactory_pipelines.restore import restore_all_as_of, restore_lead_as_of, undo_import, undo_restore


@dg.asset(
    group_name="history",
    kinds={"parquet"},
    owners=["team:data-engineering"],
)
def history_backup(lead_store: LeadStoreResource) -> dg.MaterializeResult:
    """Every lead-store table as Parquet under $DATAFACTORY_HOME/backups/<timestamp>/ with a manifest
    (row counts, SHA-256 of each file, the hash at the head of the history chain). The history is written
    in append-only chunks, so each backup adds only the rows since the last one.
    Restore with `datafactory restore-backup DIR` into an empty store."""
    folder = backup(lead_store.open(), lead_store.paths().home / "backups")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return dg.MaterializeResult(metadata={
        "folder": str(folder),
        "history_rows": manifest["history_rows"],
        "history_head": manifest["history_head"],
        "tables": dg.MetadataValue.json({k: v["rows"] for k, v in manifest["tables"].items()}),
    })


class RestoreConfig(dg.Config):
    import_id: str = ""  # undo this import
    as_of: str = ""  # or bring back everything (or one lead) as of this time, UTC
    lead_id: str = ""  # with as_of: only this lead
    undo_restore_id: str = ""  # or take back an earlier restore (its id is in that run's metadata)
    restored_by: str = "dagster"


@dg.op(required_resource_keys={"lead_store"})
def restore_leads(context: dg.OpExecutionContext, config: RestoreConfig) -> None:
    """Undo an import, or restore one lead or everything as of a time, by writing new history rows."""
    store = context.resources.lead_store.open()
    if config.undo_restore_id:
        report = undo_restore(store, config.undo_restore_id, by=config.restored_by)
        summary = {"restore taken back": config.undo_restore_id, "imports live again": len(report.imports_undone)}
    elif config.import_id:
        report = undo_import(store, config.import_id, by=config.restored_by)
        summary = {"import undone": config.import_id, "records retired": report.records_retired,
                   "leads retired": len(report.leads_retired), "contested fields": len(report.contested)}
    elif config.as_of and config.lead_id:
        report = restore_lead_as_of(store, config.lead_id, dg_time(config.as_of), by=config.restored_by)
        summary = {"lead": config.lead_id, "fields restored": report.fields_restored}
    elif config.as_of:
        report = restore_all_as_of(store, dg_time(config.as_of), by=config.restored_by)
        summary = {"imports undone": len(report.imports_undone), "fields restored": report.fields_restored}
    else:
        raise dg.Failure("restore needs import_id, as_of or undo_restore_id")
    if report.restore_id and not config.undo_restore_id:
        summary["restore id"] = report.restore_id  # undo_restore_id takes it back
    context.log_event(dg.AssetMaterialization(asset_key="curated_leads", description="restored",
                                              metadata={k: str(v) for k, v in summary.items()}))


def dg_time(text: str):
    import pandas as pd

    return pd.Timestamp(text).to_pydatetime()


@dg.job(tags={"datafactory/lead_store": "write"}, description="Undo an import or restore leads as of a time.")
def restore() -> None:
    restore_leads()


@dg.op(required_resource_keys={"lead_store"})
def undo_partition_import(context: dg.OpExecutionContext) -> None:
    """Undo the import this lead_files partition names, exactly as `datafactory restore --undo-import` does.
    Undo happens only when someone asks for it by name: deleting a partition, or a Dagster instance that
    does not list it, changes no lead."""
    store = context.resources.lead_store.open()
    import_id = live_import_of(store.imports(), context.partition_key)
    try:
        report = undo_import(store, import_id, by=f"dagster run {context.run_id[:8]}")
    except ValueError as err:
        raise dg.Failure(f"{import_id}: {err}") from err
    context.log_event(dg.AssetMaterialization(
        asset_key="curated_leads", description=f"import {import_id} undone",
        metadata={"import undone": import_id, "records retired": report.records_retired,
                  "leads retired": len(report.leads_retired), "contested fields": len(report.contested)}))


@dg.job(partitions_def=lead_files, tags=LEAD_STORE_TAG,
        description="Undo the import of one lead_files partition (launch it for that partition).")
def undo_lead_file() -> None:
    undo_partition_import()
