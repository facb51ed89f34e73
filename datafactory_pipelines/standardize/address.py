"""Addresses: trimmed and split into province, city and district where they can be read."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from datafactory_pipelines.standardize.places import CITIES, MUNICIPALITIES, PROVINCES
from datafactory_pipelines.standardize.text import clean_text

_PROVINCE = re.compile(
    "^(" + "|".join(sorted(PROVINCES, key=len, reverse=True)) + r")(省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)?"
)
_CITY = re.compile("^(" + "|".join(sorted(CITIES, key=len, reverse=True)) + r")市?|^([^省市区县]{2,6}?(?:市|自治州|州|盟|地区))")
_DISTRICT = re.compile(r"^([^省市区县路街号]{1,8}?(?:新区|区|县|旗|市))")


class AddressResult(NamedTuple):
    address: str
    province: str
    city: str
    district: str


@lru_cache(maxsize=1 << 17)
def standardize_address(value: str) -> AddressResult:
    text = clean_text(value)
    if not text:
        return AddressResult("", "", "", "")
    rest = text.replace(" ", "")
    province = city = district = ""
    m = _PROVINCE.match(rest)
    if m:
        province = m.group(1)
        rest = rest[m.end():]
        if province in MUNICIPALITIES:
            city = province
            rest = re.sub("^" + province + "市?", "", rest)
    if not city:
        m = _CITY.match(rest)
        if m:
            city = (m.group(1) or m.group(2) or "").removesuffix("市")
            rest = rest[m.end():]
    m = _DISTRICT.match(rest)
    if m:
        district = m.group(1)
    if province and province not in MUNICIPALITIES:
        province += "省" if province not in {"内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门"} else ""
    return AddressResult(text, province, f"{city}市" if city else "", district)
