"""Excel round trips for operators: the conflict decision workbook and the edits sheet."""

from __future__ import annotations

import html
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from datafactory_pipelines.conflicts import DECISIONS, conflict_groups
from datafactory_pipelines.exporting import write_text_cell
from datafactory_pipelines.fields import FIELD_LABELS
from datafactory_pipelines.ingest.headers import canonical_field, normalize_header
from datafactory_pipelines.store import LeadStore

META_SHEET = "_datafactory"
META_KIND = "datafactory-conflicts"
GROUP_SHEET = "冲突分组"
ITEM_SHEET = "逐条决定"
LEAD_ID_HEADERS = {"leadid", "lead_id", "线索编号", "线索id"}


def write_sheet(ws, headers: list[str], rows: list[list[object]], widths: list[int]) -> None:
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="305496")
        cell.alignment = Alignment(vertical="center")
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            write_text_cell(ws.cell(row=r, column=c), value)
    ws.freeze_panes = "A2"
    for i, width in enumerate(widths):
        ws.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width = width


def add_dropdown(ws, column: str, count: int, choices: list[str]) -> None:
    rule = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True,
                          showErrorMessage=True, errorTitle="请选择", error="请从下拉列表中选择一个决定")
    ws.add_data_validation(rule)
    rule.add(f"{column}2:{column}{max(count + 1, 2)}")


def export_conflicts(store: LeadStore, out: str | Path) -> tuple[Path, int]:
    """Write the open conflicts as a workbook an operator fills in: one decision per group, or per row."""
    conflicts = store.conflicts()
    leads = store.leads().set_index("lead_id")
    groups = conflict_groups(conflicts)
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = GROUP_SHEET
    write_sheet(ws, ["分组编号", "字段", "差异类型", "来源", "导入批次", "数量", "示例（现有 → 新值）", "决定"],
           [[g.group_id, FIELD_LABELS.get(g.field, g.field), "两者都有效" if g.kind == "both valid" else "值不同",
             g.source, g.import_id, int(g.count), g.examples, ""] for g in groups.itertuples()],
           [14, 8, 12, 14, 30, 8, 60, 14])
    add_dropdown(ws, "H", len(groups), list(DECISIONS.values()))
    items = workbook.create_sheet(ITEM_SHEET)
    names = leads["name"].reindex(conflicts["lead_id"]).fillna("").to_numpy()
    write_sheet(items, ["冲突编号", "分组编号", "线索编号", "姓名", "字段", "现有值", "新值", "来源", "决定（留空则按分组）"],
           [[int(c.conflict_id), c.group_id, c.lead_id, n, FIELD_LABELS.get(c.field, c.field), c.current_value,
             c.incoming_value, c.source, ""] for c, n in zip(conflicts.itertuples(), names, strict=True)],
           [10, 14, 12, 10, 8, 28, 28, 14, 20])
    add_dropdown(items, "I", len(conflicts), [DECISIONS[k] for k in ("current", "incoming", "both")])
    meta = workbook.create_sheet(META_SHEET)
    meta.append([META_KIND, datetime.now(timezone.utc).isoformat(timespec="seconds")])
    meta.append(["lead_id", "updated_at"])
    for lead in sorted(set(conflicts["lead_id"])):
        meta.append([lead, leads["updated_at"].get(lead, "")])
    meta.sheet_state = "hidden"
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path, len(conflicts)


EDITS_NAMES = ("edits", "修改", "编辑")


def sheet_names(path: Path) -> list[str]:
    """Sheet names of an .xlsx without parsing any sheet (a lead list may be large)."""
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = archive.read("xl/workbook.xml").decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile):
        return []
    return [html.unescape(n) for n in re.findall(r'<(?:\w+:)?sheet\b[^>]*?\bname="([^"]*)"', workbook)]


def operator_workbook_kind(path: Path) -> str | None:
    """'decisions' for a conflict workbook, 'edits' for an edits sheet, None for a lead list.

    An edits file has a sheet named edits / 修改 / 编辑, or (for CSV) a file name starting with one of those.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "edits" if path.name.lower().startswith(EDITS_NAMES) else None
    if suffix not in (".xlsx", ".xlsm"):
        return None
    names = sheet_names(path)
    if META_SHEET in names:
        return "decisions"
    if any(n.strip().lower() in EDITS_NAMES for n in names):
        return "edits"
    return None


def read_decisions(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """(conflict_id, decision) from a filled-in workbook, and the leads' updated_at at export time."""
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        groups = {row[0]: (row[7] or "").strip() for row in workbook[GROUP_SHEET].iter_rows(min_row=2, values_only=True)
                  if row and row[0]}
        rows = []
        for row in workbook[ITEM_SHEET].iter_rows(min_row=2, values_only=True):
            if not row or row[0] is None:
                continue
            own = (row[8] or "").strip()
            group = groups.get(row[1], "")
            decision = own or (group if group != DECISIONS["per_row"] else "")
            if decision:
                rows.append({"conflict_id": int(row[0]), "decision": decision})
        expected = {r[0]: r[1] for r in workbook[META_SHEET].iter_rows(min_row=3, values_only=True) if r and r[0]}
    finally:
        workbook.close()
    return pd.DataFrame(rows, columns=["conflict_id", "decision"]), expected


def read_edits(path: Path) -> pd.DataFrame | None:
    """lead_id, field, value, where for every filled cell of an edits sheet; None if the file has none."""
    if path.suffix.lower() not in (".xlsx", ".xlsm", ".xls", ".csv"):
        return None
    if path.suffix.lower() == ".csv":
        sheets = {"csv": pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")}
    else:
        try:
            sheets = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False)
        except Exception:
            return None
    for name, frame in sheets.items():
        id_column = next((c for c in frame.columns if normalize_header(c) in LEAD_ID_HEADERS), None)
        if id_column is None:
            continue
        rows = []
        for column in frame.columns:
            field = canonical_field(column) if column != id_column else None
            if field is None:
                continue
            for i, (lead, value) in enumerate(zip(frame[id_column], frame[column], strict=True)):
                if str(value).strip():
                    rows.append({"lead_id": str(lead).strip(), "field": field, "value": str(value).strip(),
                                 "where": f"{path.name} sheet {name!r} row {i + 2} column {column!r}"})
        return pd.DataFrame(rows, columns=["lead_id", "field", "value", "where"])
    return None
