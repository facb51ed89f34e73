"""The layout people give a sheet, read as a person reads it.

People put more than a list into a workbook: an instructions sheet with an example table before the
data, a summary or pivot sheet after it, total and subtotal rows between groups, a footnote under the
table, and a company cell merged down over the people who work there. None of that is a lead, and a
merged cell means its value for every row it covers.

Everything here is judged by content (how many rows, prose or values, example values, numbers only);
a sheet's name never decides alone, because "线索汇总" is as often the lead list itself.
"""

from __future__ import annotations

import html
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# -- merged cells ------------------------------------------------------------------------------------
_MERGE_REF = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')
_SHEET_DATA_END = re.compile(rb"</(?:\w+:)?sheetData>")
_SHEET_TAG = re.compile(r"<(?:\w+:)?sheet\b[^>]*>")
_REL_TAG = re.compile(r"<(?:\w+:)?Relationship\b[^>]*>")
_ATTRIBUTE = re.compile(r'\b([\w:]+)="([^"]*)"')

Range = tuple[int, int, int, int]  # first row, first column, last row, last column; 0-based, inclusive


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


def sheet_members(archive: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(sheet name, zip member of its XML) in workbook order, whatever order the writer put attributes in
    (Excel and xlsxwriter write Id before Target, openpyxl after)."""
    workbook = archive.read("xl/workbook.xml").decode("utf-8")
    rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8")
    targets = {}
    for tag in _REL_TAG.findall(rels):
        attributes = dict(_ATTRIBUTE.findall(tag))
        targets[attributes.get("Id", "")] = attributes.get("Target", "")
    members = []
    for tag in _SHEET_TAG.findall(workbook):
        attributes = dict(_ATTRIBUTE.findall(tag))
        target = targets.get(attributes.get("r:id", ""), "").lstrip("/")
        members.append((html.unescape(attributes.get("name", "")),
                        target if target.startswith("xl/") else f"xl/{target}"))
    return members


def xlsx_vertical_merges(path: Path) -> dict[str, list[Range]]:
    """Sheet name -> its merged ranges that span more than one row (0-based, inclusive).

    The <mergeCells> list follows <sheetData> in the sheet XML, so each sheet is decompressed once in
    chunks and only its tail is searched (about 0.2 s for a 116 MB sheet of 200k rows)."""
    found: dict[str, list[Range]] = {}
    with zipfile.ZipFile(path) as archive:
        for name, member in sheet_members(archive):
            ranges: list[Range] = []
            with archive.open(member) as xml:
                tail, past_data = b"", False
                for chunk in iter(lambda: xml.read(1 << 20), b""):
                    tail = tail[-32:] + chunk  # a closing tag may straddle two chunks
                    if not past_data:
                        end = _SHEET_DATA_END.search(tail)
                        if end is None:
                            continue
                        past_data, tail = True, tail[end.end():]
                    if b"mergeCell" in tail:
                        break
                rest = tail + xml.read()  # the tail after the data is small: read it whole
            for c1, r1, c2, r2 in _MERGE_REF.findall(rest):
                if int(r2) > int(r1):
                    ranges.append((int(r1) - 1, _column_number(c1), int(r2) - 1, _column_number(c2)))
            if ranges:
                found[name] = ranges
    return found


def fill_merged_down(grid: pd.DataFrame, ranges: list[Range]) -> int:
    """Give a vertically merged cell's value to every row it covers (in its first column); returns the
    number of cells filled. `grid` starts at A1 (row 0 = Excel row 1). Horizontal merges (a title over
    the table) are left alone: copying them sideways would only repeat a label."""
    filled = 0
    for r1, c1, r2, _c2 in ranges:
        if r2 <= r1 or c1 >= grid.shape[1] or r1 >= len(grid):
            continue
        value = grid.iat[r1, c1]
        if value == "" or value is None:
            continue
        last = min(r2, len(grid) - 1)
        column = grid.columns[c1]
        grid.loc[grid.index[r1 + 1]:grid.index[last], column] = value
        filled += last - r1
    return filled


# -- rows that are not people ------------------------------------------------------------------------
_TOTAL_LABEL = re.compile(
    r"(?i)^\s*(?:本页|全部|总|各)?\s*(?:(?:合\s*计|小\s*计|总\s*计|共\s*计|累\s*计|总\s*数|汇\s*总).{0,16}"
    r"|(?:sub-?\s*totals?|grand\s+totals?|totals?|sum)\b.{0,16})$")
# a contact anywhere in a cell (+8613800138000, 0571-8654 1234, a@b.cn): generous on purpose, since a row or
# sheet wrongly thought contact-free would be skipped, while one wrongly thought to hold one is only kept
_CONTACT_IN_ROW = re.compile(r"@|＠|1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|0\d{2,3}[\s)）-]{0,2}\d{7,8}")
_PROSE = re.compile(r"[。；！？]|[，,].*[，,]|^\s*(?:注|说明|备注|提示|温馨提示|数据来源|制表|导出时间|打印时间|"
                    r"填写说明|note|source)\s*[:：]|^\s*(?:\d+|[一二三四五六七八九十]+)\s*[、.．)）]")
ROW_SKIP_REASONS = {"total": "a total or subtotal", "note": "a line of text under or between the rows, not a person"}


# the first two characters a total's label can start with (合计, 小 计, 总计, 本页合计, Total, SUM, Grand total …)
_LABEL_STARTS = np.array([a + b for a in "合小总共累汇" for b in "计数总 \u3000"] + ["本页", "全部", "各项"]
                         + [w[:2] for w in ("total", "Total", "TOTAL", "sum", "Sum", "SUM", "subtotal", "grand",
                                             "Grand", "GRAND")])
_LABEL_CODES = _LABEL_STARTS.astype("U2").view(np.int64)
LABEL_COLUMNS = 3  # a total's label stands in one of the first columns (序号, 姓名 …)


def lone_rows(values: np.ndarray) -> np.ndarray:
    """Rows with exactly one filled cell (grids are strings, '' for empty). Column by column over the rows
    still in question: most rows hold two cells after two columns, so a big sheet costs two comparisons."""
    n, width = values.shape
    count = np.zeros(n, dtype=np.int64)
    open_rows = np.arange(n)
    for i in range(width):
        if not len(open_rows):
            break
        count[open_rows] += values[open_rows, i] != ""
        open_rows = open_rows[count[open_rows] < 2]
    lone = np.zeros(n, dtype=bool)
    lone[open_rows] = count[open_rows] == 1
    return lone


def layout_rows(body: pd.DataFrame) -> dict[str, np.ndarray]:
    """Rows of a sheet's data that are not people: kind -> mask. Totals (合计, 小计, Total…) carry a label
    in one of their first filled cells and no contact; a note is a lone sentence with no contact.

    Cheap on big sheets: a label is looked for by its first two characters (numpy, no Python per cell) in
    the first columns, and rows are read in Python only when they are candidates (such a start, or a single
    filled cell)."""
    n = len(body)
    if n == 0 or body.shape[1] == 0:
        return {}
    values = body.to_numpy(dtype=object)
    candidates = np.zeros(n, dtype=bool)
    for i in range(min(LABEL_COLUMNS, body.shape[1])):
        # two UCS-4 characters are 8 bytes: compared as integers (np.isin on strings sorts them, 10x slower)
        candidates |= np.isin(values[:, i].astype("U2").view(np.int64), _LABEL_CODES)
    lone = lone_rows(values)
    total = np.zeros(n, dtype=bool)
    note = np.zeros(n, dtype=bool)
    for r in np.flatnonzero(candidates | lone):
        cells = [str(v).strip() for v in values[r] if v != ""]
        if not cells or any(_CONTACT_IN_ROW.search(c) for c in cells):
            continue
        if candidates[r] and any(_TOTAL_LABEL.match(c) for c in cells[:3]):
            total[r] = True
        elif lone[r] and len(cells[0]) >= 8 and _PROSE.search(cells[0]):
            note[r] = True
    return {k: m for k, m in (("total", total), ("note", note)) if m.any()}


# -- sheets that are not lead lists ------------------------------------------------------------------
EXAMPLE_NAMES = {"张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十", "某某", "张某", "李某", "王某", "张某某",
                 "李某某", "王某某", "测试", "示例", "样例", "xxx", "xx", "test", "sample", "example", "johndoe",
                 "janedoe", "张小三", "李小四"}
_EXAMPLE_EMAIL = re.compile(r"(?i)@(?:[\w-]+\.)*(?:example|test|sample|domain|xxx|xx|abc|company|email|mail)"
                            r"\.(?:com|org|net|cn)\b|^(?:test|example|sample|xxx|abc|name|someone|user)@")
_EXAMPLE_TEXT = re.compile(r"(?i)某某|xx公司|xxx|示例|样例|例如|例：|比如|填写|必填|选填|格式")
_PIVOT_WORDS = re.compile(r"(?i)^(?:行标签|列标签|求和项|计数项|平均值项|最大值项|最小值项|数据透视|row labels|"
                          r"column labels|sum of|count of|average of)")
_NUMBER = re.compile(r"^\s*[-+]?[\d,]*\.?\d+\s*%?\s*$")
_PEOPLE_FIELDS = ("name", "mobile", "email", "wechat", "qq", "company")
JUDGE_SAMPLE = 400  # rows spread over a sheet: enough to judge a share, cheap on 200k rows


def _spread(n: int, limit: int) -> np.ndarray:
    return np.arange(n) if n <= limit else np.linspace(0, n - 1, limit).astype(int)


@dataclass
class SheetVerdict:
    """Why a sheet is not a lead list (empty `reason`: it is one), with the counts behind it."""

    reason: str = ""
    rows: int = 0
    weak: bool = False  # skipped only when another sheet of the file holds leads

    @property
    def is_leads(self) -> bool:
        return not self.reason


_PLACEHOLDER_PHONE = re.compile(r"(?i)[x*＊]{2}|^1(\d)\1{9}$|^1(?:3800138000|3912345678|2345678901)$")


def _only_placeholder_contacts(values: dict[str, str]) -> bool:
    """No contact in the row, or only made-up ones (13800138000, 138xxxx…, @example.com)."""
    mobile, email = values.get("mobile", "").strip(), values.get("email", "").strip()
    return ((not mobile or mobile == "nan" or bool(_PLACEHOLDER_PHONE.search(mobile)))
            and (not email or email == "nan" or bool(_EXAMPLE_EMAIL.search(email))))


def _example_row(values: dict[str, str]) -> tuple[bool, bool]:
    """(made-up values, weaker signs): words such as 示例 / 某某 / XX公司, or an example name (张三, 李四) with no
    contact or a made-up one, are made up for sure. An example name beside a real-looking number is weaker:
    赵六 and 钱七 are people's names too, and a row that reaches someone is never thrown away on its name
    alone; so is an @example.com address (test lists use it for real-looking people)."""
    name = re.sub(r"[\s·.()（）先生女士]", "", values.get("name", "")).lower()
    worded = any(bool(_EXAMPLE_TEXT.search(values.get(f, ""))) for f in ("name", "company", "email", "wechat"))
    named = name in EXAMPLE_NAMES
    strong = worded or (named and _only_placeholder_contacts(values))
    return strong, not strong and (named or bool(_EXAMPLE_EMAIL.search(values.get("email", ""))))


def judge_sheet(grid: pd.DataFrame, frame: pd.DataFrame, header_row: int, name: str = "") -> SheetVerdict:
    """Is this sheet a lead list? `grid` is the whole sheet (strings), `frame` its rows as read (canonical
    fields), `header_row` the grid index of the header.

    Not leads: an example table (most rows hold 张三 / 李四 / @example.com / 138xxxx… values); instructions
    (more lone lines of prose than rows of data); a summary or pivot (no row holds a contact, and the
    cells are numbers, or pivot labels such as 行标签 / 求和项)."""
    rows = len(frame)
    if rows == 0:
        return SheetVerdict("", 0)
    fields = [f for f in _PEOPLE_FIELDS if f in frame.columns]
    sample = frame.iloc[_spread(rows, JUDGE_SAMPLE)]  # a share is judged as well on a few hundred rows
    columns = [sample[f].astype(str).tolist() for f in fields]  # as to_dict("records"), at a fraction of its cost
    records = [dict(zip(fields, row, strict=True)) for row in zip(*columns, strict=True)] if fields else \
        [{} for _ in range(len(sample))]
    marks = [_example_row(r) for r in records]
    strong, weak = sum(m[0] for m in marks), sum(m[1] for m in marks)
    if (strong + weak) * 2 >= len(records):
        found = ", ".join(sorted({r.get("name", "") for r in records if r.get("name")} & EXAMPLE_NAMES)[:3])
        share = f"{strong + weak} of {rows}" if len(records) == rows else f"{(strong + weak) / len(records):.0%} of"
        return SheetVerdict(f"an example table: {share} rows hold example values"
                            + (f" ({found})" if found else " (example addresses)"), rows,
                            weak=strong * 2 < len(records))
    values = grid.to_numpy(dtype=object)
    lone = lone_rows(values)
    lone_cells = [str(v).strip() for row in values[lone] for v in row if v != ""]
    prose = sum(len(v) >= 8 and bool(_PROSE.search(v)) for v in lone_cells)
    if prose >= max(3, rows) and prose + rows >= 4:
        # weak: a tiny list with a long footnote is still a list when no other sheet holds one
        return SheetVerdict(f"instructions: {prose} lines of prose and only {rows} rows of data", rows, weak=True)
    if _holds_contacts(frame.iloc[_spread(rows, JUDGE_SAMPLE)]):
        return SheetVerdict("", rows)  # the columns read as contacts hold some: not a summary
    return SheetVerdict(summary_reason(grid, header_row), rows)


_CONTACT_LOOK = {"mobile": re.compile(r"\d(?:\D?\d){6}"), "email": re.compile(r"[@＠]"),
                 "wechat": re.compile(r"[A-Za-z].*\d|\d.*[A-Za-z]|[A-Za-z_-]{6}"), "qq": re.compile(r"\d{5}")}


def _holds_contacts(rows: pd.DataFrame) -> bool:
    """Whether any value read as a contact looks like one (a phone's seven digits, an @, a WeChat id, a QQ
    number); a pivot's 计数项:手机 column holds counts, not phones."""
    for field, look in _CONTACT_LOOK.items():
        if field in rows.columns and rows[field].astype(str).str.contains(look).any():
            return True
    return False


def summary_reason(grid: pd.DataFrame, header_row: int = 0) -> str:
    """Why a sheet is a summary or a pivot (no row holds a contact, and its cells are numbers or pivot
    labels such as 行标签 / 求和项), else ''. Also names what a sheet without a header row is."""
    data = grid.iloc[header_row + 1:]
    data = data.iloc[_spread(len(data), JUDGE_SAMPLE)].astype(str)  # a summary is small; a sample says enough
    cells = [v.strip() for v in data.to_numpy().ravel().tolist() if v.strip()]
    with_contact = int(data.agg(" ".join, axis=1).str.contains(_CONTACT_IN_ROW).sum()) if len(data) else 0
    head = grid.iloc[: header_row + 2].astype(str).to_numpy().ravel().tolist()
    pivot = any(_PIVOT_WORDS.match(v.strip()) for v in head + cells[:50] if v.strip())
    numbers = sum(bool(_NUMBER.match(v)) for v in cells)
    if with_contact == 0 and cells and (pivot or numbers * 3 >= len(cells)):
        kind = "a pivot table" if pivot else "a summary"
        return f"{kind}: {numbers} of {len(cells)} cells are numbers and no row holds a contact"
    return ""


def staff_sheets(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Sheets whose people are the owners of another sheet of the file (its 负责人 / 销售): our own staff
    list with their phones, not leads. Sheet name -> why."""
    def names(frame: pd.DataFrame, field: str) -> set[str]:
        if field not in frame.columns:
            return set()
        values = frame[field].astype(str).str.replace(r"\s", "", regex=True)
        return set(values[values != ""].unique().tolist())

    owners = {sheet: names(frame, "owner") for sheet, frame in frames.items()}
    found: dict[str, str] = {}
    for sheet, frame in frames.items():
        people = names(frame, "name")
        for other, theirs in owners.items():
            if other == sheet or len(people) < 2 or not theirs:
                continue
            shared = len(people & theirs)
            if shared >= 0.8 * len(people):
                found[sheet] = (f"our own staff: {shared} of its {len(people)} names are the owners of sheet "
                                f"{other!r}")
                break
    return found


__all__ = ["staff_sheets", "ROW_SKIP_REASONS", "SheetVerdict", "fill_merged_down", "judge_sheet", "layout_rows", "summary_reason",
           "xlsx_vertical_merges"]
