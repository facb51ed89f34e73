"""Which company a spelling names, and how completely it names it: for the golden record's company.

People write one company many ways: 广州光正机械有限公司, 光正机械（广州）有限公司, 光正机械, 光正,
"Guangzhou Guangzheng Machinery Co., Ltd.". A person reads them as one company because they share its
trade name (字号, 光正), the part left when the place, the line of business (机械, "Machinery") and the
legal form (有限公司, "Co., Ltd.") are taken away. The entity key is that trade name in toneless pinyin,
so the Chinese and the English spellings meet. A branch (…上海分公司, "Shanghai Branch") is the same
company at another address: its key is the trade name plus the branch's place, so the golden record
never shows a branch for its parent or the parent for a branch.

The form says how completely a spelling names the company, for display (higher is better):
0 names no company at all (重庆分公司, 有限公司: a unit with no trade name), 1 is a Latin-script name,
2..4 a Chinese name without a legal form (光正 2, 光正机械 or 广州光正 3, 广州光正机械 4) and 5..7 one with it
(光正有限公司 5 … 广州光正机械有限公司 and 光正机械（广州）有限公司 7). Only a Chinese legal name (form 5 and up) or
a branch says whether the person is at the parent or at a branch: a short name fits both.
"""

from __future__ import annotations

import re
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines.standardize.chinese import pinyin_key, toneless_pinyin
from datafactory_pipelines.standardize.places import CITIES, PROVINCES

BRANCH_WORDS = ["分公司", "分店", "分厂", "办事处", "营业部", "分部", "支行", "分行", "门店"]
LEGAL_FORMS = ["股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团公司", "集团", "公司", "有限合伙",
               "工作室", "事务所", "合作社", "厂"]
# Lines of business a trade name is followed by, longest first (科技发展 before 科技).
INDUSTRY_WORDS = sorted({
    "科技", "技术", "信息技术", "网络科技", "信息科技", "电子科技", "智能科技", "生物科技", "新材料", "新能源",
    "贸易", "商贸", "国际贸易", "进出口", "实业", "投资", "咨询", "管理咨询", "服务", "文化传媒", "传媒", "文化",
    "广告", "教育", "教育科技", "医疗器械", "医疗", "医药", "药业", "制药", "生物", "建筑", "工程", "建设",
    "建筑工程", "建材", "装饰", "装饰工程", "设计", "食品", "餐饮", "餐饮管理", "物流", "供应链", "供应链管理",
    "电子商务", "电子", "电器", "电气", "软件", "发展", "科技发展", "管理", "设备", "机械", "机械设备", "机电",
    "制造", "国际", "化工", "材料", "汽车", "服饰", "服装", "家居", "环保", "环保科技", "能源", "印刷", "包装",
    "塑料", "塑胶", "五金", "纺织", "光电", "智能", "自动化", "仪器", "精密", "数据", "金融", "保险", "置业",
    "地产", "房地产", "房地产开发", "物业", "物业管理", "酒店", "酒店管理", "旅游", "农业", "水产", "工贸",
    "企业管理", "人力资源", "网络", "信息", "通信", "通讯", "照明", "家具", "陶瓷", "钢铁", "有色金属", "矿业",
}, key=len, reverse=True)
LATIN_LEGAL = {"co", "company", "ltd", "limited", "inc", "incorporated", "llc", "corp", "corporation", "group",
               "holdings", "holding", "plc", "gmbh", "pte", "lp", "llp", "sa", "ag", "bv"}
LATIN_INDUSTRY = {
    "trading", "trade", "technology", "technologies", "tech", "machinery", "machine", "electronics", "electronic",
    "electric", "electrical", "information", "network", "networks", "industrial", "industry", "industries",
    "investment", "consulting", "consultancy", "service", "services", "culture", "media", "education",
    "biotech", "biotechnology", "medical", "pharmaceutical", "pharma", "construction", "engineering", "food",
    "foods", "logistics", "supply", "chain", "ecommerce", "commerce", "software", "development", "management",
    "equipment", "manufacturing", "international", "advertising", "chemical", "chemicals", "materials",
    "material", "new", "energy", "automotive", "auto", "apparel", "garment", "home", "furnishing", "decoration",
    "design", "environmental", "printing", "packaging", "plastics", "plastic", "hardware", "textile", "textiles",
    "optoelectronics", "intelligent", "smart", "automation", "instrument", "instruments", "precision", "data",
    "financial", "finance", "real", "estate", "property", "properties", "hotel", "tourism", "travel",
    "agriculture", "agricultural", "import", "export", "and", "the", "of", "enterprise", "science", "sci",
    "products", "product", "systems", "system", "solutions", "communication", "communications", "lighting",
    "furniture", "ceramics", "steel", "mining", "resources", "imp", "exp", "e",
}
LATIN_BRANCH = {"branch", "office", "store", "subsidiary"}


