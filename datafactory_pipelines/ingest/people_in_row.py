"""Several people in one row (联系人1/电话1, 联系人2/电话2, 第三联系人 …): one record each, each with only its own
contacts, all sharing the row's other columns (company, address, date).

Read as one person, the second contact's phone becomes the first one's alternate and links two people
who share nothing. The columns are grouped by the number in their header (1, 2, ①, 第二); a group is a
person when it holds a name or a contact column. The stacked rows keep the Excel row they came from and
say which person of the row they are (`person_in_row`).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from datafactory_pipelines.ingest.headers import header_role, normalize_header

PERSON_IN_ROW = "person_in_row"
_PERSON_ROLES = {"name", "mobile", "email", "wechat", "qq", "title", "contact", "douyin", "kuaishou"}
_CONTACT_ROLES = {"mobile", "email", "wechat", "qq", "contact", "douyin", "kuaishou"}
_CN_NUMBERS = {c: i + 1 for i, c in enumerate("一二三四五六七八九十")}
_ORDINAL = re.compile(r"第\s*([一二三四五六七八九十]|\d{1,2})\s*(?:个|位)?")
_NUMBER = re.compile(r"(?<![\d.])(\d{1,2})(?![\d.])")
_CN_SUFFIX = re.compile(r"([一二三四五])$")


def split_index(header: str) -> tuple[str, int | None]:
    """'联系人2' -> ('联系人', 2); '第二联系人电话' -> ('联系人电话', 2); 'Contact 3 Phone' -> ('Contact  Phone', 3)."""
    text = unicodedata.normalize("NFKC", str(header)).strip()
    for pattern in (_ORDINAL, _NUMBER):
        m = pattern.search(text)
        if m:
            token = m.group(1)
            index = int(token) if token.isdigit() else _CN_NUMBERS[token]
            return (text[:m.start()] + text[m.end():]).strip(), index
    m = _CN_SUFFIX.search(text)  # 联系人二
    if m and header_role(text[:m.start()]) in _PERSON_ROLES:
        return text[:m.start()], _CN_NUMBERS[m.group(1)]
    return text, None


def person_groups(headers: list[str]) -> dict[int, dict[str, int]] | None:
    """person number -> {base header: column}; None unless at least two people have a name column
    (电话1 / 电话2 beside one 姓名 are one person's two numbers)."""
    groups: dict[int, dict[str, int]] = {}
    for i, header in enumerate(headers):
        base, index = split_index(header)
        if index is None or not 1 <= index <= 10 or header_role(base) not in _PERSON_ROLES:
            continue
        groups.setdefault(index, {})[normalize_header(base)] = i
    first = _unnumbered_first(headers, groups)
    if first and 1 not in groups:
        groups[1] = first
    if _named(groups) < 2:
        groups = _repeated_headers(headers)
    if _named(groups) < 2:
        return None
    return dict(sorted(groups.items()))


def _named(groups: dict[int, dict[str, int]]) -> int:
    return sum(any(header_role(b) == "name" for b in cols) for cols in groups.values())


def _repeated_headers(headers: list[str]) -> dict[int, dict[str, int]]:
    """联系人 / 手机 / 联系人 / 手机: the same name header again starts the next person, who takes the
    person columns up to the one after."""
    keys = [normalize_header(h) for h in headers]
    names = [i for i, k in enumerate(keys) if header_role(k) == "name" and keys.count(k) >= 2]
    if len({keys[i] for i in names}) != 1:
        return {}
    groups: dict[int, dict[str, int]] = {}
    for number, start in enumerate(names, start=1):
        end = names[number] if number < len(names) else len(keys)
        cols = {keys[start]: start}
        for i in range(start + 1, end):
            if header_role(keys[i]) in _PERSON_ROLES - {"name"} and keys[i] not in cols:
                cols[keys[i]] = i
            else:
                break  # a shared column (company, address) ends the person
        groups[number] = cols
    return groups


def _unnumbered_first(headers: list[str], groups: dict[int, dict[str, int]]) -> dict[str, int]:
    """联系人 / 电话 beside 联系人2 / 电话2: the columns without a number are the first person."""
    bases = {b for cols in groups.values() for b in cols}
    taken = {i for cols in groups.values() for i in cols.values()}
    return {normalize_header(h): i for i, h in enumerate(headers)
            if i not in taken and normalize_header(h) in bases}


def stack_people(header: list[str], body: pd.DataFrame
                 ) -> tuple[list[str], pd.DataFrame, np.ndarray] | None:
    """(header, body with one row per person, body position each row came from), or None for one person a row."""
    groups = person_groups(header)
    if groups is None:
        return None
    in_groups = {i for cols in groups.values() for i in cols.values()}
    shared = [i for i in range(len(header)) if i not in in_groups]
    order = [b for cols in groups.values() for b in cols]
    bases = list(dict.fromkeys(order))
    display = {}
    for cols in groups.values():
        for b, i in cols.items():
            display.setdefault(b, split_index(header[i])[0] or header[i])
    if len(set(display.values())) < len(display):  # two bases shown alike: keep the normalized keys
        display = {b: b for b in display}
    parts, positions = [], []
    for number, cols in groups.items():
        part = pd.DataFrame({f"s{i}": body.iloc[:, i].to_numpy() for i in shared})
        filled = np.zeros(len(body), dtype=bool)
        for b in bases:
            values = body.iloc[:, cols[b]].astype(str).to_numpy() if b in cols else np.full(len(body), "", dtype=object)
            part[f"g{b}"] = values
            filled |= pd.Series(values).str.strip().ne("").to_numpy()
        part[PERSON_IN_ROW] = str(number)
        parts.append(part[filled])
        positions.append(np.flatnonzero(filled))
    stacked = pd.concat(parts, ignore_index=True)
    where = np.concatenate(positions)
    person = stacked[PERSON_IN_ROW].astype(int).to_numpy()
    order_rows = np.lexsort((person, where))  # row by row, person 1 before person 2
    stacked = stacked.iloc[order_rows].reset_index(drop=True)
    stacked.columns = range(stacked.shape[1])
    new_header = [header[i] for i in shared] + [display[b] for b in bases] + [PERSON_IN_ROW]
    return new_header, stacked, where[order_rows]
