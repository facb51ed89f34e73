"""What an uploaded file would import, before it is imported: read and standardized, nothing saved.

One function, `preview_file`, so the library's own dry-run preview (`datafactory import --dry-run`, being
built in ingest/preview.py) can take its place when it lands: the console only reads `FilePreview`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from datafactory_pipelines.fields import INPUT_FIELDS
from datafactory_pipelines.masking import PERSONAL_COLUMNS, mask_value
from datafactory_pipelines.store import LeadStore

PREVIEW_ROWS = 10


@dataclass
class FilePreview:
    file_name: str
    ok: bool
    error: str = ""
    duplicate_of: str = ""  # the live import of the same content
    columns: list[dict] = field(default_factory=list)  # sheet, column, role, confidence, evidence, sample
    warnings: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # the first rows as read, personal values masked
    rows_read: int = 0
    reachable: int = 0
    quarantined: int = 0
    skipped: int = 0  # blank rows, and sheets skipped (hidden, or no lead list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


def preview_file(store: LeadStore, path: Path, home: Path) -> FilePreview:
    """Read and standardize `path` as an import would (with `home`'s pinned mappings); save nothing."""
    from datafactory_pipelines.ingest.errors import IngestError
    from datafactory_pipelines.ingest.readers import file_sha256
    from datafactory_pipelines.pipeline import prepare_file

    try:
        prepared = prepare_file(path, home=home)
    except IngestError as err:
        return FilePreview(path.name, ok=False, error=err.describe())
    raw, records = prepared.raw, prepared.records
    reachable = int(records["reachable"].sum())
    reasons = records.loc[~records["reachable"], "reject_reason"].value_counts()
    shown = [c for c in ("sheet", "source_row", *(f"{f}_raw" for f in INPUT_FIELDS)) if c in records.columns]
    rows = []
    for row in records[shown + ["reachable", "reject_reason"]].head(PREVIEW_ROWS).to_dict("records"):
        rows.append({k: mask_value(k.removesuffix("_raw"), v) if k.removesuffix("_raw") in PERSONAL_COLUMNS else v
                     for k, v in row.items()})
    return FilePreview(
        file_name=path.name, ok=True, duplicate_of=store.find_import(file_sha256(path)) or "",
        columns=raw.column_report(), warnings=raw.warnings, rows=rows, rows_read=len(records),
        reachable=reachable, quarantined=len(records) - reachable,
        skipped=sum(s.blank_rows for s in raw.sheets) + len(raw.skipped_sheets) + len(raw.hidden_sheets),
        quarantine_reasons={str(k): int(v) for k, v in reasons.items()})
