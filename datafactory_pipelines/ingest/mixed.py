"""A column holding several kinds of contact (手机/微信, 联系方式) read cell by cell.

Each cell is split into what it holds: email addresses, phone numbers (one or several, any
separator), QQ numbers and WeChat IDs (labelled "微信: …" or bare). Each part goes to its own
field; the standardizers then check it as that kind.
"""

from __future__ import annotations

import re

import pandas as pd

from datafactory_pipelines.standardize.phone import standardize_phones

_EMAIL = re.compile(r"[\w.+'-]+\s*[@＠]\s*[\w-]+(?:[.。][\w-]+)+")
_LABELLED = re.compile(r"(?i)(微信号?|wechat|weixin|wx|vx|qq号?|qq)\s*[:：]?\s*([A-Za-z0-9][-_A-Za-z0-9]{4,19})")
_LABEL_ONLY = re.compile(r"(?i)(手机号?|电话|座机|tel|mobile|phone|邮箱|email|e-mail)\s*[:：]?")
_WECHAT = re.compile(r"(?i)^[a-z][-_a-z0-9]{5,19}$")
QQ_NUMBER = re.compile(r"^[1-9]\d{4,10}$")  # a QQ number: 5-11 digits, no leading zero
_SEPARATORS = re.compile(r"[,;，；、|/\n]+|\s+")
FIELDS = ("mobile", "email", "wechat", "qq")


def _peel(text: str) -> tuple[dict[str, list[str]], str]:
    """Emails and labelled IDs out of a cell (plain regexes, C speed); what is left may hold phones."""
    found: dict[str, list[str]] = {f: [] for f in FIELDS}
    rest = str(text or "").strip()
    if not rest:
        return found, ""
    if "@" in rest or "＠" in rest:
        found["email"].extend(m.group(0) for m in _EMAIL.finditer(rest))
        rest = _EMAIL.sub(" ", rest)
    for label, value in _LABELLED.findall(rest):
        found["qq" if label.lower().startswith("qq") else "wechat"].append(value)
    rest = _LABELLED.sub(" ", rest)
    return found, _LABEL_ONLY.sub(" ", rest).strip(" \t,;/、|，；\n")


def split_cells(cells: list[str]) -> list[dict[str, list[str]]]:
    """Cells -> {field: [values]} each, for mobile (phones of any kind), email, wechat, qq.

    The phone reader runs once over all leftovers (vectorized); only cells it cannot read whole are
    split into tokens, and those tokens are classified in one more pass.
    """
    peeled = [_peel(c) for c in cells]
    rests = [rest for _, rest in peeled]
    whole = standardize_phones(rests)
    readable = ((whole["mobile"] != "") | (whole["landline"] != "")).to_numpy() \
        & ~whole["mobile_reason"].str.endswith("dropped").to_numpy()
    tokens_of = {i: [t for t in _SEPARATORS.split(rests[i]) if t]
                 for i in range(len(cells)) if rests[i] and not readable[i]}
    distinct = sorted({t for ts in tokens_of.values() for t in ts})
    phone = standardize_phones(distinct) if distinct else None
    is_phone = dict(zip(distinct, ((phone["mobile"] != "") | (phone["landline"] != "")).tolist(), strict=True)) \
        if phone is not None else {}
    out = []
    for i, (found, rest) in enumerate(peeled):
        if rest and readable[i]:
            found["mobile"].append(rest)  # one or several numbers, written any way the phone reader knows
        for token in tokens_of.get(i, []):
            if is_phone[token]:
                found["mobile"].append(token)
            elif _WECHAT.match(token):
                found["wechat"].append(token)
            elif QQ_NUMBER.match(token):
                found["qq"].append(token)
            else:  # unreadable: kept with the phones, where the reason is recorded
                found["mobile"].append(token)
        out.append(found)
    return out


def split_cell(text: str) -> dict[str, list[str]]:
    return split_cells([text])[0]



def split_column(values: pd.Series) -> dict[str, pd.Series]:
    """A mixed column -> one column per field (';'-joined when a cell holds several), each distinct cell once."""
    text = values.astype(str)
    distinct = list(pd.unique(text))
    parts = split_cells(distinct)
    return {f: text.map({v: ";".join(p[f]) for v, p in zip(distinct, parts, strict=True)}) for f in FIELDS}
