"""Read .xlsx / .xls / .csv lead files into one table of strings with canonical columns.

Every kept row carries its ``sheet`` and ``source_row``: the row number as Excel shows it
(1-based, header row included), so any message about a row can point at the cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from python_calamine import CalamineWorkbook

from datafactory_pipelines import CANONICAL_FIELDS, CONTACT_FIELDS
from datafactory_pipelines.config import Paths
from datafactory_pipelines.ingest.cells import add_provenance, read_cells
from datafactory_pipelines.ingest.containers import file_date, read_html_tables, read_spreadsheetml, sniff
from datafactory_pipelines.ingest.dates_by_column import read_dates_by_column
from datafactory_pipelines.ingest.errors import IngestError
from datafactory_pipelines.ingest.headers import MULTI_VALUE_FIELDS, header_score
from datafactory_pipelines.ingest.layout import (
    ROW_SKIP_REASONS,
    fill_merged_down,
    judge_sheet,
    layout_rows,
    sheet_members,
    staff_sheets,
    summary_reason,
    xlsx_vertical_merges,
)
from datafactory_pipelines.ingest.mappings import load_mappings, pinned_for, source_key
from datafactory_pipelines.ingest.mixed import split_column
from datafactory_pipelines.ingest.people_in_row import stack_people
from datafactory_pipelines.ingest.roles import _COMPANY as COMPANY_WORDS
from datafactory_pipelines.ingest.roles import (
    MIXED,
    OWNER,
    REFERRER,
    decide_roles,
    looks_like_chinese_name,
    mapping_of,
    warnings_of,
)
from datafactory_pipelines.ingest.safety import check_zip_container

EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
SUPPORTED_SUFFIXES = EXCEL_SUFFIXES | CSV_SUFFIXES
HEADER_SEARCH_ROWS = 30
#: a sheet whose first rows are all words (a long page of instructions above the table): the header is looked
#: for down to the first row holding a phone or an email, as far as this
HEADER_SEARCH_LIMIT = 1000
RAW_COLUMNS = ["sheet", "source_row", *CANONICAL_FIELDS, "extra"]


@dataclass
class RawSheet:
    name: str
    header_row: int  # 1-based, as Excel shows it
    headers: dict[str, str]  # original header -> canonical field (mapped columns only)
    extra_headers: list[str]
    rows_read: int
    blank_rows: int
    columns: list[dict] = field(default_factory=list)  # every column: role, confidence, evidence, masked sample
    warnings: list[str] = field(default_factory=list)  # roles read with little confidence
    notes: list[str] = field(default_factory=list)  # e.g. rows dated by the file's own date
    skipped_rows: dict[str, int] = field(default_factory=dict)  # why -> rows that are not people (totals, notes)
    merged_cells: int = 0  # cells given the value of a cell merged down over them
    cells: dict = field(default_factory=dict)  # what reading every cell added: contacts outside their column

    @property
    def contacts_outside_column(self) -> int:
        return int(self.cells.get("contacts_outside_column", 0) or 0)


@dataclass
class RawImport:
    """One file as read: every non-blank data row, values as the operator typed them."""

    path: Path
    sha256: str
    table: pd.DataFrame  # RAW_COLUMNS
    sheets: list[RawSheet] = field(default_factory=list)
    skipped_sheets: list[str] = field(default_factory=list)
    skipped_reasons: dict[str, str] = field(default_factory=dict)  # sheet -> why it is not a lead list
    hidden_sheets: list[str] = field(default_factory=list)  # skipped: a hidden sheet is not a lead list
    container: str = ""  # what the file really is: xlsx, xls, html, spreadsheetml, csv
    source_key: str = ""  # files from one source share it (and its pinned mapping)
    pinned: dict[str, str] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return [f"sheet {s.name!r}: {w}" for s in self.sheets for w in s.warnings]

    def column_report(self) -> list[dict]:
        return [{"sheet": s.name, **c} for s in self.sheets for c in s.columns]

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def rows_read(self) -> int:
        return len(self.table)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_file(path: str | Path, pinned: dict[str, str] | None = None, home: str | Path | None = None) -> RawImport:
    """Read a lead file; raise IngestError saying where and why when it cannot be imported.

    Column roles come from header and content; `pinned` (header -> role) overrides them, by default
    what $DATAFACTORY_HOME/mappings.yaml (or `home`) pins for the file's source.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(path.name, f"unsupported file type {suffix!r}; expected .xlsx, .xls or .csv")
    if not path.exists():
        raise IngestError(path.name, "file not found")
    if path.stat().st_size == 0:
        raise IngestError(path.name, "the file is empty")
    sha = file_sha256(path)
    if pinned is None:
        try:
            pinned = pinned_for(path.name, load_mappings(home if home is not None else Paths.from_env().home))
        except (ValueError, OSError) as exc:
            raise IngestError(path.name, f"the pinned column mappings cannot be read: {exc}") from exc
    hidden: list[str] = []
    if suffix in EXCEL_SUFFIXES:
        container = sniff(path)
        merged_parts: set[str] | None = None
        if container == "zip":
            # zip bombs, over-long cells, DTDs: refused before any reader unpacks; merged cells noticed
            merged_parts = check_zip_container(path)
        if container in ("ole", "zip", "unknown"):
            tables, hidden = _excel_tables(path, may_have_merges=merged_parts is None or bool(merged_parts))
            container = {"ole": "xls", "zip": "xlsx"}.get(container, suffix.lstrip("."))
        elif container == "text":
            tables = [(path.stem, _csv_table(path), 1)]
        else:
            sheets = read_html_tables(path) if container == "html" else read_spreadsheetml(path)
            tables = [(s.name, s.grid, 1) for s in sheets if not s.hidden]
            hidden = [s.name for s in sheets if s.hidden]
    else:
        container = "csv"
        tables = [(path.stem, _csv_table(path), 1)]
    if not tables and hidden:
        raise IngestError(path.name, f"every sheet is hidden ({', '.join(hidden)}); unhide the lead list")

    frames: list[pd.DataFrame] = []
    sheets: list[RawSheet] = []
    skipped: list[str] = []
    problems: list[IngestError] = []
    reasons: dict[str, str] = {}
    doubtful: list[tuple[pd.DataFrame, RawSheet, str]] = []
    for sheet_name, table, first_row in tables:
        try:
            frame, info = _read_table(path.name, sheet_name, table, first_row, pinned)
        except IngestError as err:
            problems.append(err)
            skipped.append(sheet_name)
            summary = summary_reason(table) if not table.empty else ""
            reasons[sheet_name] = f"not a lead list: {summary}" if summary else err.reason
            continue
        verdict = judge_sheet(table, frame, info.header_row - first_row, sheet_name)
        if verdict.weak:  # only example addresses: decided once we know whether another sheet holds leads
            doubtful.append((frame, info, verdict.reason))
            continue
        if not verdict.is_leads:  # instructions, an example table, a summary or a pivot: not leads
            problems.append(IngestError(path.name, f"not a lead list: {verdict.reason}", sheet=sheet_name))
            skipped.append(sheet_name)
            reasons[sheet_name] = f"not a lead list: {verdict.reason}"
            continue
        frames.append(frame)
        sheets.append(info)
    other_sheets_hold_leads = bool(frames)
    for frame, info, why in doubtful:
        if other_sheets_hold_leads:
            skipped.append(info.name)
            reasons[info.name] = f"not a lead list: {why}"
            continue
        info.warnings.append(f"looks like {why.split(':')[0]} ({why.split(': ', 1)[-1]}), but no other sheet "
                             "holds leads: read as leads")
        frames.append(frame)
        sheets.append(info)
    if len(frames) > 1:  # a visible staff list: its people are the owners of another sheet
        for name, why in staff_sheets({info.name: frame for frame, info in zip(frames, sheets, strict=True)}).items():
            at = [info.name for info in sheets].index(name)
            del frames[at], sheets[at]
            skipped.append(name)
            reasons[name] = f"not a lead list: {why}"
    if not frames:
        if len(problems) == 1:
            raise problems[0]
        reasons = "; ".join(p.describe() for p in problems) or "no sheets"
        raise IngestError(path.name, f"no sheet holds a lead list ({reasons})")
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    _date_undated_rows(path, container, table, sheets)
    return RawImport(path=path, sha256=sha, table=table, sheets=sheets, skipped_sheets=skipped,
                     skipped_reasons=reasons, hidden_sheets=hidden, container=container, source_key=source_key(path.name), pinned=pinned)