@cache
def _place_pinyin() -> frozenset[str]:
    """Places as Latin-script names write them: shanghai, chengdu (成都 read as a word, not 都 alone) … china."""
    from pypinyin import lazy_pinyin  # phrase readings; imported here, as names do, only when a name needs it

    places = (*PROVINCES, *CITIES)
    return frozenset({"".join(lazy_pinyin(place)) for place in places}
                     | {"".join(toneless_pinyin(ch) for ch in place) for place in places}
                     | {"china", "prc", "hongkong", "hk", "macau", "taiwan"})


@cache
def _place_word(place: str) -> str:
    """A branch's place as its English name writes it (成都 -> chengdu), so 成都分公司 meets "Chengdu Branch"."""
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(place)).lower()


@cache
def _industry_pinyin() -> frozenset[str]:
    """Lines of business written in pinyin ("Maoyi", "Keji"): dropped from a Latin name like their English."""
    from pypinyin import lazy_pinyin

    return frozenset({"".join(toneless_pinyin(ch) for ch in word) for word in INDUSTRY_WORDS}
                     | {"".join(lazy_pinyin(word)) for word in INDUSTRY_WORDS})


_PLACES = "|".join(sorted({*PROVINCES, *CITIES, "中国"}, key=len, reverse=True))
_PLACE_PREFIX = re.compile(f"^(?:(?:{_PLACES})(?:省|市|自治区)?)+")
_PLACE_SUFFIX = re.compile(f"(?:(?:{_PLACES})(?:省|市)?)$")
_BRACKETS = re.compile(r"[(（\[【]([^)）\]】]*)[)）\]】]")
_BRANCH = re.compile(f"^(?P<head>.*?)(?:{'|'.join(BRANCH_WORDS)})$")
_PARENT = re.compile(f"^(?P<parent>.*(?:{'|'.join(LEGAL_FORMS[:-1])}))(?P<place>.*)$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_NOT_WORD = re.compile(r"[^0-9A-Za-z\u3400-\u9fff]")


# Cheap checks before the regular expressions, which a bulk import runs on every distinct spelling: a
# place prefix starts with a place's first character, a branch ends with a branch word, brackets open.
_PLACE_FIRST = frozenset(place[0] for place in (*PROVINCES, *CITIES, "中国"))
_BRANCH_ENDINGS = (*BRANCH_WORDS, "\n")  # "\n": `_BRANCH`'s $ matches before a final line break
_FORMS = [str(n) for n in range(8)]
_LEGAL_SET = frozenset(LEGAL_FORMS)


def _endings(words: list[str]) -> dict[str, list[tuple[int, frozenset[str]]]]:
    """Last character -> the words ending with it, grouped by length, longest first: an ending is looked
    up, not searched for, and only among the words that can end the text."""
    by_last: dict[str, list[tuple[int, frozenset[str]]]] = {}
    for last in {w[-1] for w in words}:
        ending = [w for w in words if w[-1] == last]
        by_last[last] = [(n, frozenset(w for w in ending if len(w) == n))
                         for n in sorted({len(w) for w in ending}, reverse=True)]
    return by_last


_LEGAL_ENDINGS = _endings(LEGAL_FORMS)
_INDUSTRY_ENDINGS = _endings(INDUSTRY_WORDS)


def _strip_ending(core: str, endings: dict[str, list[tuple[int, frozenset[str]]]], times: int) -> tuple[str, bool]:
    """`core` without up to `times` of these endings (longest first), keeping two characters at least."""
    stripped = False
    for _ in range(times):
        for n, words in endings.get(core[-1:], ()):
            if len(core) - n >= 2 and core[-n:] in words:
                core, stripped = core[:-n], True
                break
        else:
            break
    return core, stripped


def _place_prefix(text: str) -> bool:
    return bool(text) and text[0] in _PLACE_FIRST and _PLACE_PREFIX.match(text) is not None


def _pinyin(texts: list[str]) -> list[str]:
    """Toneless pinyin of each text's letters and digits, a character at a time (chinese.pinyin_key); each
    distinct text once (trade names repeat across spellings)."""
    distinct = list(dict.fromkeys(texts))
    spelled = pinyin_key(pa.array([_NOT_WORD.sub("", t) for t in distinct], pa.string())).to_pylist()
    of = dict(zip(distinct, spelled, strict=True))
    return [of[t] for t in texts]


def chinese_parts(company: str) -> tuple[str, str, str]:
    """(trade name, branch place in pinyin or '', form) of a Chinese company spelling (simplified, no spaces);
    the trade name is '' for a unit that names no company by itself (重庆分公司)."""
    branch = ""
    head = company
    found = _BRANCH.match(company) if company.endswith(_BRANCH_ENDINGS) else None
    if found:
        head = found.group("head")
        parent = _PARENT.match(head)
        if parent and parent.group("parent"):
            head, branch = parent.group("parent"), parent.group("place")
        else:  # 星海科技上海分公司: the branch's place ends the head
            place = _PLACE_SUFFIX.search(head)
            branch = place.group(0) if place else ""
            head = head[:place.start()] if place else head
        branch = _place_word(_PLACE_PREFIX.sub("", branch) or branch) or "branch"
        branch = _NOT_WORD.sub("", branch) or "branch"
    bracketed, core = "", head
    if "(" in head or "（" in head or "[" in head or "【" in head:
        bracketed = " ".join(_BRACKETS.findall(head))
        core = _BRACKETS.sub("", head)
    core, has_legal = _strip_ending(core, _LEGAL_ENDINGS, 2)  # 集团股份有限公司
    without_place = _PLACE_PREFIX.sub("", core) if core[:1] in _PLACE_FIRST else core
    has_place = without_place != core or (bracketed != "" and _place_prefix(bracketed))
    core = without_place if len(without_place) >= 2 else core
    core, has_industry = _strip_ending(core, _INDUSTRY_ENDINGS, len(core))
    if not core or (core[0] in _PLACE_FIRST and _PLACE_PREFIX.fullmatch(core)) or core in _LEGAL_SET:
        return "", branch, "0"
    return core, branch, _FORMS[2 + 3 * has_legal + has_place + has_industry]


def chinese_entity(company: str) -> tuple[str, str]:
    """(entity key, form) of a Chinese company spelling (simplified, no spaces)."""
    return _chinese_entities([company])[0]


def _chinese_entities(companies: list[str]) -> list[tuple[str, str]]:
    parts = [chinese_parts(c) for c in companies]
    brands = _pinyin([brand for brand, _, _ in parts])
    return [(("~" + company) if not brand else spelled + (f"|{branch}" if branch else ""), form)
            for company, (brand, branch, form), spelled in zip(companies, parts, brands, strict=True)]


def latin_entity(company: str) -> tuple[str, str]:
    """(entity key, form) of a Latin-script company name ("Shanghai Yiciyuan Trading Co.,Ltd")."""
    words = [w for w in re.split(r"[^0-9a-z]+", company.lower().replace("&", " and ")) if w]
    places, industry = _place_pinyin(), _industry_pinyin()
    branch_at = next((i for i, w in enumerate(words) if w in LATIN_BRANCH), None)
    branch = ""
    if branch_at is not None:
        branch = "".join(w for w in words[max(0, branch_at - 1):branch_at] if w in places) or "branch"
        words = words[:branch_at - (1 if branch != "branch" else 0)]
    kept = [w for w in words if w not in LATIN_LEGAL and w not in LATIN_INDUSTRY and w not in places
            and w not in industry]
    if not kept:
        return ("~" + company.lower(), "0") if words else ("", "")
    return "".join(kept) + (f"|{branch}" if branch else ""), "1"


#: spelling -> (entity, form), kept by the process across files: a bulk import's worker reads dozens of
#: files of one customer base, where most spellings come again (two thirds already after ten files)
_KNOWN: dict[str, tuple[str, str]] = {}
KNOWN_AT_MOST = 200_000  # about 40 MB; forgotten all at once when full


def company_entities(companies: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(company_entity, company_form) per standardized company spelling ('' for no company), each
    distinct spelling worked out once; the Chinese ones' trade names put into pinyin together."""
    encoded = pc.dictionary_encode(companies)
    values = encoded.dictionary.to_pylist()
    known = _KNOWN
    found: list[tuple[str, str]] = [known.get(v) or ("", "") for v in values]
    chinese, latin = [], []
    for i, value in enumerate(values):
        if value and value not in known:
            (chinese if _CJK.search(value) else latin).append(i)
    for i, got in zip(chinese, _chinese_entities([values[i] for i in chinese]), strict=True):
        found[i] = got
    for i in latin:
        found[i] = latin_entity(values[i])
    if len(known) + len(chinese) + len(latin) > KNOWN_AT_MOST:
        known.clear()
    known.update((values[i], found[i]) for i in chinese)
    known.update((values[i], found[i]) for i in latin)
    return (pc.take(pa.array([e for e, _ in found], pa.string()), encoded.indices),
            pc.take(pa.array([f for _, f in found], pa.string()), encoded.indices))
