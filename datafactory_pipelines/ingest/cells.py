"""Contacts wherever they stand in a row: each cell read by content, its column's role a prior, not a cage.

A person writes `联系人: 罗博/13698072411`, `张伟 13800138000`, `张伟（销售总监）` or a whole registration
(`姓名：张伟 电话：138… 公司：…`) into one cell, and `备用: 139…` or `微信: …` into the remarks. A reader
who only trusts the header loses all of it. Here a cell is split into its parts: emails, phone numbers
(one or several, any form, scientific notation of a numeric cell included), labelled WeChat and QQ IDs,
and what is left is read as a name, a title or a company by what it looks like.

How far a cell is believed depends on its column:
- the lead's name column: every part is taken (the name without the number, the number as a contact);
- a remarks column (备注): only contacts a label names (`备用:`, `手机`, `微信:`, `QQ`), as alternates;
- a column whose header names nothing we know: phones and emails that read whole, labelled IDs;
  names, titles and companies too when the sheet has no column for them (a registration in one cell);
- a contact column when the sheet has no name column: the name written beside the number.
Other people's columns (owner, referrer), identifiers and dates are never read for contacts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines.ingest.roles import (
    _COMPANY,
    _TITLE_WORDS,
    _TITLES,
    MIXED,
    ColumnRole,
    looks_like_chinese_name,
    looks_like_romanized_name,
)
from datafactory_pipelines.standardize.chinese import simplified_table
from datafactory_pipelines.standardize.phone import standardize_phones
from datafactory_pipelines.standardize.text import as_strings

NAME, REMARK, FREE, BESIDE_CONTACT = "name", "remark", "free", "beside_contact"
PROVENANCE_KEY = "contacts_found_in"  # extra attribute: the columns a row's contacts were read from

_EMAIL = re.compile(r"[\w.+'-]+\s*@\s*[\w-]+(?:\.[\w-]+)+", re.ASCII)
_WECHAT_LABEL = r"(?:微信号?|威信|v信|(?<![a-z])(?:wechat|weixin|wx|vx)(?![a-z_]))"
_QQ_LABEL = r"(?:(?<![a-z])qq号?码?|扣扣)"
_LABELLED_ID = re.compile(rf"(?i)(?P<label>{_WECHAT_LABEL}|{_QQ_LABEL})\s*(?:id|号)?\s*[:：]?\s*"
                          r"(?P<value>[A-Za-z0-9][-_A-Za-z0-9]{4,19})")
_SCIENTIFIC = re.compile(r"(?<![\d.])\d\.\d+[eE]\+?\d{1,2}(?![\d])")
_PHONE = re.compile(r"(?<![0-9A-Za-z.])(?:[(（]?\+?\s?86[)）]?[-\s]?)?[(（]?\d[\d\-\s()（）]{5,22}\d"
                    r"(?:\s*(?:转|分机|ext\.?|#)\s*\d{1,6})?(?![0-9A-Za-z])")
_PHONE_LABEL_BEFORE = re.compile(r"(?i)(?:手机号?码?|电话号?码?|座机|固话|备用|联系方式|联系电话|新号码?|号码|移动电话|"
                                 r"tel|mobile|phone|cell|电)\s*[:：]?\s*$")
_EMAIL_LABEL_BEFORE = re.compile(r"(?i)(?:邮箱|邮件|电邮|email|e-mail|mail)\s*(?:地址)?\s*[:：]?\s*$")
# words before a number that make it someone else's: 紧急联系人电话, 推荐人手机, 助理电话, 老板微信
_SOMEONE_ELSE = re.compile(r"联系人|紧急|推荐|介绍|助理|秘书|同事|老板|负责人|家人|爱人|家属|太太|老公|老婆|朋友|"
                           r"销售|业务员|客服|我司|本公司|前台")
_STRUCT_LABEL = re.compile(r"(?i)(?P<label>联系人|联络人|姓名|名字|称呼|客户|公司名称|公司|单位|职位|职务|职称|头衔|"
                           r"地址|手机号?码?|电话|座机|邮箱|email|e-mail|微信号?|qq号?|备用|"
                           r"name|company|title|mobile|phone|tel)\s*[:：]\s*")
_LABEL_KIND = {"联系人": "name", "联络人": "name", "姓名": "name", "名字": "name", "称呼": "name", "客户": "name",
               "name": "name", "公司名称": "company", "公司": "company", "单位": "company", "company": "company",
               "职位": "title", "职务": "title", "职称": "title", "头衔": "title", "title": "title"}
_SEGMENT = re.compile(r"[^,，;；/|、\n\t\x00]+")
_BRACKET = re.compile(r"^(?P<base>[^(（\[【]+?)\s*[(（\[【](?P<note>[^)）\]】]*)[)）\]】]\s*$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_DIGIT = re.compile(r"\d")
# which cells are worth reading at all (RE2, over the distinct values of a column at once)
_HAS_CONTACT = r"\d{7}|\d{3,4}[-\s]\d{3,4}|@|＠|[eE]\+1\d|微信|威信|(?i:wechat|weixin|wx|vx|qq)|扣扣"
# a name cell worth splitting: a contact, a label, a separator, or a title or company beside the name
# (张伟（销售总监）, 张伟 采购经理); "Zhang Wei" and 张伟(先生) are names as they are
_TITLE_OR_FIRM = r"(?:经理|总监|主管|专员|工程师|助理|总裁|董事|主任|顾问|代表|会计|出纳|文员|有限|公司|集团|(?i:manager|director))"
_HAS_PARTS = _HAS_CONTACT + r"|[:：]|[,，/;；、]|[(（][^)）]*" + _TITLE_OR_FIRM + r"|\s\S*" + _TITLE_OR_FIRM


@dataclass
class CellParts:
    """What one cell holds, each part as the file wrote it."""

    name: str = ""
    title: str = ""
    company: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    wechats: list[str] = field(default_factory=list)
    qqs: list[str] = field(default_factory=list)

    @property
    def contacts(self) -> int:
        return len(self.phones) + len(self.emails) + len(self.wechats) + len(self.qqs)


def _blank(mask: list[str], start: int, end: int) -> None:
    mask[start:end] = ["\x00"] * (end - start)


def split_cell(cell: str, labelled_only: bool = False, readable: dict[str, bool] | None = None,
               keep_unreadable: bool = False) -> CellParts:
    """One cell -> its parts. `labelled_only`: contacts only where a label names them (remarks).
    `readable`: phone candidate -> reads as a phone (`split_cells` fills it in one vectorized pass).
    `keep_unreadable`: a long number that reads as no phone is still taken out (a name cell), so the
    phone reader records why it is bad and the name stays a name."""
    text = unicodedata.normalize("NFKC", cell or "").strip()
    simple = text.translate(simplified_table())  # one character for one: positions stay the same
    parts = CellParts()
    if not text:
        return parts
    mask = list(simple)
    for m in _EMAIL.finditer(simple):
        before = simple[max(0, m.start() - 12):m.start()]
        if labelled_only and not _EMAIL_LABEL_BEFORE.search(before[-8:]):
            continue
        if not keep_unreadable and _SOMEONE_ELSE.search(before):
            continue
        parts.emails.append(text[m.start():m.end()].replace(" ", ""))
        _blank(mask, m.start(), m.end())
    for m in _LABELLED_ID.finditer("".join(mask)):
        value, label = m.group("value"), m.group("label").lower()
        if not keep_unreadable and _SOMEONE_ELSE.search(simple[max(0, m.start() - 8):m.start()]):
            continue
        if label.startswith(("qq", "扣")):
            if not value.isdigit():
                continue
            parts.qqs.append(value)
        elif value.isdigit() and len(value) != 11:  # a WeChat ID, or the mobile it is bound to
            continue
        else:
            parts.wechats.append(value)
        _blank(mask, m.start(), m.end())
    masked = "".join(mask)
    for m in [*_SCIENTIFIC.finditer(masked), *_PHONE.finditer(masked)]:
        if "\x00" in "".join(mask[m.start():m.end()]):
            continue  # already taken (a scientific number is also a run of digits)
        candidate = m.group(0).strip()
        if sum(c.isdigit() for c in candidate) < 7 and not _SCIENTIFIC.fullmatch(candidate):
            continue
        reads = readable.get(candidate, False) if readable is not None else True
        before = masked[max(0, m.start() - 12):m.start()]
        if labelled_only and not _PHONE_LABEL_BEFORE.search(before[-8:]):
            continue
        if not keep_unreadable and _SOMEONE_ELSE.search(before.split("\x00")[-1]):
            continue  # 紧急联系人电话: 139…: a number, but not this lead's
        if not reads and not keep_unreadable:
            continue
        parts.phones.append(candidate)
        _blank(mask, m.start(), m.end())
    if not labelled_only:
        _read_words(text, "".join(mask), parts)
    return parts


def _read_words(text: str, masked: str, parts: CellParts) -> None:
    """What is left of a cell once its contacts are out: a name, a title, a company, by label or by look."""
    labels = list(_STRUCT_LABEL.finditer(masked))
    cut = list(masked)
    for m in labels:
        _blank(cut, m.start(), m.end())
    cut_text = "".join(cut)
    for m in _SEGMENT.finditer(cut_text):
        segment = text[m.start():m.end()].strip(" \t-—:：")
        if not segment:
            continue
        # the label right before this segment, with nothing but separators between them, names its kind
        kind = ""
        for label in labels:
            if label.end() <= m.start() and not cut_text[label.end():m.start()].strip("\x00 "):
                kind = _LABEL_KIND.get(label.group("label").lower(), "other")
        if kind == "other":
            continue  # a contact label whose value was not read: leave it
        pieces = segment.split() if _CJK.search(segment) and not kind else [segment]
        for piece in pieces:
            _place(piece, kind, parts)


def _is_title(text: str) -> bool:
    key = re.sub(r"\s", "", text.lower())
    return key in _TITLES or (bool(_TITLE_WORDS.search(text)) and len(text) <= 12)


def _place(piece: str, kind: str, parts: CellParts) -> None:
    simple = piece.translate(simplified_table())
    if kind == "name" or (not kind and not parts.name and (looks_like_chinese_name(simple)
                                                            or looks_like_romanized_name(simple))):
        bracket = _BRACKET.match(piece)
        if bracket and _is_title(bracket.group("note").translate(simplified_table())):
            parts.name = bracket.group("base").strip()
            parts.title = parts.title or bracket.group("note").strip()
        elif not _DIGIT.search(piece):
            parts.name = parts.name or piece
        return
    if kind == "company" or (not kind and _COMPANY.search(simple)):
        parts.company = parts.company or piece
    elif kind == "title" or (not kind and _is_title(simple)):
        parts.title = parts.title or piece
    elif not kind and not parts.name:
        bracket = _BRACKET.match(piece)
        if bracket and looks_like_chinese_name(bracket.group("base").translate(simplified_table())):
            parts.name = bracket.group("base").strip() if _is_title(bracket.group("note")) else piece
            if _is_title(bracket.group("note")):
                parts.title = parts.title or bracket.group("note").strip()


def split_cells(cells: list[str], labelled_only: bool = False, keep_unreadable: bool = False) -> list[CellParts]:
    """Many cells at once: the phone candidates of all of them go through the phone reader in one pass."""
    candidates = sorted({m.group(0).strip() for c in cells
                         for m in [*_SCIENTIFIC.finditer(unicodedata.normalize("NFKC", c or "")),
                                   *_PHONE.finditer(unicodedata.normalize("NFKC", c or ""))]})
    readable: dict[str, bool] = {}
    if candidates:
        phones = standardize_phones(candidates)
        ok = ((phones["mobile"] != "") | (phones["landline"] != "")).to_numpy()
        readable = dict(zip(candidates, ok.tolist(), strict=True))
    return [split_cell(c, labelled_only, readable, keep_unreadable) for c in cells]


def _arrow_text(column: pd.Series) -> pa.Array:
    try:
        return pc.fill_null(pa.array(column.to_numpy(), type=pa.string(), from_pandas=True), "")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers among the strings
        return as_strings(column.tolist())


def worth_reading(values: pa.Array, pattern: str) -> np.ndarray:
    """Which cells may hold parts (RE2 over Arrow: a column of plain names costs next to nothing)."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    hits = pc.match_substring_regex(values, pattern)
    return np.asarray(pc.fill_null(hits, False).to_numpy(zero_copy_only=False), dtype=bool)


