"""Chinese phone numbers: mobiles and landlines, with the noise Excel exports add.

Handles +86 / 0086 / (+86) / 86- prefixes, spaces, dashes, full-width digits, the ".0" and
scientific notation of numeric cells, several numbers in one cell, and landline extensions.
Mobile validity comes from libphonenumber's own CN metadata (its mobile number pattern),
applied as a vectorized RE2 expression, so a number with an impossible prefix is invalid, not
"repaired". A one-digit typo that still forms a possible number cannot be seen in one cell; the
linkage step compares a lead's numbers across records for that.
"""

from __future__ import annotations

import re
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
# Numbers in real use that libphonenumber's CN metadata does not list (149: China Telecom). Decided
# deliberately: kept as a reachable "possible mobile", flagged in mobile_reason, never silently dropped.
POSSIBLE_MOBILE_PATTERN = r"149\d{8}"
# Nationwide service numbers (400 / 800 and seven digits): a company's line, reachable, kept as a landline
# written 400-820-8820 (survivorship types it "service number"); never mistaken for an area code.
SERVICE_NUMBER_PATTERN = r"[48]00\d{7}"
POSSIBLE_MOBILE_REASON = "possible mobile: 149 range, not in libphonenumber's CN numbering metadata"
SEPARATORS = r"[,;/、|\n]+|\s+或\s*|\s{2,}"
EXTENSION = r"(?:转|分机|ext\.?|x|#)\s*\d{1,6}\s*$"
EXTENSION_NAMED = r"(?:转|分机|ext\.?|x|#)\s*(?P<ext>\d{1,6})\s*$"


SCIENTIFIC = r"(?:^|[^\d.])\d(?:\.\d+)?[eE]\+?\d{1,2}(?:$|\D)"
_SCIENTIFIC_NUMBER = re.compile(r"(?<![\d.])(\d)(?:\.(\d+))?[eE]\+?(\d{1,2})(?!\d)")
# Excel's General format shows an 11-digit number as 1.38001E+10: five digits are gone. A mobile or a
# landline seldom ends in 0000, so four or more zeros to pad mean the digits were lost, not written.
LOST_DIGITS_FROM = 4


def _expand_one(match: re.Match) -> str:
    lead, decimals, exponent = match.group(1), match.group(2) or "", int(match.group(3))
    padding = exponent - len(decimals)
    if padding < 0 or padding >= LOST_DIGITS_FROM:
        return match.group(0)  # left as written: it reads as no number, and the reason says so
    return lead + decimals + "0" * padding


def _expand_scientific(text: pa.Array, where: pa.Array) -> pa.Array:
    """Each number in scientific notation, wherever it stands in a cell (a mobile beside a landline),
    written out in full when its digits are all there; a cell is never read as one long run of digits."""
    values = text.to_pylist()
    for i in np.flatnonzero(np.asarray(where.to_numpy(zero_copy_only=False), dtype=bool)):
        values[i] = _SCIENTIFIC_NUMBER.sub(_expand_one, values[i])
    return pa.array(values, type=pa.string())


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
    tokens, rows = pc.filter(tokens, keep), rows[keep]
    return _regroup_spaced(tokens, rows)


_EXTENSION_ONLY = re.compile(r"^(?:转|分机|ext\.?|x|#|-)\s*\d{1,6}$", re.IGNORECASE)