def _date_undated_rows(path: Path, container: str, table: pd.DataFrame, sheets: list[RawSheet]) -> None:
    """Rows without a date of their own take the file's date (its properties, else its modification time),
    never the import time, so an old list does not become the newest truth; the report says so."""
    undated = table["collected_at"].astype(str).str.strip() == ""
    if not undated.any():
        return
    day, origin = file_date(path, container)
    table.loc[undated, "collected_at"] = day
    for sheet in sheets:
        n = int((undated & (table["sheet"] == sheet.name)).sum())
        if n:
            sheet.notes.append(f"{n} of {sheet.rows_read} rows have no date of their own: dated {day} "
                               f"from the {origin}")


def _excel_tables(path: Path, may_have_merges: bool = True) -> tuple[list[tuple[str, pd.DataFrame, int]], list[str]]:
    """Visible sheets as (name, table of strings, Excel row number of the table's first row); hidden names."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        fast = _xlsx_tables_fast(path, may_have_merges)
        if fast is not None:
            return fast
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        tables, hidden = [], []
        for meta in workbook.sheets_metadata:
            if str(meta.visible).rsplit(".", 1)[-1].lower() != "visible":
                hidden.append(meta.name)
                continue
            # keep leading blank rows so row numbers match what Excel shows
            sheet = workbook.get_sheet_by_name(meta.name)
            frame = _grid_frame(sheet.to_python(skip_empty_area=False), convert=True)
            _fill_merges(frame, getattr(sheet, "merged_cell_ranges", None) or [])
            tables.append((meta.name, frame, 1))
    except Exception as exc:  # calamine raises several error types for damaged files
        raise IngestError(path.name, f"cannot be opened as a spreadsheet ({type(exc).__name__}: {exc})") from exc
    return tables, hidden


def _fill_merges(frame: pd.DataFrame, ranges: list) -> None:
    """Vertically merged cells give their value to every row they cover; which rows are blank is decided
    before (a merge reaching into empty rows does not make them rows of data)."""
    vertical = [(r1, c1, r2, c2) for (r1, c1), (r2, c2) in ranges if r2 > r1]
    if not vertical or frame.empty:
        return
    frame.attrs["non_blank"] = _non_blank_rows(frame)
    frame.attrs["merged_cells"] = fill_merged_down(frame, vertical)


def _xlsx_tables_fast(path: Path, may_have_merges: bool = True) -> tuple[list[tuple[str, pd.DataFrame, int]], list[str]] | None:
    """fastexcel reads straight to Arrow, several times faster than cell-by-cell Python objects.

    It starts each sheet at its first non-empty row, so the row offset is read from the sheet XML.
    Returns None when anything is unusual, and the exact (slower) reader takes over.
    """
    try:
        if may_have_merges and xlsx_vertical_merges(path):  # merged cells need their positions: the exact reader
            return None
        first_rows = first_rows_with_values(path)
        reader = fastexcel.read_excel(str(path))
        tables, hidden = [], []
        for name in reader.sheet_names:
            if name not in first_rows:
                return None
            sheet = reader.load_sheet_by_name(name, header_row=None, dtypes="string")
            if str(sheet.visible).lower() != "visible":
                hidden.append(name)
                continue
            arrow = sheet.to_arrow()
            frame = arrow.to_pandas()
            frame = frame.astype(object).where(frame.notna(), "")
            frame.columns = range(frame.shape[1])
            frame.attrs["non_blank"] = _non_blank_arrow_rows(arrow)
            tables.append((name, frame, first_rows[name] or 1))
        return tables, hidden
    except Exception:
        return None


def _non_blank_arrow_rows(table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """Rows with any cell that is more than whitespace, computed in Arrow (much faster than str.strip)."""
    mask = pa.array(np.zeros(table.num_rows, dtype=bool))
    for column in table.columns:
        filled = pc.fill_null(pc.utf8_trim_whitespace(column.cast(pa.string())), "")
        mask = pc.or_(mask, pc.not_equal(filled, ""))
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


_CELL_WITH_VALUE = re.compile(rb'<(?:\w+:)?c\b[^>]*?\br="[A-Z]+(\d+)"[^>]*?>\s*<(?:\w+:)?(?:v|is)\b')


def first_rows_with_values(path: Path) -> dict[str, int]:
    """Sheet name -> row number of its first cell holding a value (0 for an empty sheet)."""
    with zipfile.ZipFile(path) as archive:
        found: dict[str, int] = {}
        for name, member in sheet_members(archive):  # any attribute order (openpyxl writes Target before Id)
            with archive.open(member) as xml:
                head = b""
                for chunk in iter(lambda: xml.read(1 << 16), b""):  # the first value is near the top
                    head += chunk
                    match = _CELL_WITH_VALUE.search(head)
                    if match:
                        found[name] = int(match.group(1))
                        break
                else:
                    found[name] = 0
        return found


def _grid_frame(grid: list[list[object]], convert: bool) -> pd.DataFrame:
    frame = pd.DataFrame(grid)
    if convert:
        for col in frame.columns:
            frame[col] = [_cell_text(v) for v in frame[col]]
    elif len({len(row) for row in grid}) <= 1:  # rows of text of one width: no gap to fill
        return frame
    return frame.fillna("")


def decode_text(data: bytes, file_name: str) -> str:
    """Decode CSV bytes: UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(file_name, "text is neither UTF-8 nor GBK/GB18030", row=line) from exc