def mode_of(role: ColumnRole, roles: list[ColumnRole]) -> str:
    """How far this column's cells are believed (see the module docstring); '' = not read."""
    if role.identifier:
        return ""
    if role.role is None and role.evidence.startswith("pinned by operator"):
        return ""  # an operator said this column is no field of the lead: its cells are not read either
    has_name = any(r.role == "name" for r in roles)
    if role.role == "name":
        return NAME
    if role.role is None:
        if role.header_vote == "extra":
            return REMARK
        date_like = role.content.get("date", 0) >= 0.5
        # another person's columns (a second name column, the owner, the referrer) hold their contacts
        return "" if date_like or role.header_vote in ("owner", "referrer", "name") else FREE
    if role.role in ("mobile", MIXED, "email", "wechat") and not has_name:
        return BESIDE_CONTACT
    return ""


@dataclass
class CellReading:
    """What reading the cells added to a sheet."""

    contacts_outside_column: int = 0  # contact values read from cells of other columns (names, remarks, …)
    rows_with_outside_contacts: int = 0
    by_column: dict[str, int] = field(default_factory=dict)
    names_from_cells: int = 0
    rows_added: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"contacts_outside_column": self.contacts_outside_column,
                "rows_with_outside_contacts": self.rows_with_outside_contacts,
                "contacts_by_column": self.by_column, "names_from_cells": self.names_from_cells}


