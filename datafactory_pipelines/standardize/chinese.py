"""Character tables for Chinese text, taken from zhconv (traditional -> simplified) and pypinyin.

Both tables are read from the JSON files those packages ship, without importing the packages: importing
pypinyin loads its phrase dictionary (~0.15 s) and zhconv imports pkg_resources (~0.06 s), and a one-character
table needs neither. `tests/test_standardize.py` checks the pinyin against `pypinyin.lazy_pinyin` for every
character of the CJK blocks we convert.
"""

from __future__ import annotations

import importlib.util
import json
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines.standardize.text import translate_unique

_PINYIN: dict[int, str] = {}


def _package_file(package: str, name: str) -> Path:
    """A data file of an installed package, found without running the package's __init__."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed (datafactory needs its {name})")
    return Path(next(iter(spec.submodule_search_locations))) / name


@cache
def simplified_table() -> dict[int, str]:
    """One-character traditional -> simplified mappings (names and company names need no phrases)."""
    dicts = json.loads(_package_file("zhconv", "zhcdict.json").read_text("utf-8"))
    table = {}
    for source in ("zh2Hans", "zh2CN"):
        table.update({ord(k): v for k, v in dicts[source].items() if len(k) == 1 and len(v) == 1})
    return table


@cache
def _pinyin_readings() -> dict[str, str]:
    """Code point (as text) -> its readings with tone marks, commonest first ("zhāng,zhàng")."""
    return json.loads(_package_file("pypinyin", "pinyin_dict.json").read_text("utf-8"))


def toneless_pinyin(ch: str) -> str:
    """The commonest reading of one character without tone, ü as v: `pypinyin.lazy_pinyin(ch)[0]`
    (a character without a reading stays itself)."""
    readings = _pinyin_readings().get(str(ord(ch)))
    if readings is None:
        return ch
    marked = unicodedata.normalize("NFD", readings.split(",", 1)[0]).replace("u\u0308", "v")
    return "".join(c for c in marked if not unicodedata.combining(c))


def to_simplified(values: pa.Array) -> pa.Array:
    return translate_unique(values, simplified_table())


def pinyin_key(values: pa.Array) -> pa.Array:
    """Toneless pinyin of each character, concatenated: a homophone key (张伟 = 章伟 = zhangwei)."""
    encoded = values.dictionary_encode()
    names = encoded.dictionary.to_pylist()
    missing = {ord(ch) for name in names for ch in name} - _PINYIN.keys()
    for code in missing:
        ch = chr(code)
        _PINYIN[code] = toneless_pinyin(ch) if "\u3400" <= ch <= "\u9fff" else ch.lower()
    return pc.take(pa.array([n.translate(_PINYIN).replace(" ", "") for n in names], type=pa.string()),
                   encoded.indices)


def to_simplified_words(values: pa.Array) -> pa.Array:
    """Simplified characters, and for the values written in Traditional characters the mainland words
    too (軟體 -> 软件, 資訊 -> 信息): zhconv's phrase table, run only on the values that need it."""
    simple = to_simplified(values)
    changed = pc.fill_null(pc.not_equal(simple, values), False)
    if not pc.any(changed).as_py():
        return simple
    import zhconv  # its phrase dictionary loads on first use: only files in Traditional characters pay for it

    out = simple.to_pylist()
    originals = values.to_pylist()
    for i in np.flatnonzero(np.asarray(changed.to_numpy(zero_copy_only=False), dtype=bool)):
        out[i] = zhconv.convert(originals[i], "zh-cn")
    return pa.array(out, type=pa.string())
