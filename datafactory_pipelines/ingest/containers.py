"""What a file really is, whatever its name says, and readers for the two ".xls" that are not Excel.

Web back offices and OA systems export "Excel" files that are an HTML table (with a charset meta
tag, often GBK) or SpreadsheetML 2003 XML, saved as .xls. Both are read with maintained parsers:
HTML through pandas.read_html on lxml, SpreadsheetML through defusedxml (no entities, no DTDs, no
network). Hidden sheets are reported, never read as leads.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from defusedxml import ElementTree as SafeET

from datafactory_pipelines.ingest.errors import IngestError

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_SIGNATURE = b"PK\x03\x04"
SPREADSHEET_NS = "urn:schemas-microsoft-com:office:spreadsheet"
EXCEL_NS = "urn:schemas-microsoft-com:office:excel"
_CHARSET = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_GB_FAMILY = {"gbk", "gb2312", "gb_2312-80", "gb18030", "x-gbk", "cp936", "euc-cn"}


@dataclass
class Sheet:
    """One sheet as a grid of strings ('' for empty) and whether the workbook hides it."""

    name: str
    grid: pd.DataFrame
    hidden: bool = False


def sniff(path: Path) -> str:
    """'ole' (Excel 97-2003), 'zip' (xlsx/xlsm/ods), 'spreadsheetml', 'html', 'text' or 'unknown'."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(OLE_SIGNATURE):
        return "ole"
    if head.startswith(ZIP_SIGNATURE):
        return "zip"
    text = head.lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n").lower().replace(b"\x00", b"")
    if text.startswith(b"<?xml") or text.startswith(b"<workbook"):
        return "spreadsheetml" if SPREADSHEET_NS.encode() in head.replace(b"\x00", b"") else "unknown"
    if text.startswith((b"<!doctype html", b"<html", b"<table", b"<meta", b"<head", b"<body")) or b"<table" in text:
        return "html"
    if b"\x00" not in head and (b"\t" in head or b"," in head) and b"\n" in head:
        return "text"  # a tab- or comma-separated list saved as .xls
    return "unknown"


