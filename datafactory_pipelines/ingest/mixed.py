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
_QQ = re.compile(r"^[1-9]\d{4,10}$")
_SEPARATORS = re.compile(r"[,;，；、|/\n]+|\s+")
FIELDS = ("mobile", "email", "wechat", "qq")


def split_cell(text: str) -> dict[str, list[str]]:
    """One cell -> {field: [values]} for mobile (phones of any kind), email, wechat, qq."""
    found: dict[str, list[str]] = {f: [] for f in FIELDS}
    rest = str(text or "").strip()
    if not rest:
        return found
    for match in _EMAIL.finditer(rest):
        found["email"].append(match.group(0))
    rest = _EMAIL.sub(" ", rest)
    for label, value in _LABELLED.findall(rest):
        found["qq" if label.lower().startswith("qq") else "wechat"].append(value)
    rest = _LABELLED.sub(" ", rest)
    rest = _LABEL_ONLY.sub(" ", rest).strip(" \t,;/、|，；\n")
    if not rest:
        return found
    whole = standardize_phones([rest]).iloc[0]
    if (whole["mobile"] or whole["landline"]) and not whole["mobile_reason"].endswith("dropped"):
        found["mobile"].append(rest)  # one or several numbers, written any way the phone reader knows
        return found
    for token in (t for t in _SEPARATORS.split(rest) if t):
        phone = standardize_phones([token]).iloc[0]
        if phone["mobile"] or phone["landline"]:
            found["mobile"].append(token)
        elif _WECHAT.match(token):
            found["wechat"].append(token)
        elif _QQ.match(token):
            found["qq"].append(token)
        else:  # unreadable: kept with the phones, where the reason is recorded
            found["mobile"].append(token)
    return found


def split_column(values: pd.Series) -> dict[str, pd.Series]:
    """A mixed column -> one column per field (';'-joined when a cell holds several), each distinct cell once."""
    distinct = {v: split_cell(v) for v in pd.unique(values.astype(str))}
    return {f: values.astype(str).map({v: ";".join(parts[f]) for v, parts in distinct.items()}) for f in FIELDS}
