from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.leads import curated_leads
from assets.metadata import bar_chart
from assets.partitions import mark_runner
from assets.resources import LeadStoreResource
from datafactory_pipelines.conflicts import conflict_groups
from datafactory_pipelines.decisions import DecisionError
from datafactory_pipelines.ingest.readers import file_sha256
from datafactory_pipelines.operator_files import apply_operator_file
from datafactory_pipelines.pipeline import archive_file, reject_file


class OperatorWorkbookConfig(dg.Config):
    path: str  # a filled-in decision workbook or an edits sheet dropped into the inbox
    decided_by: str = "inbox"


@dg.asset(
    group_name="conflicts",
    kinds={"excel", "duckdb"},
    owners=["team:data-engineering"],
)
def operator_decisions(context: dg.AssetExecutionContext, config: OperatorWorkbookConfig,
                       lead_store: LeadStoreResource) -> dg.MaterializeResult:
    """Decisions and edits from a workbook an operator dropped into the inbox, applied in one transaction:
    a filled-in conflict workbook (from `datafactory conflicts export`) or an edits sheet (线索编号 plus
    the columns to change). A stale or invalid workbook changes nothing and goes to rejected/ with the reason."""
    mark_runner(context)
    path = Path(config.path)
    paths = lead_store.paths()
    store = lead_store.open()
    try:
        applied = apply_operator_file(store, path, by=config.decided_by)
        count, kind = applied.count, applied.kind
    except DecisionError as err:
        target = reject_file(path, paths.rejected, f"{path.name}: {err}")
        raise dg.Failure(description=f"{path.name}: {err}", metadata={"rejected_to": str(target)}) from err
    archive_file(path, paths.processed, f"{path.stem}-{file_sha256(path)[:10]}" if path.exists() else path.stem)
    return dg.MaterializeResult(metadata={"file": path.name, "kind": kind, "applied": count})


@dg.asset(
    deps=[curated_leads, operator_decisions],
    group_name="conflicts",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def conflict_queue(lead_store: LeadStoreResource) -> dg.MaterializeResult:
    """Open conflicts waiting for an operator, grouped by field, kind of difference, source and import.
    Export them with `datafactory conflicts export OUT.xlsx`, fill in the 决定 column, drop it in the inbox."""
    groups = conflict_groups(lead_store.open().conflicts())
    now = pd.Timestamp(datetime.now(timezone.utc).replace(tzinfo=None))
    if len(groups):
        groups["age_days"] = ((now - pd.to_datetime(groups["oldest"])).dt.total_seconds() / 86400).round(1)
    by_field = groups.groupby("field")["count"].sum() if len(groups) else pd.Series(dtype=int)
    return dg.MaterializeResult(
        metadata={
            "open_conflicts": int(groups["count"].sum()) if len(groups) else 0,
            "groups": len(groups),
            "oldest_days": float(groups["age_days"].max()) if len(groups) else 0.0,
            "by_field": bar_chart(list(by_field.index), [int(v) for v in by_field], "field", "open conflicts"),
            "queue": dg.MetadataValue.md(
                groups[["group_id", "field", "kind", "source", "import_id", "count", "age_days"]].head(30)
                .to_markdown(index=False) if len(groups) else "_empty_"),
        }
    )
