"""Person names: half-width, simplified characters, salutations split off, a matching key."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import zhconv
from pypinyin import lazy_pinyin

from datafactory_pipelines.standardize.text import EMPTY, INVALID, REPAIRED, VALID, clean_text, has_cjk

# Longest first, so 总经理 wins over 经理 and 总.
SALUTATIONS = sorted(
    ["先生", "女士", "小姐", "太太", "经理", "总经理", "总监", "总", "老师", "博士", "教授", "主任", "老板",
     "董事长", "院长", "校长", "医生", "律师", "工", "姐", "哥"],
    key=len, reverse=True,
)
# Salutations that only count when they follow a bare surname ("张工", "李姐"), never after a full name.
_ONLY_AFTER_SURNAME = {"工", "姐", "哥"}
_BRACKETED = re.compile(r"[(\[（【]\s*([^)\]）】]*)\s*[)\]）】]")
_LATIN_TITLES = re.compile(r"^(mr|mrs|ms|miss|dr|prof)\.?\s+", re.IGNORECASE)
_NOT_NAME = re.compile(r"[0-9@#$%^&*=+<>{}|\\/]")


class NameResult(NamedTuple):
    name: str  # the name without salutation; a surname alone when partial
    salutation: str
    partial: bool  # "张总": surname plus honorific, no given name
    key: str  # exact matching key
    pinyin: str  # homophone key
    status: str
    reason: str


@lru_cache(maxsize=1 << 18)
def standardize_name(value: str) -> NameResult:
    raw = value or ""
    text = clean_text(raw)
    if not text:
        return NameResult("", "", False, "", "", EMPTY, "")
    salutation = ""
    bracket = _BRACKETED.search(text)
    if bracket:
        salutation = bracket.group(1).strip()
        text = (text[: bracket.start()] + text[bracket.end():]).strip()
    if has_cjk(text):
        text = zhconv.convert(text.replace(" ", "").replace("·", "·"), "zh-cn")
        for word in SALUTATIONS:
            if text.endswith(word) and len(text) > len(word):
                rest = text[: -len(word)]
                if word in _ONLY_AFTER_SURNAME and len(rest) != 1:
                    continue
                salutation = salutation or word
                text = rest
                break
        partial = len(text) == 1
        key = text
        pinyin = "".join(lazy_pinyin(text))
    else:
        text = _LATIN_TITLES.sub("", text)
        partial = False
        key = text.casefold()
        pinyin = key.replace(" ", "")
    if not text or _NOT_NAME.search(text):
        return NameResult("", salutation, False, "", "", INVALID, "not a person's name")
    changed = text != raw.strip() or bool(salutation)
    status = REPAIRED if changed else VALID
    return NameResult(text, salutation, partial, key, pinyin, status, "partial name" if partial else "")
