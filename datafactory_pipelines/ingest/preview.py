"""Look before you import: what a person would check at a glance, for each sheet, without writing anything.

For each sheet: whether it is read as leads (and if not, why), the role of each column with its evidence,
the first rows as they will be read (personal data masked), how many contacts came from cells outside
their column, and how many rows are reachable, quarantined or skipped, and why. The CLI
(`datafactory import FILE --dry-run`), the Dagster import asset and a web console all call
``preview_file`` / ``preview_of``; none of them opens the store or moves the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from datafactory_pipelines.ingest.errors import IngestError
from datafactory_pipelines.masking import mask_frame

log = logging.getLogger(__name__)

PREVIEW_ROWS = 5
# the fields a person checks first, as standardized (what linkage and the golden record will see)
ROW_FIELDS = ["source_row", "name", "mobile", "email", "wechat", "qq", "company", "title", "owner", "collected_at",
              "reachable", "reject_reason"]


@dataclass
class SheetPreview:
    name: str
    read_as_leads: bool
    skipped_because: str = ""  # why the sheet is not read as leads (hidden, instructions, a summary …)
    header_row: int | None = None
    columns: list[dict] = field(default_factory=list)  # role, confidence, evidence, masked sample
    first_rows: list[dict] = field(default_factory=list)  # masked
    rows_read: int = 0
    reachable: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)  # why -> rows
    skipped_rows: dict[str, int] = field(default_factory=dict)  # why -> rows (blank, totals, notes …)
    contacts_outside_column: int = 0
    merged_cells: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class FilePreview:
    file: str
    container: str = ""
    error: str = ""  # the file as a whole cannot be imported: why
    sheets: list[SheetPreview] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(s.rows_read for s in self.sheets)

    def as_dict(self) -> dict:
        return {"file": self.file, "container": self.container, "error": self.error,
                "sheets": [s.as_dict() for s in self.sheets]}

    def lines(self) -> list[str]:
        """The preview as a terminal shows it."""
        out = [f"{self.file}" + (f" ({self.container})" if self.container else "")
               + (f": WOULD BE REJECTED: {self.error}" if self.error else "")]
        for s in self.sheets:
            if not s.read_as_leads:
                out.append(f"  sheet {s.name!r}: not read as leads, {s.skipped_because}")
                continue
            skipped = ", ".join(f"{n} {why}" for why, n in s.skipped_rows.items()) or "none"
            quarantined = ", ".join(f"{n} {why}" for why, n in s.quarantined.items()) or "none"
            out.append(f"  sheet {s.name!r} (header row {s.header_row}): {s.rows_read} rows read, {s.reachable} "
                       f"reachable, {sum(s.quarantined.values())} quarantined ({quarantined}); rows skipped: "
                       f"{skipped}; contacts from cells outside their column: {s.contacts_outside_column}"
                       + (f"; {s.merged_cells} cells filled from merged cells" if s.merged_cells else ""))
            for warning in s.warnings:
                out.append(f"    WARNING {warning}")
            for note in s.notes:
                out.append(f"    note: {note}")
            out.append("    columns:")
            for c in s.columns:
                out.append(f"      {c['column'][:18]:<18} -> {c['role']:<12} {c['confidence']:>4.0%}  "
                           f"{c['sample'][:30]:<30}  {c['evidence']}")
            if s.first_rows:
                out.append("    first rows as they will be read (masked):")
                frame = pd.DataFrame(s.first_rows)
                frame = frame[[c for c in frame.columns if (frame[c].astype(str) != "").any()]]
                out.extend("      " + line for line in frame.to_string(index=False).splitlines())
        return out

    def markdown(self) -> str:
        """The preview as the Dagster UI (or a web page) renders it."""
        parts = [f"**{self.file}**" + (f" — would be rejected: {self.error}" if self.error else "")]
        for s in self.sheets:
            if not s.read_as_leads:
                parts.append(f"- sheet `{s.name}`: not read as leads, {s.skipped_because}")
                continue
            parts.append(f"- sheet `{s.name}` (header row {s.header_row}): {s.rows_read} rows, {s.reachable} reachable, "
                         f"quarantined {s.quarantined or 'none'}, skipped {s.skipped_rows or 'none'}, contacts from "
                         f"cells outside their column: {s.contacts_outside_column}")
            parts.append("")
            parts.append(pd.DataFrame(s.columns).to_markdown(index=False) if s.columns else "_no columns_")
            if s.first_rows:
                parts.append("")
                parts.append(pd.DataFrame(s.first_rows).to_markdown(index=False))
            parts.append("")
        return "\n".join(parts)


def preview_of(prepared, rows: int = PREVIEW_ROWS) -> FilePreview:
    """The preview of a file already read and standardized (a `PreparedImport`): nothing read again."""
    raw, records = prepared.raw, prepared.records
    preview = FilePreview(raw.file_name, raw.container)
    for sheet in raw.sheets:
        mine = records[records["sheet"] == sheet.name]
        unreachable = mine[~mine["reachable"].astype(bool)]
        shown = mask_frame(mine[[c for c in ROW_FIELDS if c in mine.columns]].head(rows))
        skipped = {"blank": sheet.blank_rows} if sheet.blank_rows else {}
        skipped.update(sheet.skipped_rows)
        preview.sheets.append(SheetPreview(
            name=sheet.name, read_as_leads=True, header_row=sheet.header_row, columns=list(sheet.columns),
            first_rows=shown.astype(object).where(shown.notna(), "").to_dict("records"), rows_read=sheet.rows_read,
            reachable=int(len(mine) - len(unreachable)),
            quarantined={str(k): int(v) for k, v in unreachable["reject_reason"].value_counts().items()},
            skipped_rows=skipped, contacts_outside_column=int(getattr(sheet, "contacts_outside_column", 0) or 0),
            merged_cells=sheet.merged_cells, warnings=list(sheet.warnings), notes=list(sheet.notes)))
    for name in raw.hidden_sheets:
        preview.sheets.append(SheetPreview(name, False, "a hidden sheet is not a lead list"))
    for name, why in raw.skipped_reasons.items():
        preview.sheets.append(SheetPreview(name, False, why))
    return preview


def preview_file(path: str | Path, pinned: dict[str, str] | None = None, home: str | Path | None = None,
                 rows: int = PREVIEW_ROWS) -> FilePreview:
    """Read and standardize a file exactly as an import would, and describe it; write nothing anywhere.
    A file the import would reject gives a preview that says why."""
    from datafactory_pipelines.ingest.readers import read_file
    from datafactory_pipelines.pipeline import standardize_import

    path = Path(path)
    try:
        prepared = standardize_import(read_file(path, pinned=pinned, home=home))
    except IngestError as err:
        return FilePreview(path.name, error=err.describe())
    return preview_of(prepared, rows)


__all__ = ["FilePreview", "SheetPreview", "preview_file", "preview_of"]
