import time
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.metadata import counts_table, preview
from assets.partitions import lead_files, mark_runner
from assets.resources import LeadStoreResource
from datafactory_pipelines.ingest import IngestError
from datafactory_pipelines.ingest.preview import preview_of
from datafactory_pipelines.pipeline import (
    archive_file,
    file_duplicate,
    import_id_for,
    prepare_file,
    reject_file,
    save_import,
)
from expectations.checks import STANDARDIZED_CONTACTS_CHECK, standardized_contacts_check

PREVIEW_COLUMNS = ["sheet", "source_row", "name", "mobile", "email", "wechat", "company", "title", "source"]

# The file's rows live in the lead store (imports, records); Dagster keeps only masked metadata about them.
raw_imports = dg.AssetKey("raw_imports")
standardized_contacts = dg.AssetKey("standardized_contacts")


class RawImportConfig(dg.Config):
    path: str = ""  # the dropped file; empty when re-materializing: found again under processed/


def _locate(config: RawImportConfig, partition_key: str, lead_store: LeadStoreResource) -> Path:
    if config.path and Path(config.path).exists():
        return Path(config.path)
    paths = lead_store.paths()
    for folder in (paths.processed, paths.inbox):
        for candidate in folder.glob(f"{partition_key}.*"):
            return candidate
    raise dg.Failure(f"the file for partition {partition_key} is neither in the inbox nor in processed/")


@dg.multi_asset(
    name="raw_imports",
    partitions_def=lead_files,
    group_name="imports",
    specs=[
        dg.AssetSpec(raw_imports, kinds={"excel", "python"}, owners=["team:data-engineering"],
                     description="One dropped lead file (.xlsx/.xls/.csv) as read: the header row found, header "
                                 "names mapped to canonical fields, unknown columns kept as extra attributes, every "
                                 "row numbered as Excel shows it. Its raw values are kept in the lead store "
                                 "(records.*_raw), not in Dagster."),
        dg.AssetSpec(standardized_contacts, deps=[raw_imports], kinds={"python", "duckdb"},
                     owners=["team:data-engineering"],
                     description="The file's rows standardized (phones, emails, social IDs, names, companies, "
                                 "titles, addresses) and saved to the lead store with their source file, sheet and "
                                 "row, in one transaction. Rows that reach nobody are kept but set aside from "
                                 "linkage, with the reason."),
    ],
    check_specs=[STANDARDIZED_CONTACTS_CHECK],
)
def import_lead_file_assets(context: dg.AssetExecutionContext, config: RawImportConfig,
                            lead_store: LeadStoreResource):
    """Read, standardize and save one file in one step, so no frame of contacts passes through an IO manager.
    A file that cannot be read is moved to rejected/ with NAME.error.txt and the run fails."""
    mark_runner(context)
    path = _locate(config, context.partition_key, lead_store)
    paths = lead_store.paths()
    started = time.perf_counter()
    try:
        prepared = prepare_file(path, home=paths.home)
    except IngestError as err:
        target = reject_file(path, paths.rejected, err.describe())
        raise dg.Failure(description=err.describe(), metadata={"rejected_to": str(target)}) from err
    raw = prepared.raw
    phases = {"read and standardize": round(time.perf_counter() - started, 3)}
    context.log.info(f"read and standardized {raw.rows_read} rows of {path.name} in "
                     f"{phases['read and standardize']:.2f}s")
    yield dg.MaterializeResult(
        asset_key=raw_imports,
        metadata={
            "file": path.name,
            "rows_read": raw.rows_read,
            "blank_rows_skipped": sum(s.blank_rows for s in raw.sheets),
            "sheets": counts_table({f"{s.name} (header row {s.header_row})": s.rows_read for s in raw.sheets},
                                   "sheet"),
            "header_map": counts_table({h: f for s in raw.sheets for h, f in s.headers.items()},
                                       "header", "field"),
            "extra_columns": ", ".join(h for s in raw.sheets for h in s.extra_headers) or "none",
            # each column's role from header + content, confidence, evidence, masked sample; low confidence warned
            "column_roles": dg.MetadataValue.md(pd.DataFrame(raw.column_report()).to_markdown(index=False)
                                                if raw.column_report() else "_none_"),
            "role_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in raw.warnings) or "_none_"),
            "hidden_sheets_skipped": ", ".join(raw.hidden_sheets) or "none",
            # instructions, example tables, summaries, pivots: not leads, and why
            "sheets_skipped": counts_table(raw.skipped_reasons, "sheet", "why"),
            # what `datafactory import FILE --dry-run` shows: per sheet, roles with evidence, first rows (masked),
            # rows reachable / quarantined / skipped and why
            "look_before_import": dg.MetadataValue.md(preview_of(prepared).markdown()),
            "dates": "; ".join(n for s in raw.sheets for n in s.notes) or "every row carries its own date",
            "preview": preview(raw.table, PREVIEW_COLUMNS),
        },
    )
    store = lead_store.open()
    started = time.perf_counter()
    with store.exclusive(f"import {path.name} (dagster run {context.run_id[:8]})"):
        outcome = save_import(store, prepared, imported_by=f"dagster run {context.run_id[:8]}")
        if path.exists() and path.parent == paths.inbox:
            if outcome.status == "duplicate":  # the store knew this content, whatever Dagster remembers
                file_duplicate(path, paths.processed)
            else:
                archive_file(path, paths.processed, import_id_for(raw.file_name, raw.sha256))
    phases["save"] = round(time.perf_counter() - started, 3)
    context.log.info(f"saved as {outcome.import_id} ({outcome.status}) in {phases['save']:.2f}s")
    records = prepared.records
    statuses = {
        f"{field} {status}": int(n)
        for field in ("mobile", "email", "wechat", "qq", "name")
        for status, n in records[f"{field}_status"].value_counts().items() if status != "empty"
    }
    yield dg.MaterializeResult(
        asset_key=standardized_contacts,
        metadata={
            "import_status": outcome.status if outcome.status != "duplicate" else f"duplicate: {outcome.error}",
            "import_id": outcome.import_id or "",
            "rows_standardized": len(records),
            "rows_unreachable": outcome.rows_unreachable,
            "unreachable_reasons": counts_table(outcome.unreachable_reasons, "reason"),
            "field_status": counts_table(statuses, "field status"),
            "preview": preview(records, PREVIEW_COLUMNS + ["reachable"]),
            "phase_seconds": dg.MetadataValue.json(phases),
        },
    )
    # the gate reads the import's records back from the store, by the import id the save reported
    yield standardized_contacts_check(store, outcome.import_id or "")