def _csv_table(path: Path) -> pd.DataFrame:
    text = decode_text(path.read_bytes(), path.name)
    if "\x00" in text:
        raise IngestError(path.name, "binary content (NUL bytes) in a text file; is it really a CSV?")
    sample = text[:16384]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    try:
        return _grid_frame(list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)), convert=False)
    except csv.Error as exc:
        raise IngestError(path.name, f"malformed CSV: {exc}") from exc


_CONTACT_VALUE = re.compile(r"\d[\d\s\-]{6,}\d|@")


def _find_header(table: pd.DataFrame, pinned: dict[str, str] | None = None) -> int | None:
    """The row naming the most known fields (pinned headers count too); else, for headers nobody
    knows, the first row of labels (no phone or address among them) followed by a row of contacts."""
    best, best_score = None, 1
    head = [[str(c).strip() for c in row] for row in table.head(_header_window(table)).itertuples(index=False)]
    for i, row in enumerate(head):
        if any(_CONTACT_VALUE.search(c) for c in row if c):
            continue  # a row holding a phone or an email is data, whatever words stand beside them
        score = header_score(row) + sum(c in pinned for c in row if c) * 2 if pinned else header_score(row)
        if score > best_score:
            best, best_score = i, score
    if best is not None:
        return best
    for i, row in enumerate(head[:-1]):
        labels = [c for c in row if c]
        if len(labels) >= 2 and not any(_CONTACT_VALUE.search(c) or _looks_like_data(c) for c in labels) \
                and any(_CONTACT_VALUE.search(c) for row in head[i + 1:i + 4] for c in row):
            return i
    return None


