"""Character tables for Chinese text, taken from zhconv (traditional -> simplified) and pypinyin."""

from __future__ import annotations

from functools import cache

import pyarrow as pa
import pyarrow.compute as pc
from pypinyin import lazy_pinyin
from zhconv import zhconv

from datafactory_pipelines.standardize.text import translate_unique

_PINYIN: dict[int, str] = {}


@cache
def simplified_table() -> dict[int, str]:
    """One-character traditional -> simplified mappings (names and company names need no phrases)."""
    zhconv.loaddict()
    table = {}
    for source in ("zh2Hans", "zh2CN"):
        table.update({ord(k): v for k, v in zhconv.zhcdicts[source].items() if len(k) == 1 and len(v) == 1})
    return table


def to_simplified(values: pa.Array) -> pa.Array:
    return translate_unique(values, simplified_table())


def pinyin_key(values: pa.Array) -> pa.Array:
    """Toneless pinyin of each character, concatenated: a homophone key (张伟 = 章伟 = zhangwei)."""
    encoded = values.dictionary_encode()
    names = encoded.dictionary.to_pylist()
    missing = {ord(ch) for name in names for ch in name} - _PINYIN.keys()
    for code in missing:
        ch = chr(code)
        _PINYIN[code] = lazy_pinyin(ch)[0] if "\u3400" <= ch <= "\u9fff" else ch.lower()
    return pc.take(pa.array([n.translate(_PINYIN).replace(" ", "") for n in names], type=pa.string()),
                   encoded.indices)