def _regroup_spaced(tokens: pa.Array, rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """A cell like "186-8065-5432 021-23120643-8528": numbers separated by single spaces, each written
    with spaces of its own or not. Where the whole token is no number, its space-separated pieces are
    grouped again, longest readable number first; an extension piece joins the number before it."""
    # only tokens with room for two numbers (14+ digits) and a space; read whole first, all at once
    spaced = pc.and_(contains(tokens, r"\S\s+\S"), pc.greater_equal(pc.utf8_length(sub(tokens, r"\D")), 14))
    if not pc.any(spaced).as_py():
        return tokens, rows
    where = np.flatnonzero(spaced.to_numpy(zero_copy_only=False))
    texts = pc.take(tokens, pa.array(where)).to_pylist()
    unreadable = [(i, t) for i, t, kind in zip(where, texts, _kinds(texts), strict=True) if kind in ("bad", "none")]
    if not unreadable:
        return tokens, rows
    pieces = {t: t.split() for _, t in unreadable}
    candidates = sorted({" ".join(p[a:b]) for p in pieces.values() for a in range(len(p))
                         for b in range(a + 1, len(p) + 1)})
    readable = {c for c, k in zip(candidates, _kinds(candidates), strict=True) if k in ("mobile", "landline")}
    replaced: dict[int, list[str]] = {}
    for i, text in unreadable:
        parts, groups, a = pieces[text], [], 0
        while a < len(parts):
            b = next((b for b in range(len(parts), a, -1) if " ".join(parts[a:b]) in readable), None)
            if b is None:
                if groups and _EXTENSION_ONLY.match(parts[a]):
                    groups[-1] = f"{groups[-1]} {parts[a]}"
                    a += 1
                    continue
                groups = []
                break
            groups.append(" ".join(parts[a:b]))
            a = b
        if len(groups) > 1:
            replaced[i] = groups
    if not replaced:
        return tokens, rows
    keep = np.ones(len(tokens), dtype=bool)
    keep[list(replaced)] = False
    extra_tokens = [g for i in sorted(replaced) for g in replaced[i]]
    extra_rows = np.array([rows[i] for i in sorted(replaced) for _ in replaced[i]], dtype=rows.dtype)
    return (pa.concat_arrays([pc.filter(tokens, pa.array(keep)), pa.array(extra_tokens, type=pa.string())]),
            np.concatenate([rows[keep], extra_rows]))


def _kinds(texts: list[str]) -> list[str]:
    return _classify(pa.array(texts, type=pa.string()))["kind"].tolist()


def _national(body: pa.Array) -> pa.Array:
    """Digits of a number without country code: 0086 / +86 / 86 off, and the trunk 0 put back on an
    area code written after the country code ("+86 571 8654 1234" -> 057186541234)."""
    digits = sub(body, r"\D")
    cc = pc.or_(pc.starts_with(digits, "0086"), contains(body, r"^\s*[(（]?\s*\+\s*86"))
    digits = pick(pc.starts_with(digits, "0086"), pc.utf8_slice_codeunits(digits, 4), digits)
    national = pc.utf8_slice_codeunits(digits, 2)
    either = f"(?:{MOBILE_PATTERN})|(?:{POSSIBLE_MOBILE_PATTERN})"
    national_trunk = pc.binary_join_element_wise("0", national, "")
    strip_86 = pc.and_(pc.and_(pc.starts_with(digits, "86"), pc.invert(full_match(digits, either))),
                       pc.or_(pc.or_(full_match(national, either), pc.starts_with(national, "0")),
                              full_match(national_trunk, LANDLINE_PATTERN)))
    digits = pick(strip_86, national, digits)
    cc = pc.or_(cc, strip_86)
    trunk = pc.binary_join_element_wise("0", digits, "")
    add_trunk = pc.and_(pc.and_(cc, pc.invert(pc.starts_with(digits, "0"))),
                        pc.and_(pc.invert(full_match(digits, either)), full_match(trunk, LANDLINE_PATTERN)))
    return pick(add_trunk, trunk, digits)


def _classify(tokens: pa.Array) -> pd.DataFrame:
    extension = pc.fill_null(pc.struct_field(pc.extract_regex(tokens, EXTENSION_NAMED), [0]), "")
    body = sub(tokens, EXTENSION)
    digits = _national(body)
    # "0571-86541234-8012": a landline, then a dash and an extension
    dashed = pc.extract_regex(body, r"^(?P<body>.*\d)\s*-\s*(?P<ext>\d{1,6})\s*$")
    dashed_body = pc.fill_null(pc.struct_field(dashed, [0]), "")
    dashed_digits = _national(dashed_body)
    either = f"(?:{MOBILE_PATTERN})|(?:{POSSIBLE_MOBILE_PATTERN})"
    use_dash = pc.and_(pc.and_(pc.equal(extension, ""), pc.invert(full_match(digits, f"{either}|{LANDLINE_PATTERN}"))),
                       full_match(dashed_digits, LANDLINE_PATTERN))
    extension = pick(use_dash, pc.fill_null(pc.struct_field(dashed, [1]), ""), extension)
    digits = pick(use_dash, dashed_digits, digits)
    possible = pc.and_(full_match(digits, POSSIBLE_MOBILE_PATTERN), pc.invert(full_match(digits, MOBILE_PATTERN)))
    mobile = pc.or_(full_match(digits, MOBILE_PATTERN), possible)
    service = full_match(digits, SERVICE_NUMBER_PATTERN)
    landline = pc.or_(full_match(digits, LANDLINE_PATTERN), service)
    area = pick(contains(digits, r"^0[12]"), 3, 4)
    formatted = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 3), pc.utf8_slice_codeunits(digits, 3), "-")
    formatted4 = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 4), pc.utf8_slice_codeunits(digits, 4), "-")
    formatted = pick(pc.equal(area, 3), formatted, formatted4)
    formatted = pick(service, pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, 3), pc.utf8_slice_codeunits(digits, 3, 6),
        pc.utf8_slice_codeunits(digits, 6), "-"), formatted)
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
    scientific = contains(text, SCIENTIFIC)
    if pc.any(scientific).as_py():  # 1.3800138E+10 from a numeric cell shown in scientific notation
        text = _expand_scientific(text, scientific)
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
    possible = np.flatnonzero(np.asarray(pc.fill_null(pc.match_substring_regex(
        pa.array(mobile, type=pa.string()), f"^(?:{POSSIBLE_MOBILE_PATTERN})$"), False).to_numpy(
        zero_copy_only=False), dtype=bool))
    for i in possible:  # reachable, and flagged so an operator can see why
        reason[i] = POSSIBLE_MOBILE_REASON + (f"; {reason[i]}" if reason[i] else "")
    for i in np.flatnonzero(status == INVALID):
        reason[i] = f"not a CN mobile or landline ({digit_total[i]} digits)" if digit_total[i] else "no digits"
    out["mobile_status"] = status.astype(object)
    out["mobile_reason"] = reason
    return out


def standardize_phone(value: str) -> PhoneResult:
    return PhoneResult(*standardize_phones([value]).iloc[0].tolist())
