"""Vectorized text helpers (Arrow compute, C++ and RE2) shared by the field standardizers.

Every standardizer takes a column of raw strings and returns columns; the per-value functions
(``standardize_phone("...")`` etc.) are thin wrappers over the same code, so there is one
implementation of each rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

VALID, REPAIRED, INVALID, EMPTY = "valid", "repaired", "invalid", "empty"
CJK = r"[\x{3400}-\x{9fff}\x{f900}-\x{faff}\x{20000}-\x{3134f}]"


def as_strings(values: Iterable[object] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Any column of cells -> a non-null Arrow string array ('' for None/NaN)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or other objects among the strings
            values = pa.array([clean_cell(v) for v in values], type=pa.string())
    if values.type != pa.string():
        values = values.cast(pa.string())
    return drop_invisible(pc.fill_null(values, ""))


# Control characters (Cc: BEL, ESC, …) and format characters (Cf: the bidi marks and overrides such as
# U+202E, zero-width spaces, BOM) have no place in a standardized value: they hide or reorder what a person
# sees. Standardized values drop them (line breaks and tabs become spaces); raw values keep them.
_LINE_BREAKS = r"[\t\n\r\v\f\x{85}\x{2028}\x{2029}]"
_INVISIBLE = r"[\p{Cc}\p{Cf}]"


def drop_invisible(values: pa.Array) -> pa.Array:
    """Every standardizer reads its input through here (as_strings): control and bidi characters dropped."""
    if not pc.any(pc.match_substring_regex(values, _INVISIBLE)).as_py():  # the common case: nothing to do
        return values
    return pc.replace_substring_regex(pc.replace_substring_regex(values, _LINE_BREAKS, " "), _INVISIBLE, "")


def clean_cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def normalize(values: pa.Array) -> pa.Array:
    """Half-width (NFKC), trimmed, inner whitespace collapsed to one space."""
    text = pc.utf8_normalize(values, form="NFKC")
    text = pc.replace_substring_regex(text, r"\s+", " ")
    return pc.utf8_trim_whitespace(text)


def full_match(values: pa.Array, pattern: str) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(values, f"^(?:{pattern})$"), False)


def contains(values: pa.Array, pattern: str) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(values, pattern), False)


def sub(values: pa.Array, pattern: str, replacement: str = "") -> pa.Array:
    return pc.replace_substring_regex(values, pattern, replacement)


def pick(condition: pa.Array, when_true: object, when_false: object) -> pa.Array:
    return pc.if_else(condition, when_true, when_false)


def status_of(raw: pa.Array, value: pa.Array, invalid: pa.Array) -> pa.Array:
    """empty when nothing was given; invalid; valid when the value is exactly what was typed; else repaired."""
    status = pick(pc.equal(raw, value), VALID, REPAIRED)
    status = pick(invalid, INVALID, status)
    return pick(pc.equal(pc.utf8_trim_whitespace(raw), ""), EMPTY, status)


def translate_unique(values: pa.Array, table: dict[int, str]) -> pa.Array:
    """str.translate (C speed) applied once per distinct value."""
    encoded = values.dictionary_encode()
    dictionary = [s.translate(table) for s in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(dictionary, type=pa.string()), encoded.indices)


def map_unique(values: pa.Array, fn) -> pa.Array:
    """fn applied once per distinct value, for low-cardinality fields (titles, dates)."""
    encoded = values.dictionary_encode()
    dictionary = [fn(s) for s in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(dictionary, type=pa.string()), encoded.indices)


def half_width(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def clean_text(value: object) -> str:
    """Half-width, trimmed, single-spaced, control and bidi characters dropped; '' for None/NaN (single values)."""
    text = "".join(" " if ch in "\t\n\r\v\f\x85\u2028\u2029" else ch for ch in clean_cell(value)
                   if ch in "\t\n\r\v\f\x85\u2028\u2029" or unicodedata.category(ch) not in ("Cc", "Cf"))
    return re.sub(r"\s+", " ", half_width(text)).strip()
