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
    return split_cells([text])[str(text or "")]


def split_cells(texts: list[str]) -> dict[str, dict[str, list[str]]]:
    """Each distinct cell -> {field: [values]}; the phone reader runs once for all cells (and once for
    all their tokens), not once per cell."""
    found: dict[str, dict[str, list[str]]] = {}
    rests: dict[str, str] = {}
    for text in {str(t or "") for t in texts}:
        cell: dict[str, list[str]] = {f: [] for f in FIELDS}
        found[text] = cell
        rest = text.strip()
        if not rest:
            continue
        for match in _EMAIL.finditer(rest):
            cell["email"].append(match.group(0))
        rest = _EMAIL.sub(" ", rest)
        for label, value in _LABELLED.findall(rest):
            cell["qq" if label.lower().startswith("qq") else "wechat"].append(value)
        rest = _LABELLED.sub(" ", rest)
        rest = _LABEL_ONLY.sub(" ", rest).strip(" \t,;/、|，；\n")
        if rest:
            rests[text] = rest
    whole = _phones(sorted(set(rests.values())), whole=True)
    split = {text: [t for t in _SEPARATORS.split(rest) if t] for text, rest in rests.items() if not whole[rest]}
    readable = _phones(sorted({t for tokens in split.values() for t in tokens}), whole=False)
    for text, rest in rests.items():
        cell = found[text]
        if whole[rest]:
            cell["mobile"].append(rest)  # one or several numbers, written any way the phone reader knows
            continue
        for token in split[text]:
            if readable[token]:
                cell["mobile"].append(token)
            elif _WECHAT.match(token):
                cell["wechat"].append(token)
            elif _QQ.match(token):
                cell["qq"].append(token)
            else:  # unreadable: kept with the phones, where the reason is recorded
                cell["mobile"].append(token)
    return found


def _phones(texts: list[str], whole: bool) -> dict[str, bool]:
    """Whether the phone reader finds a number in each text (for a whole cell: without dropping a part)."""
    if not texts:
        return {}
    read = standardize_phones(texts)
    ok = (read["mobile"].astype(bool) | read["landline"].astype(bool)).to_numpy()
    if whole:
        ok &= ~read["mobile_reason"].astype(str).str.endswith("dropped").to_numpy()
    return dict(zip(texts, ok.tolist(), strict=True))


def split_column(values: pd.Series) -> dict[str, pd.Series]:
    """A mixed column -> one column per field (';'-joined when a cell holds several), each distinct cell once."""
    distinct = split_cells(list(pd.unique(values.astype(str))))
    return {f: values.astype(str).map({v: ";".join(parts[f]) for v, parts in distinct.items()}) for f in FIELDS}
