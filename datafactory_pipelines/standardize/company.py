"""Company names: one spelling for brackets and legal suffixes, plus a core-name key for matching."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import zhconv

from datafactory_pipelines.standardize.places import CITIES, PROVINCES
from datafactory_pipelines.standardize.text import clean_text, has_cjk

# Variants of the same legal form, mapped to the usual spelling.
SUFFIX_VARIANTS = [("有限责任公司", "有限公司"), ("股份有限责任公司", "股份有限公司")]
# Removed for the key, longest first.
LEGAL_SUFFIXES = sorted(
    ["股份有限公司", "集团有限公司", "集团股份有限公司", "有限公司", "集团公司", "集团", "公司", "分公司",
     "有限合伙", "工作室", "co.,ltd", "co.ltd", "co.,ltd.", "ltd", "ltd.", "inc", "inc.", "llc", "limited",
     "corporation", "corp", "corp.", "group", "company"],
    key=len, reverse=True,
)
_PLACE_PREFIX = re.compile(
    "^(?:(?:" + "|".join(sorted(PROVINCES, key=len, reverse=True)) + r")(?:省|市|自治区)?)?"
    "(?:(?:" + "|".join(sorted(CITIES, key=len, reverse=True)) + r")市?)?"
)
_BRACKET_NOTE = re.compile(r"\((?:[^()]*)\)")


class CompanyResult(NamedTuple):
    company: str
    key: str


@lru_cache(maxsize=1 << 18)
def standardize_company(value: str) -> CompanyResult:
    text = clean_text(value)
    if not text:
        return CompanyResult("", "")
    if has_cjk(text):
        text = zhconv.convert(text.replace(" ", ""), "zh-cn")
        for variant, usual in SUFFIX_VARIANTS:
            if text.endswith(variant):
                text = text[: -len(variant)] + usual
        core = _BRACKET_NOTE.sub("", text)
        stripped = _PLACE_PREFIX.sub("", core)
        core = stripped if len(stripped) >= 2 else core
    else:
        core = re.sub(r"[^\w ]", "", text.casefold()).strip()
    changed = True
    while changed and core:
        changed = False
        for suffix in LEGAL_SUFFIXES:
            if core.endswith(suffix) and len(core) > len(suffix) + 1:
                core = core[: -len(suffix)].strip(" ,.")
                changed = True
                break
    return CompanyResult(text, core.replace(" ", ""))