def _append(frame: pd.DataFrame, fieldname: str, rows: np.ndarray, values: list[str]) -> None:
    """Add values to a field as alternates after what the row already has (the first stays primary)."""
    current = frame[fieldname].to_numpy()[rows]
    frame.loc[frame.index[rows], fieldname] = [f"{c};{v}" if str(c).strip() else v
                                               for c, v in zip(current, values, strict=True)]


def _fill_empty(frame: pd.DataFrame, fieldname: str, rows: np.ndarray, values: list[str]) -> None:
    current = frame[fieldname].to_numpy()[rows]
    frame.loc[frame.index[rows], fieldname] = [c if str(c).strip() else v
                                               for c, v in zip(current, values, strict=True)]


def read_cells(frame: pd.DataFrame, body: pd.DataFrame, roles: list[ColumnRole]) -> tuple[CellReading, list[str]]:
    """Fill `frame` (canonical fields, one row per body row) with what the cells hold beyond their column.

    Returns the reading's counts and, per row, the columns contacts were read from ('' when none)."""
    reading = CellReading()
    provenance = np.full(len(body), "", dtype=object)
    sheet_has = {r.role for r in roles}
    for role in roles:
        mode = mode_of(role, roles)
        if not mode or role.index >= body.shape[1]:
            continue
        pattern = _HAS_PARTS if mode in (NAME, BESIDE_CONTACT) else _HAS_CONTACT
        # RE2 over the whole column first (Arrow, no Python per row): most cells hold nothing more
        hits = worth_reading(_arrow_text(body.iloc[:, role.index]), pattern)
        rows = np.flatnonzero(hits)
        if not len(rows):
            continue
        cells = body.iloc[rows, role.index].astype(str).to_numpy()
        chosen = list(pd.unique(cells))
        parsed = dict(zip(chosen, split_cells(chosen, labelled_only=mode == REMARK, keep_unreadable=mode == NAME),
                          strict=True))
        parts = [parsed[c] for c in cells]
        _apply(frame, role, mode, rows, parts, sheet_has, reading, provenance)
    return reading, provenance.tolist()