def _non_blank_rows(body: pd.DataFrame) -> np.ndarray:
    """Rows with a cell that is not only whitespace (a cell that is not text counts as filled, as
    `str.strip` leaves it). Column by column over the rows not yet known to be filled: most rows are
    settled by their first cell."""
    filled = np.zeros(len(body), dtype=bool)
    for i in range(body.shape[1]):
        undecided = np.flatnonzero(~filled)
        if not len(undecided):
            break
        values = body.iloc[:, i].to_numpy()[undecided].tolist()
        filled[undecided] = [not isinstance(v, str) or (v != "" and not v.isspace()) for v in values]
    return filled


def _kept(body: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows kept; the body itself when all are (the readers only read it: no copy of a big sheet)."""
    return body if keep.all() else body[keep]


def _any_filled(table: pd.DataFrame) -> bool:
    """Whether any cell is not '' (column by column: a sheet with data says so in its first column)."""
    return any((table.iloc[:, i].to_numpy() != "").any() for i in range(table.shape[1]))


def _read_table(file_name: str, sheet: str, table: pd.DataFrame, first_row: int,
                pinned: dict[str, str] | None = None) -> tuple[pd.DataFrame, RawSheet]:
    """table: strings ('' for empty); first_row: the Excel row number of table row 0."""
    if table.empty or not _any_filled(table):
        raise IngestError(file_name, "the sheet is empty", sheet=sheet)
    header_idx = _find_header(table, pinned)
    guessed: list[str] = []
    if header_idx is None:
        if not _holds_contacts(table):
            raise IngestError(
                file_name,
                f"no header row found in the first {HEADER_SEARCH_ROWS} rows; expected column names "
                "such as 姓名/联系人, 手机/电话, 邮箱 (Name, Mobile, Email)",
                sheet=sheet,
            )
        # no header a person would recognize, but phones and emails in the cells: read them by content
        table, header_idx = _with_made_up_header(table), 0
        first_row -= 1
        guessed.append("no header row: every row read as data, columns placed by what their cells hold")
    header = [str(c).strip() for c in table.iloc[header_idx]]
    body = table.iloc[header_idx + 1:].reset_index(drop=True)
    merged_cells = int(table.attrs.get("merged_cells", 0))
    if "non_blank" in table.attrs:
        non_blank = table.attrs["non_blank"][header_idx + 1:]
        body.attrs = {}  # pandas deep-copies attrs into every derived frame: drop the mask once used
    else:
        non_blank = _non_blank_rows(body)
    keep = non_blank.copy()
    maybe_header = (body.iloc[:, 0] == header[0]).to_numpy()
    if maybe_header.any():  # a header repeated inside the data (lists pasted together)
        keep &= ~(body[maybe_header] == pd.Series(header, index=body.columns)).all(axis=1).reindex(
            body.index, fill_value=False).to_numpy()
    skipped_rows: dict[str, int] = {}
    layout_notes: list[str] = [f"{merged_cells} cells under a merged cell take its value"] if merged_cells else []
    kept_at = np.flatnonzero(keep)
    for kind, mask in layout_rows(_kept(body, keep)).items():  # totals and footnotes are not people
        at = kept_at[mask]
        keep[at] = False
        why = ROW_SKIP_REASONS[kind]
        skipped_rows[why] = len(at)
        shown = ", ".join(str(first_row + header_idx + 1 + i) for i in at[:5]) + (" …" if len(at) > 5 else "")
        layout_notes.append(f"{len(at)} row{'s' if len(at) > 1 else ''} skipped, {why} (row {shown})")

    positions = np.arange(len(body))  # the body row each frame row comes from (several people share a row)
    rows_in_sheet = len(body)
    people = stack_people(header, _kept(body, keep).reset_index(drop=True))
    if people is not None:
        kept_rows = np.flatnonzero(keep)
        header, body, at = people
        positions, keep = kept_rows[at], np.ones(len(body), dtype=bool)
        guessed.append(f"several people in one row: {len(body)} people read from {len(kept_rows)} rows, "
                       "each with only the contacts of their own columns")

    kept = _kept(body, keep)
    roles = decide_roles(header, kept, pinned)
    mapping = mapping_of(roles)
    # codes that look like contacts (C000123 as a WeChat id): the rows are quarantined, never reachable, and
    # the operator sees why; a sheet with nothing contact-like at all is no lead list
    codes_only = any(r.identifier and sum(r.content.get(k, 0) for k in ("wechat", "qq", "mobile", "landline")) >= 0.5
                     for r in roles)
    if not (set(mapping.values()) & {*CONTACT_FIELDS, MIXED}) and not codes_only \
            and not _cells_hold_contacts(kept, roles):
        raise IngestError(
            file_name,
            "no contact column (手机, 邮箱, 微信, QQ, 抖音, 快手 / Mobile, Email, WeChat …) in the header "
            "or in the values",
            sheet=sheet,
            row=first_row + header_idx,
        )

    frame = pd.DataFrame({f: pd.Series("", index=body.index, dtype=object) for f in CANONICAL_FIELDS})
    columns: list[tuple[str, pd.Series]] = []  # (field, values) in column order
    for i, role in sorted(mapping.items()):
        if role == MIXED:  # 手机/微信, 联系方式: each cell's parts to their own fields
            columns.extend((f, part) for f, part in split_column(body.iloc[:, i]).items())
        elif role in CANONICAL_FIELDS:
            columns.append((role, body.iloc[:, i].astype(str)))
    for f, column in columns:
        if f in MULTI_VALUE_FIELDS:  # later columns become alternates of the first (手机 and 座机)
            joined = frame[f].where(frame[f] == "", frame[f] + ";") + column
            frame[f] = frame[f].where(column.str.strip() == "", joined)
        else:
            frame[f] = frame[f].where(frame[f] != "", column)
    cells, provenance = read_cells(frame, body, roles)
    date_notes = read_dates_by_column(frame, roles)
    extra_names: dict[int, str] = {}
    for r in roles:
        if r.role in (OWNER, REFERRER) and r.role not in CANONICAL_FIELDS:
            extra_names[r.index] = r.role if r.role not in extra_names.values() else r.header
        elif r.role is None and r.header:
            extra_names[r.index] = r.header
    if extra_names:
        extras = body.iloc[:, list(extra_names)]
        extras.columns = list(extra_names.values())
        frame["extra"] = extras.to_json(orient="records", lines=True, force_ascii=False).splitlines()
    else:
        frame["extra"] = "{}"
    if cells.contacts_outside_column:
        frame["extra"] = add_provenance(frame["extra"].tolist(), provenance)
    frame.insert(0, "source_row", first_row + header_idx + 1 + positions)
    frame.insert(0, "sheet", sheet)
    frame = frame[keep].reset_index(drop=True)
    info = RawSheet(
        name=sheet,
        header_row=first_row + header_idx,
        headers={header[i]: f for i, f in mapping.items()},
        extra_headers=[header[i] for i, name in extra_names.items() if name == header[i]],
        rows_read=len(frame),
        blank_rows=int(rows_in_sheet - (len(set(positions[keep].tolist())) if people is not None else keep.sum()))
        - sum(skipped_rows.values()),
        columns=[r.as_dict() for r in roles],
        warnings=guessed + warnings_of(roles),
        notes=layout_notes + date_notes,
        skipped_rows=skipped_rows,
        merged_cells=merged_cells,
        cells=cells.as_dict(),
    )
    return frame[RAW_COLUMNS], info


_HOLDS_CONTACT = re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)|0\d{2,3}-?\d{7,8}|[\w.+-]+@[\w-]+\.\w")


def _looks_like_data(cell: str) -> bool:
    """A person's name or a company's: a value, never a column label."""
    return looks_like_chinese_name(cell) or bool(COMPANY_WORDS.search(cell)) and len(cell) > 6


def _header_window(table: pd.DataFrame) -> int:
    """How many of the first rows may hold the header: HEADER_SEARCH_ROWS, or, when no row among them holds a
    phone or an email (instructions, a notice, an example filled with words), down to the first row that does
    (the data begins there, so the header stands above it)."""
    for i, row in enumerate(table.head(HEADER_SEARCH_LIMIT).itertuples(index=False)):
        if any(_CONTACT_VALUE.search(str(c)) for c in row if c is not None):
            return max(HEADER_SEARCH_ROWS, i + 1)
    return HEADER_SEARCH_ROWS


def _holds_contacts(table: pd.DataFrame) -> bool:
    """Whether the first rows of a sheet (down to where its data begins) hold phones or emails in any cell."""
    head = table.head(_header_window(table))
    return any(_HOLDS_CONTACT.search(str(c)) for row in head.itertuples(index=False) for c in row)


def _with_made_up_header(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a header row of our own ("列1", "列2", …) before its first row."""
    header = pd.DataFrame([[f"列{i + 1}" for i in range(table.shape[1])]], columns=table.columns)
    out = pd.concat([header, table], ignore_index=True)
    out.attrs = {}
    if "non_blank" in table.attrs:
        out.attrs["non_blank"] = np.concatenate([[True], table.attrs["non_blank"]])
    return out


def _cells_hold_contacts(body: pd.DataFrame, roles: list) -> bool:
    """Contacts in cells outside any contact column (a name cell with its phone): the sheet is a lead list."""
    probe = pd.DataFrame({f: pd.Series("", index=range(min(len(body), 200)), dtype=object)
                          for f in CANONICAL_FIELDS})
    reading, _ = read_cells(probe, body.head(200).reset_index(drop=True), roles)
    return reading.contacts_outside_column > 0


def _cell_text(value: object) -> str:
    """A cell as the operator meant it: no '.0' on whole numbers, ISO dates, '' for empty."""
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is float:
        if value != value:  # NaN
            return ""
        if value.is_integer() and abs(value) < 1e16:  # type: ignore[union-attr]
            return str(int(value))  # type: ignore[arg-type]
        return repr(value)
    if kind is bool:
        return "TRUE" if value else "FALSE"
    if kind is int:
        return str(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)
