"""Writing tables to .csv, .parquet or .xlsx, chosen by the file extension."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.cell import Cell, WriteOnlyCell

# A spreadsheet program runs a cell that starts with one of these as a formula (CSV/formula injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START)


def csv_text(value: object) -> object:
    """A value as a CSV cell: text a spreadsheet would run gets a leading apostrophe (OWASP's advice), so
    `=HYPERLINK(…)` shows as text; anything else is unchanged."""
    return f"'{value}" if looks_like_formula(value) else value


def write_text_cell(cell: Cell, value: object) -> Cell:
    """THE text-cell writer for every .xlsx datafactory writes (exports and operator workbooks): the value as
    it is, but text that starts like a formula is stored as text (never run) and stays text when edited."""
    cell.value = value
    if looks_like_formula(value):
        cell.data_type = "s"  # openpyxl would otherwise store "=…" as a formula
        cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
    return cell


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells are safe to open in a spreadsheet program as CSV (see csv_text)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = [csv_text(v) for v in out[col]]
    return out


def _write_xlsx(frame: pd.DataFrame, path: Path) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet1")
    sheet.append([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        sheet.append([write_text_cell(WriteOnlyCell(sheet), v) if looks_like_formula(v)
                      else (None if v is None or (isinstance(v, float) and v != v) else v) for v in row])
    workbook.save(path)


def write_table(frame: pd.DataFrame, out: str | Path) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":  # the BOM lets Excel open Chinese text right
        neutralize_formulas(frame).to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)  # data, not a spreadsheet: values exactly as stored
    elif suffix == ".xlsx":
        _write_xlsx(frame, path)
    else:
        raise ValueError(f"cannot write {path.name}: use .csv, .parquet or .xlsx")
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(path, dtype=str, keep_default_na=False)
    raise ValueError(f"cannot read {path.name}: use .csv, .parquet or .xlsx")
