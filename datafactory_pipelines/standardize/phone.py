"""Chinese phone numbers: mobiles and landlines, with the noise Excel exports add.

Handles +86 / 0086 / (+86) / 86- prefixes, spaces, dashes, full-width digits, the ".0" and
scientific notation of numeric cells, several numbers in one cell, and landline extensions.
Mobile validity comes from libphonenumber's own CN metadata (its mobile number pattern),
applied as a vectorized RE2 expression, so a number with an impossible prefix is invalid, not
"repaired". A one-digit typo that still forms a possible number cannot be seen in one cell; the
linkage step compares a lead's numbers across records for that.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata

from datafactory_pipelines.standardize.text import (
    EMPTY,
    INVALID,
    REPAIRED,
    VALID,
    as_strings,
    contains,
    full_match,
    pick,
    sub,
)

_CN = PhoneMetadata.metadata_for_region("CN")
MOBILE_PATTERN = _CN.mobile.national_number_pattern  # e.g. 1(?:[38]\d|4[57]|...)\d{8}
# Landlines: trunk 0, an area code (010, 02x, or three digits), a 7- or 8-digit local number.
# libphonenumber's fixed-line pattern is stricter than the numbering plan (it rejects the
# 7-digit numbers many switchboards and older lists carry), so the plan is the test here.
LANDLINE_PATTERN = r"0(?:10|2\d|[3-9]\d{2})[2-9]\d{6,7}"
SEPARATORS = r"[,;/、|\n]+|\s+或\s*|\s{2,}"
EXTENSION = r"(?:转|分机|ext\.?|x|#)\s*\d{1,6}\s*$"
EXTENSION_NAMED = r"(?:转|分机|ext\.?|x|#)\s*(?P<ext>\d{1,6})\s*$"


class PhoneResult(NamedTuple):
    mobile: str  # primary valid mobile, 11 digits
    alternates: str  # other valid numbers, ';'-joined
    landline: str  # first valid landline, "0755-81234567" (with "-ext" when given)
    status: str  # valid | repaired | invalid | empty
    reason: str


def _tokens(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Split cells into candidate numbers; returns (tokens, row index of each token)."""
    parts = pc.split_pattern_regex(text, SEPARATORS)
    tokens = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    rows = pc.list_parent_indices(parts).to_numpy()
    # "13800138000 13900139000": one space between two whole numbers; "+86 138 0013 8000" is one number
    digit_count = pc.utf8_length(sub(tokens, r"\D"))
    several = pc.and_(pc.greater(digit_count, 13), contains(tokens, r"^\D*\d{7,}\D*(\s+\D*\d{7,}\D*)+$"))
    if pc.any(several).as_py():
        mask = several.to_numpy(zero_copy_only=False)
        split = pc.split_pattern_regex(pc.filter(tokens, several), r"\s+")
        extra_tokens = pc.list_flatten(split)
        extra_rows = rows[mask][pc.list_parent_indices(split).to_numpy()]
        tokens = pa.concat_arrays([pc.filter(tokens, pc.invert(several)), extra_tokens])
        rows = np.concatenate([rows[~mask], extra_rows])
    keep = pc.not_equal(tokens, "").to_numpy(zero_copy_only=False)
    return pc.filter(tokens, keep), rows[keep]


def _classify(tokens: pa.Array) -> pd.DataFrame:
    extension = pc.fill_null(pc.struct_field(pc.extract_regex(tokens, EXTENSION_NAMED), [0]), "")
    body = sub(tokens, EXTENSION)
    digits = sub(body, r"\D")
    digits = pick(pc.starts_with(digits, "0086"), pc.utf8_slice_codeunits(digits, 4), digits)
    national = pc.utf8_slice_codeunits(digits, 2)
    strip_86 = pc.and_(pc.and_(pc.starts_with(digits, "86"), pc.invert(full_match(digits, MOBILE_PATTERN))),
                       pc.or_(full_match(national, MOBILE_PATTERN), pc.starts_with(national, "0")))
    digits = pick(strip_86, national, digits)
    mobile = full_match(digits, MOBILE_PATTERN)
    landline = full_match(digits, LANDLINE_PATTERN)
    area = pick(contains(digits, r"^0[12]"), 3, 4)
    formatted = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 3), pc.utf8_slice_codeunits(digits, 3), "-")
    formatted4 = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 4), pc.utf8_slice_codeunits(digits, 4), "-")
    formatted = pick(pc.equal(area, 3), formatted, formatted4)
    formatted = pick(pc.equal(extension, ""), formatted, pc.binary_join_element_wise(formatted, extension, "-"))
    return pd.DataFrame({
        "kind": pick(mobile, "mobile", pick(landline, "landline", pick(pc.equal(digits, ""), "none", "bad"))),
        "value": pick(mobile, digits, pick(landline, formatted, "")),
        "digits": pc.utf8_length(digits),
    }).astype({"kind": object, "value": object})


