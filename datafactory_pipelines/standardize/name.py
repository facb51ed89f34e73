"""Person names: half-width, simplified characters, salutations split off, a matching key."""

from __future__ import annotations

import re
from functools import cache
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
# What people call each other instead of a full name: 小王 / 老李 (a surname after 小 or 老), 阿强 (a
# given-name character after 阿). Like 王总 they name the person partly, never another person.
NICKNAME = f"^(?P<p>[小老阿])(?P<c>{CJK})$"
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
    nickname = pc.and_(is_cjk, contains(name, NICKNAME))
    # "Mr. Zhang": a title before one word is a surname with a salutation, as 张先生 is
    titled_surname = pc.and_(pc.invert(is_cjk), pc.and_(contains(text, LATIN_TITLES),
                                                         contains(latin, r"^[A-Za-z]+$")))
    partial = pc.or_(pc.or_(pc.and_(is_cjk, pc.equal(pc.utf8_length(name), 1)), nickname), titled_surname)
    invalid = pc.or_(contains(name, NOT_A_NAME), pc.and_(pc.equal(name, ""), pc.not_equal(text, "")))
    name = pick(invalid, "", name)
    key = pc.utf8_lower(name)
    # the rule follows the name itself, not the cell: "a-总" keeps "a-" once 总 is taken as a salutation,
    # and must get the pinyin "a-" gets alone (standardizing twice changes nothing)
    pinyin = pick(contains(name, CJK), pinyin_key(name), sub(key, r"[\s,.'’-]", ""))
    raw_trimmed = pc.utf8_trim_whitespace(raw)
    status = pick(pc.and_(pc.equal(raw_trimmed, name), pc.equal(salutation, "")), VALID, REPAIRED)
    status = pick(invalid, INVALID, pick(pc.equal(raw_trimmed, ""), "empty", status))
    roman, surname = romanized_keys(name, is_cjk, partial)
    _nickname_surnames(name, nickname, titled_surname, surname)
    status_np = np.asarray(status.to_numpy(zero_copy_only=False), dtype=object)
    partial_np = partial.to_numpy(zero_copy_only=False).astype(bool)
    reason = np.where(status_np == INVALID, "not a person's name", np.where(partial_np, "partial name", ""))
    return pd.DataFrame({
        "name": name.to_numpy(zero_copy_only=False),
        "salutation": salutation.to_numpy(zero_copy_only=False),
        "name_partial": partial_np,
        "name_key": key.to_numpy(zero_copy_only=False),
        "name_pinyin": pinyin.to_numpy(zero_copy_only=False),
        "name_roman": roman,
        "name_surname": surname,
        "name_status": status_np,
        "name_reason": reason.astype(object),
    }).astype({c: object for c in ("name", "salutation", "name_key", "name_pinyin", "name_roman", "name_surname")})


def _nickname_surnames(name: pa.Array, nickname: pa.Array, titled_surname: pa.Array, surname: np.ndarray) -> None:
    """The surname a nickname or a titled surname carries, in place: 小王 / 老王 -> wang, 阿强 -> '' (强 is a
    given name), Mr. Zhang -> zhang (its pinyin as _latin_keys would give it), so the name comparison's
    partial level can match them against the full name."""
    names = name.to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(nickname.to_numpy(zero_copy_only=False).astype(bool)):
        surname[i] = "" if names[i][0] == "阿" else pinyin_key(pa.array([names[i][1]])).to_pylist()[0]
    for i in np.flatnonzero(titled_surname.to_numpy(zero_copy_only=False).astype(bool)):
        word = names[i].lower()
        surname[i] = word if _PINYIN_WORD.match(word) else ""


COMPOUND_SURNAMES = ["欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "夏侯", "尉迟", "公孙", "长孙",
                     "宇文", "司徒", "端木", "独孤", "南宫", "西门", "轩辕", "呼延"]
# Commonest surnames first: when both words of "Wei Zhang" could be a surname, the commoner one is.
COMMON_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜叶程苏魏吕"
                   "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴"
                   "莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅"
                   "童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连")
_PINYIN_WORD = re.compile(
    r"^(?:(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ang|eng|ing|ong|uan|ian|iao|uai|ai|ei|ao|ou|an|"
    r"en|in|un|ia|ie|iu|ua|uo|ue|ui|er|a|o|e|i|u|v))+$")