def html_encoding(data: bytes) -> str:
    """The charset the page declares (GBK family read as GB18030, its superset), else UTF-8 / GB18030 by trial."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    match = _CHARSET.search(data[:4096])
    if match:
        declared = match.group(1).decode("ascii").lower()
        if declared in _GB_FAMILY:
            return "gb18030"
        try:
            data.decode(declared)
            return declared
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def read_html_tables(path: Path) -> list[Sheet]:
    """Every <table> of an HTML file as a grid of exact strings (no number or date guessing)."""
    data = path.read_bytes()
    encoding = html_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise IngestError(path.name, f"HTML table saved as .xls, but its text is not {encoding}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # extract_links keeps every cell as (text, link): strings exactly as shown, 0571… keeps its 0
            tables = pd.read_html(io.StringIO(text), flavor="lxml", header=None, keep_default_na=False,
                                  na_values=[], extract_links="all", displayed_only=True)
    except ValueError as exc:  # "No tables found"
        raise IngestError(path.name, f"an HTML file saved as .xls with no readable table ({exc})") from exc
    sheets = []
    for i, table in enumerate(tables):
        rows = [[_link_text(v) for v in row] for row in table.itertuples(index=False)]
        if all(isinstance(c, tuple) for c in table.columns):  # pandas took the <th> row as the header
            rows.insert(0, [_link_text(c) for c in table.columns])
        sheets.append(Sheet(f"Table{i + 1}" if len(tables) > 1 else "Sheet1", pd.DataFrame(rows).fillna("")))
    return sheets


def _link_text(cell: object) -> str:
    if isinstance(cell, tuple):
        cell = cell[0]
    if cell is None or (isinstance(cell, float) and cell != cell):
        return ""
    return str(cell)


def read_spreadsheetml(path: Path) -> list[Sheet]:
    """SpreadsheetML 2003: worksheets, rows and cells honouring ss:Index and ss:MergeAcross."""
    try:
        root = SafeET.parse(str(path), forbid_dtd=True, forbid_entities=True, forbid_external=True).getroot()
    except SafeET.ParseError as exc:
        line = getattr(exc, "position", (None,))[0]
        raise IngestError(path.name, f"SpreadsheetML (.xls saved as XML) is not well-formed: {exc}", row=line) from exc
    except Exception as exc:  # defusedxml refuses DTDs and entities: DTDForbidden, EntitiesForbidden …
        raise IngestError(path.name, f"SpreadsheetML refused: {type(exc).__name__}") from exc
    ss = f"{{{SPREADSHEET_NS}}}"
    sheets = []
    for worksheet in root.iter(f"{ss}Worksheet"):
        name = worksheet.get(f"{ss}Name") or f"Sheet{len(sheets) + 1}"
        visible = worksheet.find(f"{{{EXCEL_NS}}}WorksheetOptions/{{{EXCEL_NS}}}Visible")
        hidden = visible is not None and (visible.text or "").strip().lower() in ("sheethidden", "sheetveryhidden")
        grid: list[list[str]] = []
        merged_down: list[tuple[int, int, int, str]] = []  # (row, column, rows below, value)
        table = worksheet.find(f"{ss}Table")
        for row in table.iter(f"{ss}Row") if table is not None else []:
            index = row.get(f"{ss}Index")
            while index and len(grid) < int(index) - 1:  # skipped (empty) rows
                grid.append([])
            cells: list[str] = []
            for cell in row.iter(f"{ss}Cell"):
                at = cell.get(f"{ss}Index")
                if at:
                    cells.extend([""] * (int(at) - 1 - len(cells)))
                data = cell.find(f"{ss}Data")
                value = "".join(data.itertext()).strip() if data is not None else ""
                if data is not None and data.get(f"{ss}Type") == "DateTime":
                    value = value.split(".")[0].replace("T00:00:00", "").replace("T", " ")
                down = int(cell.get(f"{ss}MergeDown") or 0)
                if down > 0 and value:
                    merged_down.append((len(grid), len(cells), down, value))
                cells.append(value)
                cells.extend([""] * int(cell.get(f"{ss}MergeAcross") or 0))
            grid.append(cells)
        frame = pd.DataFrame(grid).fillna("") if grid else pd.DataFrame()
        if merged_down and not frame.empty:  # a cell merged down gives its value to every row it covers
            frame.attrs["non_blank"] = (frame != "").any(axis=1).to_numpy()
            for row, column, down, value in merged_down:
                frame.iloc[row + 1: row + 1 + down, column] = value
            frame.attrs["merged_cells"] = sum(min(d, len(frame) - r - 1) for r, _, d, _ in merged_down)
        sheets.append(Sheet(name, frame, hidden))
    if not sheets:
        raise IngestError(path.name, "SpreadsheetML file without any Worksheet")
    return sheets


OFFICE_NS = "urn:schemas-microsoft-com:office:office"
_CORE_DATES = ("{http://purl.org/dc/terms/}modified", "{http://purl.org/dc/terms/}created")


def file_date(path: Path, container: str) -> tuple[str, str]:
    """The file's own date (ISO day) and where it came from: the workbook's saved/created property, else
    the file's modification time. Rows without a date of their own take it, rather than "now"."""
    try:
        if container == "xlsx":
            import zipfile

            with zipfile.ZipFile(path) as archive:
                if "docProps/core.xml" in archive.namelist():
                    root = SafeET.fromstring(archive.read("docProps/core.xml"), forbid_dtd=True)
                    for tag in _CORE_DATES:
                        found = root.find(tag)
                        if found is not None and (found.text or "").strip()[:10]:
                            return found.text.strip()[:10], "workbook properties"
        elif container == "spreadsheetml":
            root = SafeET.parse(str(path), forbid_dtd=True).getroot()
            for tag in ("LastSaved", "Created"):
                found = root.find(f"{{{OFFICE_NS}}}DocumentProperties/{{{OFFICE_NS}}}{tag}")
                if found is not None and (found.text or "").strip()[:10]:
                    return found.text.strip()[:10], "workbook properties"
    except Exception:  # a damaged property part: fall back to the file's own time
        pass
    import datetime as dt

    return dt.datetime.fromtimestamp(path.stat().st_mtime).date().isoformat(), "file modification time"
