"""Chinese phone numbers: mobiles and landlines, with the noise Excel exports add.

Handles +86 / 0086 / (+86) / 86- prefixes, spaces, dashes, full-width digits, the ".0" and
scientific notation of numeric cells, several numbers in one cell, and landline extensions.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from datafactory_pipelines.standardize.text import EMPTY, INVALID, REPAIRED, VALID, half_width

MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"0[1-9]\d{8,10}")
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?[eE]\+?\d{1,2}")
_EXCEL_FLOAT = re.compile(r"(?<=\d)\.0+(?=$|\D)")
_SPLIT = re.compile(r"[,;/、|\n]+|\s+或\s*|\s{2,}")
_EXTENSION = re.compile(r"(?:转|分机|ext\.?|x|#)\s*(\d{1,6})\s*$", re.IGNORECASE)
_NOT_DIGIT = re.compile(r"\D")


class PhoneResult(NamedTuple):
    mobile: str  # primary valid mobile, 11 digits
    alternates: str  # other valid numbers, ';'-joined
    landline: str  # first valid landline, "0755-81234567" (with "-ext" when given)
    status: str  # valid | repaired | invalid | empty
    reason: str


def _national_digits(token: str) -> tuple[str, str]:
    """Digits of one number without the country code, and its extension."""
    ext = ""
    m = _EXTENSION.search(token)
    if m:
        ext, token = m.group(1), token[: m.start()]
    digits = _NOT_DIGIT.sub("", token)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) in (13, 12, 11) and not MOBILE.fullmatch(digits):
        digits = digits[2:]
    return digits, ext


def _format_landline(digits: str, ext: str) -> str:
    area = 3 if digits[1] in "12" else 4  # 010 and 02x have three-digit area codes
    text = f"{digits[:area]}-{digits[area:]}"
    return f"{text}-{ext}" if ext else text


def _tokens(text: str) -> list[str]:
    parts = [p.strip() for p in _SPLIT.split(text) if p and p.strip()]
    tokens: list[str] = []
    for part in parts:
        compact = _NOT_DIGIT.sub("", part)
        # "138 0013 8000" and "+86 138 0013 8000" are one number; "13800138000 13900139000" are two
        if " " in part and len(compact) > 13 and all(len(_NOT_DIGIT.sub("", w)) >= 7 for w in part.split()):
            tokens.extend(part.split())
        else:
            tokens.append(part)
    return tokens


@lru_cache(maxsize=1 << 18)
def standardize_phone(value: str) -> PhoneResult:
    raw = value or ""
    text = half_width(raw).strip()
    if not text:
        return PhoneResult("", "", "", EMPTY, "")
    if _SCIENTIFIC.fullmatch(text):
        text = str(int(float(text)))
    text = _EXCEL_FLOAT.sub("", text)
    mobiles: list[str] = []
    landlines: list[str] = []
    bad = 0
    for token in _tokens(text):
        digits, ext = _national_digits(token)
        if MOBILE.fullmatch(digits):
            if digits not in mobiles:
                mobiles.append(digits)
        elif LANDLINE.fullmatch(digits):
            formatted = _format_landline(digits, ext)
            if formatted not in landlines:
                landlines.append(formatted)
        elif digits:
            bad += 1
    if not mobiles and not landlines:
        digits = _NOT_DIGIT.sub("", text)
        reason = f"not a CN mobile or landline ({len(digits)} digits)" if digits else "no digits"
        return PhoneResult("", "", "", INVALID, reason)
    primary = mobiles[0] if mobiles else ""
    alternates = ";".join(mobiles[1:] + (landlines[1:] if not primary else landlines))
    landline = landlines[0] if landlines else ""
    clean = raw in (primary, landline)
    reason = f"{bad} unreadable number(s) dropped" if bad else ("" if clean else "format repaired")
    return PhoneResult(primary, alternates, landline, VALID if clean and not bad else REPAIRED, reason)