@cache
def _surname_rank() -> dict[str, int]:
    """Pinyin of a surname -> rank of its commonest character (0 = commonest)."""
    # imported here: only romanized names need it, and compound surnames take phrase readings (尉迟 yuchi)
    from pypinyin import lazy_pinyin

    rank: dict[str, int] = {}
    for i, ch in enumerate(COMMON_SURNAMES):
        rank.setdefault(lazy_pinyin(ch)[0], i)
    for i, compound in enumerate(COMPOUND_SURNAMES):
        rank.setdefault("".join(lazy_pinyin(compound)), len(COMMON_SURNAMES) + i)
    return rank


def romanized_keys(name: pa.Array, is_cjk: pa.Array, partial: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(name_roman, name_surname) per name.

    name_roman: surname and given name in pinyin, the two sorted, so 张晓明, "Zhang Xiaoming",
    "Xiao-Ming Zhang", "ZHANG, Xiaoming" all read "xiaoming zhang"; '' when it cannot be told.
    name_surname: the surname in pinyin (王总 -> wang), which every script of a name shares.
    """
    compound = contains(name, "^(?:" + "|".join(COMPOUND_SURNAMES) + ")")
    sur_chars = pick(compound, pc.utf8_slice_codeunits(name, 0, 2), pc.utf8_slice_codeunits(name, 0, 1))
    given_chars = pick(compound, pc.utf8_slice_codeunits(name, 2), pc.utf8_slice_codeunits(name, 1))
    sur = pinyin_key(sur_chars)
    given = pinyin_key(given_chars)
    ordered = pick(pc.less_equal(sur, given), pc.binary_join_element_wise(sur, given, " "),
                   pc.binary_join_element_wise(given, sur, " "))
    cjk_roman = pick(pc.or_(partial, pc.equal(given, "")), "", ordered)
    roman = np.asarray(pick(is_cjk, cjk_roman, "").to_numpy(zero_copy_only=False), dtype=object)
    surname = np.asarray(pick(is_cjk, sur, "").to_numpy(zero_copy_only=False), dtype=object)
    latin = np.flatnonzero(~np.asarray(is_cjk.to_numpy(zero_copy_only=False), dtype=bool))
    names = name.to_numpy(zero_copy_only=False)
    for i in latin:
        if names[i]:
            roman[i], surname[i] = _latin_keys(names[i])
    return roman, surname


def _latin_keys(text: str) -> tuple[str, str]:
    """'Zhang Wei', 'Wei Zhang', 'ZHANG Wei', 'Zhang, Wei', 'Xiao-Ming Zhang' -> ('wei zhang', 'zhang')."""
    comma = "," in text
    raw_words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    if not 2 <= len(raw_words) <= 4:
        return "", ""
    words = [re.sub(r"[-'’.]", "", w).lower() for w in raw_words]
    if not all(_PINYIN_WORD.match(w) for w in words):
        return "", ""
    ranks = _surname_rank()
    candidates = [i for i, w in enumerate(words) if w in ranks]
    if not candidates:
        return "", ""
    capitals = [i for i in candidates if raw_words[i].isupper() and len(raw_words[i]) > 1
                and not all(w.isupper() for w in raw_words)]
    if comma and 0 in candidates:
        at = 0  # "Zhang, Wei": the surname comes before the comma
    elif len(capitals) == 1:
        at = capitals[0]  # "ZHANG Wei"
    else:
        plain = [i for i in candidates if "-" not in raw_words[i]]  # "Xiao-Ming" is a given name
        ends = [i for i in plain if i in (0, len(words) - 1)] or plain or candidates
        at = min(ends, key=lambda i: (ranks[words[i]], -i))
    given = "".join(w for i, w in enumerate(words) if i != at)
    if not given:
        return "", words[at]
    return " ".join(sorted([words[at], given])), words[at]


def standardize_name(value: str) -> NameResult:
    row = standardize_names([value]).iloc[0]
    return NameResult(row["name"], row["salutation"], bool(row["name_partial"]), row["name_key"],
                      row["name_pinyin"], row["name_status"], row["name_reason"])
