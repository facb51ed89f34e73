"""Small text helpers shared by the field standardizers."""

from __future__ import annotations

import re
import unicodedata

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SPACES = re.compile(r"\s+")

VALID, REPAIRED, INVALID, EMPTY = "valid", "repaired", "invalid", "empty"


def half_width(text: str) -> str:
    """Full-width letters, digits and punctuation to their ASCII forms (NFKC)."""
    return unicodedata.normalize("NFKC", text)


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def clean_text(value: object) -> str:
    """Half-width, trimmed, single-spaced; '' for None/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return collapse_spaces(half_width(str(value)))
