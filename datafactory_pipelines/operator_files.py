"""Apply a file an operator filled in: a conflict decision workbook or an edits sheet (.xlsx or CSV).

The CLI (`conflicts apply`) and the inbox's `operator_decisions` asset apply a file through this one
function, so a file works, or fails with the same message, whichever way it arrives.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from datafactory_pipelines.decisions import DecisionError, decide, edit_leads
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.workbooks import operator_workbook_kind, read_decisions, read_edits

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


@dataclass
class Applied:
    kind: str  # "conflict decisions" | "edits"
    count: int


def apply_operator_file(store: LeadStore, path: Path, by: str, note: str = "") -> Applied:
    """Decisions or edits from `path`, in one transaction; DecisionError (nothing changed) when the file is
    not one of those, is not what its name says, is stale or names what does not exist."""
    if not path.is_file():
        raise DecisionError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES and not zipfile.is_zipfile(path):
        raise DecisionError(f"{path.name}: not an Excel workbook (an .xlsx is a zip archive; this file is not): "
                            "save it from Excel as .xlsx, or as CSV for an edits sheet")
    if suffix not in (*EXCEL_SUFFIXES, ".csv"):
        raise DecisionError(f"{path.name}: expected the decision workbook (.xlsx from `conflicts export`) or an "
                            "edits sheet (.xlsx or .csv with a 线索编号 column)")
    note = note or path.name
    if operator_workbook_kind(path) == "decisions":
        try:
            decisions, expected = read_decisions(path)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as err:
            raise DecisionError(f"{path.name}: the decision workbook is damaged ({err}); export it again") from err
        return Applied("conflict decisions", decide(store, decisions, by=by, note=note, expected_updated_at=expected))
    try:
        edits = read_edits(path)
    except (UnicodeDecodeError, ValueError) as err:
        raise DecisionError(f"{path.name}: cannot be read as an edits sheet ({err})") from err
    if edits is None:
        raise DecisionError(f"{path.name}: neither a decision workbook (no _datafactory sheet) nor an edits sheet "
                            "(no 线索编号 / lead_id column in any sheet)")
    return Applied("edits", edit_leads(store, edits, by=by, note=note))