def _apply(frame: pd.DataFrame, role: ColumnRole, mode: str, rows: np.ndarray, parts: list[CellParts],
           sheet_has: set, reading: CellReading, provenance: np.ndarray) -> None:
    if mode == NAME:  # the name without what stood beside it
        named = [(r, p.name) for r, p in zip(rows, parts, strict=True) if p.name and (p.contacts or p.title
                                                                                      or p.company)]
        if named:
            frame.loc[frame.index[[r for r, _ in named]], "name"] = [n for _, n in named]
    elif mode in (FREE, BESIDE_CONTACT) and "name" not in sheet_has:
        named = [(r, p.name) for r, p in zip(rows, parts, strict=True) if p.name]
        if named:
            _fill_empty(frame, "name", np.array([r for r, _ in named]), [n for _, n in named])
            reading.names_from_cells += len(named)
    if mode in (NAME, FREE, BESIDE_CONTACT):
        for fieldname, attr in (("title", "title"), ("company", "company")):
            if mode != NAME and fieldname in sheet_has:
                continue
            found = [(r, getattr(p, attr)) for r, p in zip(rows, parts, strict=True) if getattr(p, attr)]
            if found:
                _fill_empty(frame, fieldname, np.array([r for r, _ in found]), [v for _, v in found])
    if mode == BESIDE_CONTACT:
        return  # the column's own contacts are read by its role
    added = 0
    for fieldname, attr, many in (("mobile", "phones", True), ("email", "emails", True),
                                  ("wechat", "wechats", False), ("qq", "qqs", False)):
        found = [(r, getattr(p, attr)) for r, p in zip(rows, parts, strict=True) if getattr(p, attr)]
        if not found:
            continue
        at = np.array([r for r, _ in found])
        if many:
            _append(frame, fieldname, at, [";".join(v) for _, v in found])
        else:
            _fill_empty(frame, fieldname, at, [v[0] for _, v in found])
        added += sum(len(v) for _, v in found)
        for r, _ in found:
            provenance[r] = role.header if not provenance[r] else (
                provenance[r] if role.header in provenance[r].split("、") else f"{provenance[r]}、{role.header}")
    if added:
        reading.contacts_outside_column += added
        reading.by_column[role.header] = reading.by_column.get(role.header, 0) + added
        reading.rows_with_outside_contacts = int((provenance != "").sum())


def add_provenance(extra: list[str], provenance: list[str]) -> list[str]:
    """Each row's extra attributes (JSON) with the columns its contacts were read from."""
    out = list(extra)
    for i, where in enumerate(provenance):
        if where:
            values = json.loads(out[i]) if out[i] else {}
            values[PROVENANCE_KEY] = where
            out[i] = json.dumps(values, ensure_ascii=False)
    return out
