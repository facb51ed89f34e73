"""Company names: one spelling for brackets and legal suffixes, plus a core-name key for matching."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import pyarrow.compute as pc

from datafactory_pipelines.standardize.chinese import to_simplified_words
from datafactory_pipelines.standardize.company_entity import company_entities
from datafactory_pipelines.standardize.places import CITIES, PROVINCES
from datafactory_pipelines.standardize.text import CJK, as_strings, contains, normalize, pick, sub

# Variants of the same legal form, mapped to the usual spelling.
SUFFIX_VARIANTS = {"股份有限责任公司": "股份有限公司", "有限责任公司": "有限公司"}
# Removed for the key (twice, for "集团股份有限公司"), longest first.
LEGAL_SUFFIXES = sorted(
    ["股份有限公司", "集团有限公司", "集团股份有限公司", "有限公司", "集团公司", "集团", "公司", "分公司",
     "有限合伙", "工作室"], key=len, reverse=True,
)
LATIN_SUFFIXES = r"(?:\s*,?\s*(?:co\.?,?\s*ltd\.?|ltd\.?|limited|inc\.?|llc|corp\.?|corporation|group|company|co\.?))+$"
PLACE_PREFIX = (
    "^(?:(?:" + "|".join(sorted(PROVINCES, key=len, reverse=True)) + ")(?:省|市|自治区)?)?"
    "(?:(?:" + "|".join(sorted(CITIES, key=len, reverse=True)) + ")市?)?"
)


class CompanyResult(NamedTuple):
    company: str
    key: str
    entity: str = ""
    form: str = ""


def standardize_companies(values) -> pd.DataFrame:
    """Raw company cells -> company (one spelling), company_key (core name without place and legal form),
    company_entity and company_form (the company a spelling names and how completely: see company_entity)."""
    text = normalize(as_strings(values))
    is_cjk = contains(text, CJK)
    cjk = to_simplified_words(pc.utf8_normalize(sub(text, r"\s", ""), form="NFKC"))  # spaces gone: compose again
    for variant, usual in SUFFIX_VARIANTS.items():
        cjk = sub(cjk, f"{variant}$", usual)
    company = pick(is_cjk, cjk, text)

    core = sub(cjk, r"\([^()]*\)", "")  # "星海科技(深圳)有限公司"
    legal = "(?:" + "|".join(LEGAL_SUFFIXES) + ")$"
    for _ in range(2):
        core = pick(contains(core, f"^.{{2,}}{legal}"), sub(core, legal, ""), core)
    without_place = sub(core, PLACE_PREFIX, "")
    core = pick(pc.greater_equal(pc.utf8_length(without_place), 2), without_place, core)
    # the Latin key only for the names that take it (most are Chinese, and its expression is the costliest)
    is_latin = pc.invert(is_cjk)
    latin = sub(sub(pc.utf8_lower(pc.filter(text, is_latin)), LATIN_SUFFIXES, ""), r"[^\w]", "")
    key = pc.replace_with_mask(core, is_latin, latin)
    # one display form: Chinese legal names write their brackets full-width, 星海科技（深圳）有限公司
    company = pick(is_cjk, sub(sub(company, r"\(", "（"), r"\)", "）"), company)
    entity, form = company_entities(company)  # which company, how completely named: for the golden record
    return pd.DataFrame({"company": company.to_numpy(zero_copy_only=False),
                         "company_key": key.to_numpy(zero_copy_only=False),
                         "company_entity": entity.to_numpy(zero_copy_only=False),
                         "company_form": form.to_numpy(zero_copy_only=False)}).astype(object)


def standardize_company(value: str) -> CompanyResult:
    return CompanyResult(*standardize_companies([value]).iloc[0].tolist())
