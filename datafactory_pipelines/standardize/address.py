"""Addresses: trimmed and split into province, city and district where they can be read."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import pyarrow.compute as pc

from datafactory_pipelines.standardize.places import AUTONOMOUS_REGIONS, CITIES, MUNICIPALITIES, PROVINCES
from datafactory_pipelines.standardize.text import as_strings, normalize, pick, sub

ADDRESS_PATTERN = (
    "^(?P<province>" + "|".join(sorted(PROVINCES, key=len, reverse=True)) + ")?"
    "(?:省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|特别行政区)?"
    "(?P<city>" + "|".join(sorted(CITIES, key=len, reverse=True)) + r"|[^省市区县\d]{2,6}?(?:自治州|州|盟|地区))?市?"
    r"(?P<district>[^省市区县路街号\d]{1,8}?(?:新区|区|县|旗|市))?"
)


class AddressResult(NamedTuple):
    address: str
    province: str
    city: str
    district: str


def standardize_addresses(values) -> pd.DataFrame:
    text = normalize(as_strings(values))
    parts = pc.extract_regex(sub(text, r"\s", ""), ADDRESS_PATTERN)
    province = pc.fill_null(pc.struct_field(parts, [0]), "")
    city = pc.fill_null(pc.struct_field(parts, [1]), "")
    district = pc.fill_null(pc.struct_field(parts, [2]), "")
    municipality = pc.is_in(province, value_set=pc.cast(list(MUNICIPALITIES), "string"))
    # 北京市朝阳区: the municipality is the city too
    city = pick(pc.and_(municipality, pc.equal(city, "")), province, city)
    autonomous = pc.is_in(province, value_set=pc.cast(list(AUTONOMOUS_REGIONS), "string"))
    province_suffix = pick(municipality, "市", pick(autonomous, "", "省"))
    province = pick(pc.equal(province, ""), "", pc.binary_join_element_wise(province, province_suffix, ""))
    city = pick(pc.equal(city, ""), "", pc.binary_join_element_wise(sub(city, "市$", ""), "市", ""))
    return pd.DataFrame({
        "address": text.to_numpy(zero_copy_only=False), "province": province.to_numpy(zero_copy_only=False),
        "city": city.to_numpy(zero_copy_only=False), "district": district.to_numpy(zero_copy_only=False),
    }).astype(object)


def standardize_address(value: str) -> AddressResult:
    return AddressResult(*standardize_addresses([value]).iloc[0].tolist())
