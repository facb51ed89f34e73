"""Read .xlsx / .xls / .csv lead files into one table of strings with canonical columns.

Every kept row carries its ``sheet`` and ``source_row``: the row number as Excel shows it
(1-based, header row included), so any message about a row can point at the cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from python_calamine import CalamineWorkbook

from datafactory_pipelines import CANONICAL_FIELDS, CONTACT_FIELDS
from datafactory_pipelines.ingest.errors import IngestError
from datafactory_pipelines.ingest.headers import header_score, map_headers

EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
SUPPORTED_SUFFIXES = EXCEL_SUFFIXES | CSV_SUFFIXES
HEADER_SEARCH_ROWS = 30
RAW_COLUMNS = ["sheet", "source_row", *CANONICAL_FIELDS, "extra"]


@dataclass
class RawSheet:
    name: str
    header_row: int  # 1-based, as Excel shows it
    headers: dict[str, str]  # original header -> canonical field (mapped columns only)
    extra_headers: list[str]
    rows_read: int
    blank_rows: int


@dataclass
class RawImport:
    """One file as read: every non-blank data row, values as the operator typed them."""

    path: Path
    sha256: str
    table: pd.DataFrame  # RAW_COLUMNS
    sheets: list[RawSheet] = field(default_factory=list)
    skipped_sheets: list[str] = field(default_factory=list)

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


def read_file(path: str | Path) -> RawImport:
    """Read a lead file; raise IngestError saying where and why when it cannot be imported."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(path.name, f"unsupported file type {suffix!r}; expected .xlsx, .xls or .csv")
    if not path.exists():
        raise IngestError(path.name, "file not found")
    if path.stat().st_size == 0:
        raise IngestError(path.name, "the file is empty")
    sha = file_sha256(path)
    grids = _excel_grids(path) if suffix in EXCEL_SUFFIXES else [(path.stem, _csv_grid(path))]

    frames: list[pd.DataFrame] = []
    sheets: list[RawSheet] = []
    skipped: list[str] = []
    problems: list[IngestError] = []
    for sheet_name, grid in grids:
        try:
            frame, info = _read_grid(path.name, sheet_name, grid)
        except IngestError as err:
            problems.append(err)
            skipped.append(sheet_name)
            continue
        frames.append(frame)
        sheets.append(info)
    if not frames:
        if len(problems) == 1:
            raise problems[0]
        reasons = "; ".join(p.describe() for p in problems) or "no sheets"
        raise IngestError(path.name, f"no sheet holds a lead list ({reasons})")
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return RawImport(path=path, sha256=sha, table=table, sheets=sheets, skipped_sheets=skipped)


def _excel_grids(path: Path) -> list[tuple[str, list[list[object]]]]:
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = workbook.sheet_names
        grids = []
        for name in names:
            sheet = workbook.get_sheet_by_name(name)
            # keep leading blank rows so row numbers match what Excel shows
            grids.append((name, sheet.to_python(skip_empty_area=False)))
    except IngestError:
        raise
    except Exception as exc:  # calamine raises several error types for damaged files
        raise IngestError(path.name, f"cannot be opened as a spreadsheet ({type(exc).__name__}: {exc})") from exc
    return grids


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


def _csv_grid(path: Path) -> list[list[object]]:
    text = decode_text(path.read_bytes(), path.name)
    if "\x00" in text:
        raise IngestError(path.name, "binary content (NUL bytes) in a text file; is it really a CSV?")
    sample = text[:16384]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise IngestError(path.name, f"malformed CSV: {exc}") from exc


def _find_header(grid: list[list[object]]) -> int | None:
    best, best_score = None, 1
    for i, row in enumerate(grid[:HEADER_SEARCH_ROWS]):
        score = header_score(row)
        if score > best_score:
            best, best_score = i, score
    return best


def _read_grid(file_name: str, sheet: str, grid: list[list[object]]) -> tuple[pd.DataFrame, RawSheet]:
    if not any(any(_cell_text(c) for c in row) for row in grid):
        raise IngestError(file_name, "the sheet is empty", sheet=sheet)
    header_idx = _find_header(grid)
    if header_idx is None:
        raise IngestError(
            file_name,
            f"no header row found in the first {HEADER_SEARCH_ROWS} rows; expected column names "
            "such as 姓名/联系人, 手机/电话, 邮箱 (Name, Mobile, Email)",
            sheet=sheet,
        )
    header = [_cell_text(c).strip() for c in grid[header_idx]]
    mapping = map_headers(header)
    if not set(mapping.values()) & set(CONTACT_FIELDS):
        raise IngestError(
            file_name,
            "no contact column (手机, 邮箱, 微信, QQ, 抖音, 快手 / Mobile, Email, WeChat …) in the header",
            sheet=sheet,
            row=header_idx + 1,
        )
    body = grid[header_idx + 1:]
    width = len(header)
    columns: dict[str, list[str]] = {f: [""] * len(body) for f in CANONICAL_FIELDS}
    extra_idx = [i for i, h in enumerate(header) if i not in mapping and h]
    by_field: dict[str, list[int]] = {}
    for i, f in mapping.items():
        by_field.setdefault(f, []).append(i)

    converted = {i: [_cell_text(r[i]) if i < len(r) else "" for r in body] for i in range(width)}
    keep = [
        any(converted[i][r].strip() for i in range(width)) and [converted[i][r] for i in range(width)] != header
        for r in range(len(body))
    ]
    for f, idxs in by_field.items():
        if len(idxs) == 1:
            columns[f] = converted[idxs[0]]
        else:  # e.g. 手机 and 座机: later columns become alternates of the first
            columns[f] = [";".join(v for v in vals if v.strip()) for vals in zip(*(converted[i] for i in idxs), strict=False)]
    extras = [
        json.dumps({header[i]: converted[i][r] for i in extra_idx if converted[i][r]}, ensure_ascii=False)
        if extra_idx else "{}"
        for r in range(len(body))
    ]
    frame = pd.DataFrame(columns)
    frame.insert(0, "source_row", range(header_idx + 2, header_idx + 2 + len(body)))
    frame.insert(0, "sheet", sheet)
    frame["extra"] = extras
    frame = frame[pd.Series(keep, dtype=bool).to_numpy()].reset_index(drop=True)
    info = RawSheet(
        name=sheet,
        header_row=header_idx + 1,
        headers={header[i]: f for i, f in mapping.items()},
        extra_headers=[header[i] for i in extra_idx],
        rows_read=len(frame),
        blank_rows=len(body) - len(frame),
    )
    return frame[RAW_COLUMNS], info


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