def _aggregate(kinds: pd.DataFrame, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per cell: the primary mobile, the alternates, the first landline; bad-token and digit counts."""
    rows = kinds["row"].to_numpy()
    kind = kinds["kind"].to_numpy()
    value = kinds["value"].to_numpy()
    mobile = np.full(n, "", dtype=object)
    alternates = np.full(n, "", dtype=object)
    landline = np.full(n, "", dtype=object)
    per_row = np.bincount(rows, minlength=n)
    single = per_row[rows] == 1  # most cells hold one number: no grouping needed
    mobile[rows[single & (kind == "mobile")]] = value[single & (kind == "mobile")]
    landline[rows[single & (kind == "landline")]] = value[single & (kind == "landline")]

    several = kinds[~single & np.isin(kind, ["mobile", "landline"])].drop_duplicates(["row", "value"]).copy()
    if len(several):
        several["rank"] = several.groupby(["row", "kind"]).cumcount()
        primary = several[several["kind"] == "mobile"].groupby("row")["value"].first()
        first_landline = several[several["kind"] == "landline"].groupby("row")["value"].first()
        # the first mobile is primary; the first landline has its own field unless a mobile is primary
        alternate = (several["rank"] > 0) | ((several["kind"] == "landline") & several["row"].isin(primary.index))
        joined = several[alternate].sort_values(["row", "kind", "order"], ascending=[True, False, True]) \
            .groupby("row")["value"].agg(";".join)
        mobile[primary.index.to_numpy()] = primary.to_numpy()
        landline[first_landline.index.to_numpy()] = first_landline.to_numpy()
        alternates[joined.index.to_numpy()] = joined.to_numpy()
    bad_count = np.bincount(rows[kind == "bad"], minlength=n)
    digit_total = np.bincount(rows, weights=kinds["digits"].to_numpy(), minlength=n).astype(int)
    out = pd.DataFrame({"mobile": mobile, "mobile_alternates": alternates, "landline": landline})
    return out, bad_count, digit_total


def standardize_phones(values) -> pd.DataFrame:
    """Raw phone cells -> mobile, mobile_alternates, landline, mobile_status, mobile_reason."""
    raw = as_strings(values)
    n = len(raw)
    text = pc.utf8_trim_whitespace(pc.utf8_normalize(raw, form="NFKC"))
    scientific = full_match(text, r"\d(?:\.\d+)?[eE]\+?\d{1,2}")
    if pc.any(scientific).as_py():  # 1.38001380E+10 from a numeric cell shown in scientific notation
        as_int = pc.cast(pc.cast(pc.if_else(scientific, text, "0"), pa.float64()), pa.int64()).cast(pa.string())
        text = pick(scientific, as_int, text)
    text = sub(text, r"(\d)\.0+(\D|$)", r"\1\2")  # 13800138000.0 from a float cell
    tokens, rows = _tokens(text)
    kinds = _classify(tokens)
    kinds["row"] = rows
    kinds["order"] = np.arange(len(kinds))

    out, bad_count, digit_total = _aggregate(kinds, n)
    raw_list = np.asarray(raw.to_numpy(zero_copy_only=False), dtype=object)
    mobile, landline = out["mobile"].to_numpy(), out["landline"].to_numpy()
    has_number = (mobile != "") | (landline != "")
    exact = (raw_list == mobile) | ((mobile == "") & (raw_list == landline))
    blank = np.asarray(pc.equal(text, "").to_numpy(zero_copy_only=False), dtype=bool)
    status = np.where(blank, EMPTY, np.where(~has_number, INVALID, np.where(exact & (bad_count == 0), VALID, REPAIRED)))
    # reasons are built only for the few cells that need one
    reason = np.where(status == REPAIRED, "format repaired", "").astype(object)
    for i in np.flatnonzero((status == REPAIRED) & (bad_count > 0)):
        reason[i] = f"{bad_count[i]} unreadable number(s) dropped"
    for i in np.flatnonzero(status == INVALID):
        reason[i] = f"not a CN mobile or landline ({digit_total[i]} digits)" if digit_total[i] else "no digits"
    out["mobile_status"] = status.astype(object)
    out["mobile_reason"] = reason
    return out


def standardize_phone(value: str) -> PhoneResult:
    return PhoneResult(*standardize_phones([value]).iloc[0].tolist())
