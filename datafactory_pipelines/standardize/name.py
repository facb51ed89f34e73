"""Person names: half-width, simplified characters, salutations split off, a matching key."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines.standardize.chinese import pinyin_key, to_simplified
from datafactory_pipelines.standardize.text import (
    CJK,
    INVALID,
    REPAIRED,
    VALID,
    as_strings,
    contains,
    normalize,
    pick,
    sub,
)

# Longest first, so 总经理 wins over 经理 and 总.
SALUTATIONS = sorted(
    ["先生", "女士", "小姐", "太太", "经理", "总经理", "总监", "总", "老师", "博士", "教授", "主任", "老板",
     "董事长", "院长", "校长", "医生", "律师"],
    key=len, reverse=True,
)
# Only after a bare surname ("张工", "李姐"), never after a full name.
SURNAME_ONLY_SALUTATIONS = ["工", "姐", "哥"]
BRACKETED = r"[(\[（【]\s*(?P<note>[^)\]）】]*?)\s*[)\]）】]"
LATIN_TITLES = r"(?i)^(?:mr|mrs|ms|miss|dr|prof)\.?\s+"
NOT_A_NAME = r"[0-9@#$%^&*=+<>{}|\\/]"


class NameResult(NamedTuple):
    name: str  # the name without salutation; a surname alone when partial
    salutation: str
    partial: bool  # "张总": surname plus honorific, no given name
    key: str  # exact matching key
    pinyin: str  # homophone key
    status: str
    reason: str


def _field(struct: pa.Array, i: int) -> pa.Array:
    return pc.fill_null(pc.struct_field(struct, [i]), "")


def standardize_names(values) -> pd.DataFrame:
    """Raw name cells -> name, salutation, name_partial, name_key, name_pinyin, name_status, name_reason."""
    raw = as_strings(values)
    text = normalize(raw)
    salutation = _field(pc.extract_regex(text, BRACKETED), 0)
    text = pc.utf8_trim_whitespace(sub(text, BRACKETED.replace("?P<note>", "?:"), ""))
    is_cjk = contains(text, CJK)
    cjk = to_simplified(pc.utf8_normalize(sub(text, r"[\s·•]", ""), form="NFKC"))  # spaces gone: compose again
    suffix = pc.extract_regex(cjk, f"^(?P<n>.+?)(?P<s>(?:{'|'.join(SALUTATIONS)})+)$")
    surname_only = pc.extract_regex(cjk, f"^(?P<n>{CJK})(?P<s>{'|'.join(SURNAME_ONLY_SALUTATIONS)})$")
    has_suffix = pc.is_valid(suffix)
    has_surname_only = pc.is_valid(surname_only)
    cjk_name = pick(has_suffix, _field(suffix, 0), pick(has_surname_only, _field(surname_only, 0), cjk))
    cjk_salutation = pick(has_suffix, _field(suffix, 1), pick(has_surname_only, _field(surname_only, 1), ""))
    latin = sub(text, LATIN_TITLES, "")

    name = pick(is_cjk, cjk_name, latin)
    salutation = pick(pc.equal(salutation, ""), pick(is_cjk, cjk_salutation, ""), salutation)
    partial = pc.and_(is_cjk, pc.equal(pc.utf8_length(name), 1))
    invalid = pc.or_(contains(name, NOT_A_NAME), pc.and_(pc.equal(name, ""), pc.not_equal(text, "")))
    name = pick(invalid, "", name)
    key = pc.utf8_lower(name)
    pinyin = pick(is_cjk, pinyin_key(name), sub(key, r"\s", ""))
    raw_trimmed = pc.utf8_trim_whitespace(raw)
    status = pick(pc.and_(pc.equal(raw_trimmed, name), pc.equal(salutation, "")), VALID, REPAIRED)
    status = pick(invalid, INVALID, pick(pc.equal(raw_trimmed, ""), "empty", status))
    status_np = np.asarray(status.to_numpy(zero_copy_only=False), dtype=object)
    partial_np = partial.to_numpy(zero_copy_only=False).astype(bool)
    reason = np.where(status_np == INVALID, "not a person's name", np.where(partial_np, "partial name", ""))
    return pd.DataFrame({
        "name": name.to_numpy(zero_copy_only=False),
        "salutation": salutation.to_numpy(zero_copy_only=False),
        "name_partial": partial_np,
        "name_key": key.to_numpy(zero_copy_only=False),
        "name_pinyin": pinyin.to_numpy(zero_copy_only=False),
        "name_status": status_np,
        "name_reason": reason.astype(object),
    }).astype({c: object for c in ("name", "salutation", "name_key", "name_pinyin")})


def standardize_name(value: str) -> NameResult:
    row = standardize_names([value]).iloc[0]
    return NameResult(row["name"], row["salutation"], bool(row["name_partial"]), row["name_key"],
                      row["name_pinyin"], row["name_status"], row["name_reason"])
