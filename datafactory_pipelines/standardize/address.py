"""Addresses: trimmed and split into province, city and district where they can be read."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines.standardize.places import AUTONOMOUS_REGIONS, CITIES, MUNICIPALITIES, PROVINCES
from datafactory_pipelines.standardize.text import as_strings, normalize, pick, sub

# (name, leading body, tail): each step matches at the start of what the previous one left
PROVINCE = ("province", "|".join(sorted(PROVINCES, key=len, reverse=True)),
            "(?:省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)?")
CITY = ("city", r"[^省市区县路街号\d]{2,6}?(?:市|自治州|州|盟|地区)", "")
KNOWN_CITY = ("city", "|".join(sorted(CITIES, key=len, reverse=True)), "市?")
DISTRICT = ("district", r"[^省市区县路街号\d]{1,8}?(?:新区|区|县|旗|市)", "")


HEAD = r"^(?P<head>[^\d路街号巷弄]{0,24})"  # the street starts where these do


def _take(text: pa.Array, part: tuple[str, str, str]) -> tuple[pa.Array, pa.Array]:
    """(the leading part, or ''; the text after it)."""
    name, body, tail = part
    found = pc.fill_null(pc.struct_field(pc.extract_regex(text, f"^(?P<{name}>{body}){tail}"), [0]), "")
    return found, sub(text, f"^(?:{body}){tail}", "")


class AddressResult(NamedTuple):
    address: str
    province: str
    city: str
    district: str


def standardize_addresses(values) -> pd.DataFrame:
    text = normalize(as_strings(values))
    # province, city and district lead the address and end before the street: parse each distinct
    # head once (a few thousand, however many addresses)
    head = pc.fill_null(pc.struct_field(pc.extract_regex(sub(text, r"\s", ""), HEAD), [0]), "")
    heads = head.dictionary_encode()
    province, city, district = (pc.take(part, heads.indices) for part in _admin_parts(heads.dictionary))
    return pd.DataFrame({
        "address": text.to_numpy(zero_copy_only=False), "province": province.to_numpy(zero_copy_only=False),
        "city": city.to_numpy(zero_copy_only=False), "district": district.to_numpy(zero_copy_only=False),
    }).astype(object)


def _admin_parts(rest: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Province, city and district of address heads; each step is a cheap anchored match."""
    province, rest = _take(rest, PROVINCE)
    city, after_city = _take(rest, CITY)
    unnamed = pc.equal(city, "")
    if pc.any(unnamed).as_py():  # "广州天河区…": a known city without its 市
        known, after_known = _take(rest, KNOWN_CITY)
        city = pick(unnamed, known, city)
        after_city = pick(unnamed, after_known, after_city)
    district, _ = _take(after_city, DISTRICT)
    municipality = pc.is_in(province, value_set=pc.cast(list(MUNICIPALITIES), "string"))
    # 北京市朝阳区: the municipality is the city too
    city = pick(pc.and_(municipality, pc.equal(city, "")), province, city)
    autonomous = pc.is_in(province, value_set=pc.cast(list(AUTONOMOUS_REGIONS), "string"))
    province_suffix = pick(municipality, "市", pick(autonomous, "", "省"))
    province = pick(pc.equal(province, ""), "", pc.binary_join_element_wise(province, province_suffix, ""))
    city = pick(pc.equal(city, ""), "", pc.binary_join_element_wise(sub(city, "市$", ""), "市", ""))
    return province, city, district


def standardize_address(value: str) -> AddressResult:
    return AddressResult(*standardize_addresses([value]).iloc[0].tolist())
