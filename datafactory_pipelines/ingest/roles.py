"""What each column holds, decided from its header AND a sample of its values.

Real exports name columns loosely (客户名称 may hold people or companies; 负责人 is the sales owner,
not the lead; 手机/微信 and 联系方式 hold several kinds of contact; 最后跟进 is a date). Each column's
values are profiled with the standardizers (the share that parse as mobile, landline, email,
WeChat, QQ, person name, company, title, address, date, code), the header's vote is added, and
conflicts between columns are resolved (one lead name, one company; other people's names go to
`owner` / `referrer`). Every decision keeps its confidence and evidence for the import report.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from datafactory_pipelines import CANONICAL_FIELDS
from datafactory_pipelines.ingest.headers import canonical_field, header_role, is_identifier_header
from datafactory_pipelines.ingest.identifiers import identifier_evidence
from datafactory_pipelines.ingest.mixed import QQ_NUMBER
from datafactory_pipelines.ingest.people import (
    OUR_VALUE_SHARE,
    is_owner_like,
    looks_like_our_unit,
    rank_name_columns,
    why_lead,
)
from datafactory_pipelines.masking import mask_value
from datafactory_pipelines.standardize.chinese import simplified_table
from datafactory_pipelines.standardize.dates import standardize_date
from datafactory_pipelines.standardize.email import standardize_emails
from datafactory_pipelines.standardize.name import SALUTATIONS, SURNAME_ONLY_SALUTATIONS
from datafactory_pipelines.standardize.phone import standardize_phones
from datafactory_pipelines.standardize.text import as_strings
from datafactory_pipelines.standardize.title import TITLE_SYNONYMS

SAMPLE_SIZE = 200
CONTACT_ROLES = ("mobile", "email", "wechat", "qq", "douyin", "kuaishou")
# Roles a column can take besides the canonical fields: another person's name, or several contact kinds.
OWNER, REFERRER, MIXED = "owner", "referrer", "contact"
SELLER = "seller"  # a column about us (分公司, 部门, 区域): kept as an extra attribute, never the client's
UNCERTAIN_BELOW = 0.75

# The commonest Chinese surnames (about 95% of people), compound ones first.
COMPOUND_SURNAMES = ["欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "夏侯", "尉迟", "公孙", "长孙",
                     "宇文", "司徒", "端木", "独孤", "南宫", "西门", "轩辕", "呼延"]
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴"
    "霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚"
    "岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑"
    "迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉"
    "禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜"
    "印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由")
_NAME_STOP = re.compile(r"公司|集团|有限|科技|贸易|中心|学校|大学|医院|银行|工厂|商行|店|部|厂|所|院|协会|局|处|"
                        r"经理|总监|主管|专员|工程师|先生女士|客户|未知|测试|匿名")
_COMPANY = re.compile(r"(?i)公司|集团|有限|股份|企业|工作室|事务所|研究院|研究所|合作社|商行|门市|厂$|店$|中心$|银行|"
                      r"医院|学校|大学|学院|协会|\bco\b\.?|\bltd\b|\binc\b|limited|\bllc\b|\bcorp|\bgroup\b|"
                      r"company|technology|trading")
_ADDRESS = re.compile(r"(?:省|市|区|县|镇|乡|村).{0,12}(?:路|街|道|巷|弄|号|大厦|园|广场|楼|室)|\d+号")
_TITLE_WORDS = re.compile(r"(?i)经理|总监|主管|专员|工程师|助理|总裁|董事|主任|顾问|代表|会计|出纳|文员|"
                          r"manager|director|engineer|assistant|officer|president|specialist|consultant")
_DATE_LIKE = re.compile(r"^\s*\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\s*$|"
                        r"^\s*\d{1,2}/\d{1,2}/\d{4}(?:\s+\d{1,2}:\d{2})?\s*$")
_CODE = re.compile(r"^[A-Za-z]{0,6}[-_]?\d{3,}$")
_WECHAT = re.compile(r"(?i)^[a-z][-_a-z0-9]{5,19}$")
_PINYIN_SYLLABLES = re.compile(
    r"(?i)^(?:(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ang|eng|ing|ong|uan|ian|iao|uai|ai|ei|ao|ou|an|"
    r"en|in|un|ia|ie|iu|ua|uo|ue|ui|er|a|o|e|i|u|v))+$")
_TITLES = {s for syns in TITLE_SYNONYMS.values() for s in syns}
_NAME_NOISE = re.compile(r"[\s·•]|[(（][^)）]*[)）]")
_CJK_2_5 = re.compile(r"[\u3400-\u9fff]{2,5}")
_LATIN_START = re.compile(r"\s*[A-Za-z]")
_WORD_SPLIT = re.compile(r"[\s,]+")
_SPACE = re.compile(r"\s")
_ID_MARK = re.compile(r"[\d_-]")
_ASCII_DIGIT = re.compile(r"[0-9]")
_DIGIT = re.compile(r"\d")  # any decimal digit, as the date patterns read them


@cache
def surname_pinyins() -> frozenset[str]:
    from pypinyin import lazy_pinyin

    return frozenset(lazy_pinyin(s)[0] for s in SURNAMES) | frozenset("".join(lazy_pinyin(s))
                                                                        for s in COMPOUND_SURNAMES)


def looks_like_chinese_name(text: str) -> bool:
    """张伟, 欧阳娜娜, 王总, 陈工, 李经理, 张伟(先生): a known surname and one to three more characters."""
    t = _NAME_NOISE.sub("", text)
    if not _CJK_2_5.fullmatch(t):
        return False
    compound = t[:2] in COMPOUND_SURNAMES
    if not compound and t[0] not in SURNAMES:
        return False
    if t[2 if compound else 1:] in (*SALUTATIONS, *SURNAME_ONLY_SALUTATIONS):
        return True
    return len(t) <= (5 if compound else 4) and not _NAME_STOP.search(t)


def looks_like_romanized_name(text: str) -> bool:
    """Zhang Wei, Wei Zhang, ZHANG Wei, Zhang, Wei, Xiao-Ming Zhang: pinyin words, one of them a surname."""
    if not _LATIN_START.match(text):
        return False
    words = [w for w in _WORD_SPLIT.split(text.strip()) if w]
    if not 2 <= len(words) <= 3 or len(text) > 30:
        return False
    syllables = [w.replace("-", "").replace("'", "") for w in words]
    if not all(_PINYIN_SYLLABLES.match(w) for w in syllables):
        return False
    return any(w.lower() in surname_pinyins() for w in syllables)


@dataclass
class ColumnProfile:
    """Shares of a column's non-empty sampled values that read as each kind."""

    shares: dict[str, float]
    filled: int  # non-empty values sampled
    distinct_ratio: float  # distinct / filled: an owner column repeats a few names

    def best(self) -> tuple[str, float]:
        if not self.shares:
            return "", 0.0
        kind = max(self.shares, key=lambda k: self.shares[k])
        return kind, self.shares[kind]


def _spread(values: pd.Series, n: int) -> pd.Series:
    """Up to n rows spread evenly over the column (cheap: no work on the rows left out)."""
    if len(values) <= n:
        return values
    return values.iloc[np.linspace(0, len(values) - 1, n).astype(int)]


def sample_values(values: pd.Series) -> pd.Series:
    """Up to SAMPLE_SIZE non-empty values, spread over the column, trimmed."""
    spread = _spread(values, SAMPLE_SIZE * 4)
    # read as the standardizers read it: control and bidi characters dropped (a stray U+202E is no reason
    # for a column of names not to look like names)
    text = pd.Series(as_strings(spread.astype(str).tolist()).to_pylist(), index=spread.index, dtype=object).str.strip()
    text = _spread(text[text != ""], SAMPLE_SIZE)
    # and in simplified characters (陳大文 is a name as 陈大文 is), for the profile only: the file's text is kept.
    # One character for another, never a space: translated once the sample is chosen, the same sample
    table = simplified_table()
    return pd.Series([v.translate(table) for v in text.tolist()], index=text.index, dtype=object)


def contact_lookup(values: list[str]) -> dict[str, tuple[bool, bool, bool]]:
    """value -> (mobile, landline only, email), the standardizers run once over every column's sample."""
    if not values:
        return {}
    found = dict.fromkeys(values, (False, False, False))
    # only a value with a digit can read as a phone, only one with an @ as an email (both as the
    # standardizers see them, after NFKC: ＠ and full-width digits count): names and words are not run
    # through them
    half = [unicodedata.normalize("NFKC", v) for v in values]
    numbers = [v for v, h in zip(values, half, strict=True) if _ASCII_DIGIT.search(h)]
    at = {v for v, h in zip(values, half, strict=True) if "@" in h}
    phones = standardize_phones(numbers) if numbers else None
    emails = standardize_emails(sorted(at)) if at else None
    if phones is not None:
        mobile = (phones["mobile"] != "").to_numpy()
        landline = ((phones["landline"] != "") & (phones["mobile"] == "")).to_numpy()
        for v, a, b in zip(numbers, mobile, landline, strict=True):
            found[v] = (bool(a), bool(b), False)
    if emails is not None:
        for v, c in zip(sorted(at), (emails["email"] != "").to_numpy(), strict=True):
            found[v] = (found[v][0], found[v][1], bool(c))
    return found


def profile_values(values: pd.Series, contacts: dict[str, tuple[bool, bool, bool]] | None = None,
                   sampled: bool = False) -> ColumnProfile:
    text = values if sampled else sample_values(values)
    n = len(text)
    if n == 0:
        return ColumnProfile({}, 0, 0.0)
    distinct = text.unique()
    counts = text.value_counts()
    weight = counts.reindex(distinct).to_numpy(dtype=float) / n  # each distinct value once, weighted
    if contacts is None:
        contacts = contact_lookup(list(distinct))
    flags = np.array([contacts[v] for v in distinct], dtype=bool).reshape(-1, 3)
    is_mobile, is_landline, is_email = flags[:, 0], flags[:, 1], flags[:, 2]
    # a date (20260305, Mar-05-2026) is never a WeChat id, a QQ number or a code
    # (every date the standardizer reads has a digit: a name or a word is not read as one)
    is_date = np.array([bool(_DATE_LIKE.match(v)) or (len(v) <= 12 and not v.isdigit() and bool(_DIGIT.search(v))
                                                       and standardize_date(v) != "") for v in distinct], dtype=bool)
    is_date |= np.array([len(v) == 8 and v.isdigit() and standardize_date(v) != "" for v in distinct], dtype=bool)
    checks = {
        "mobile": is_mobile,
        "landline": is_landline,
        "email": is_email,
        "wechat": np.array([bool(_WECHAT.match(v)) and bool(_ID_MARK.search(v)) for v in distinct]) & ~is_email
        & ~is_date,
        "qq": np.array([bool(QQ_NUMBER.match(v)) for v in distinct]) & ~is_mobile & ~is_landline & ~is_date,
        "name": np.array([looks_like_chinese_name(v) or looks_like_romanized_name(v) for v in distinct]),
        "company": np.array([bool(_COMPANY.search(v)) for v in distinct]),
        "title": np.array([_SPACE.sub("", v.lower()) in _TITLES or bool(_TITLE_WORDS.search(v))
                           and len(v) <= 12 for v in distinct]),
        "address": np.array([bool(_ADDRESS.search(v)) and len(v) >= 6 for v in distinct]),
        "date": is_date,
        "code": np.array([bool(_CODE.match(v)) for v in distinct]) & ~is_mobile & ~is_landline & ~is_date,
        "unit": np.array([looks_like_our_unit(v) for v in distinct]),
    }
    shares = {kind: float((weight * hit).sum()) for kind, hit in checks.items()}
    return ColumnProfile({k: round(v, 3) for k, v in shares.items() if v > 0}, n, len(distinct) / n)


@dataclass
class ColumnRole:
    index: int
    header: str
    role: str | None  # a canonical field, "owner", "referrer", "contact" (mixed, read per cell) or None (extra)
    confidence: float
    evidence: str
    sample: str = ""  # masked
    header_vote: str | None = None
    content: dict[str, float] = field(default_factory=dict)
    identifier: bool = False  # a column of codes (客户编号, 订单号): an extra attribute, never a contact

    @property
    def uncertain(self) -> bool:
        return self.role is not None and self.confidence < UNCERTAIN_BELOW

    def as_dict(self) -> dict:
        return {"column": self.header, "role": self.role or "extra", "confidence": round(self.confidence, 2),
                "evidence": self.evidence, "sample": self.sample}


_CONTENT_KIND_TO_ROLE = {"mobile": "mobile", "landline": "mobile", "email": "email", "wechat": "wechat",
                         "qq": "qq", "name": "name", "company": "company", "title": "title", "address": "address",
                         "date": "collected_at"}


_SHOWN_AS_IS = {"company", "title", "source", "collected_at"}


def _masked_sample(values: pd.Series, role: str | None) -> str:
    """Two values as the report may show them: personal data masked, whatever the column turned out to be."""
    filled = [v for v in values.head(50).astype(str).str.strip() if v][:2]
    shown = []
    for v in filled:
        if role in _SHOWN_AS_IS:
            shown.append(v[:24])
        elif "@" in v:
            shown.append(mask_value("email", v))
        elif role in ("name", OWNER, REFERRER) or not re.search(r"\d", v):
            shown.append(mask_value("name", v) if role != "address" else mask_value("address", v))
        else:
            shown.append(mask_value("mobile", v))
    return ", ".join(shown)


def _evidence(header_vote: str | None, profile: ColumnProfile) -> str:
    top = sorted(profile.shares.items(), key=lambda kv: -kv[1])[:3]
    content = ", ".join(f"{k} {v:.0%}" for k, v in top) or "no values"
    return f"header: {header_vote or 'unknown'}; content: {content}"


def decide_roles(headers: list[str], body: pd.DataFrame, pinned: dict[str, str] | None = None) -> list[ColumnRole]:
    """One ColumnRole per header cell; `pinned` (header -> role) from the operator wins over everything."""
    pinned = pinned or {}
    roles: list[ColumnRole] = []
    samples = [sample_values(body.iloc[:, i]) if i < body.shape[1] else pd.Series([], dtype=object)
               for i in range(len(headers))]
    contacts = contact_lookup(sorted({v for sample in samples for v in sample}))
    for i, header in enumerate(headers):
        values = body.iloc[:, i] if i < body.shape[1] else pd.Series([], dtype=object)
        vote = header_role(header)
        profile = profile_values(samples[i], contacts, sampled=True)
        codes = _identifier_reason(header, vote, samples[i], profile)
        if codes:
            role, confidence = None, 0.9
        else:
            role, confidence = _one_column(vote, profile)
        column = ColumnRole(i, header, role, confidence, _evidence(vote, profile), header_vote=vote,
                            content=profile.shares, identifier=bool(codes))
        if codes:
            column.evidence += f"; identifiers, not contacts: {codes}"
        if header in pinned:
            column.role = None if pinned[header] in ("", "extra", "ignore") else pinned[header]
            column.confidence = 1.0
            column.evidence = "pinned by operator; " + column.evidence
        column.sample = _masked_sample(values, column.role)
        roles.append(column)
    _resolve(roles, body, set(pinned))
    return roles


def _identifier_reason(header: str, vote: str | None, sample: pd.Series, profile: ColumnProfile) -> str:
    """Why a column holds codes rather than contacts ('' when it does not): its header names codes
    (客户编号, Order No) and its values are not mostly phones or emails, or, under a header that names
    no contact, its values share one fixed shape, one per row (C000123, 2026120700017), or count up."""
    if vote in ("name", "company", "address", "title", "collected_at", "source", OWNER, REFERRER, "extra"):
        return ""
    s = profile.shares
    real_contacts = s.get("mobile", 0) + s.get("landline", 0) + s.get("email", 0)
    if real_contacts >= 0.5 or s.get("date", 0) >= 0.5:
        return ""
    if is_identifier_header(header):
        return "the header names codes"
    if vote in CONTACT_ROLES or vote == MIXED:  # 微信 / QQ / 联系方式 headers: the header's word stands
        return ""
    return identifier_evidence(sample)


def _one_column(vote: str | None, profile: ColumnProfile) -> tuple[str | None, float]:
    """A column on its own: the header's vote checked against what its values are."""
    s = profile.shares
    if profile.filled == 0:
        return vote, 0.9 if vote else 0.0
    contact_kinds = {k: s.get(k, 0.0) for k in ("mobile", "landline", "email", "wechat", "qq")}
    phone = contact_kinds["mobile"] + contact_kinds["landline"]
    # a short number in a phone column is a bad phone, not a QQ number: QQ counts only where the header
    # does not name one kind
    ids = contact_kinds["wechat"] + (contact_kinds["qq"] if vote == MIXED else 0.0)
    kinds_present = sum(v >= 0.1 for v in (phone, contact_kinds["email"], ids))
    content_kind, share = profile.best()

    if vote == "extra":  # 备注 / notes: free text, kept as written
        return None, 0.9
    if vote == SELLER:  # 分公司 / 部门 / 区域: about us, never the client's company or name
        return None, 0.9
    if vote in (OWNER, REFERRER):  # "销售额" is not a salesperson: the values must be names
        return (vote, 0.95) if s.get("name", 0) >= 0.5 else (None, 0.5)
    if vote in CONTACT_ROLES or vote == MIXED:
        wechat_by_mobile = vote == "wechat" and contact_kinds["email"] < 0.1 and phone < 0.6
        if kinds_present >= 2 and not wechat_by_mobile:  # 手机/微信, 联系方式: read per cell
            # (a WeChat column where some accounts are mobile numbers stays WeChat: the standardizer knows)
            return MIXED, 0.9
        if vote == "wechat" and phone >= 0.6:
            return "mobile", 0.8
        if vote == "mobile" and contact_kinds["email"] >= 0.6:
            return "email", 0.8
        if vote == MIXED:
            best = max(("mobile", phone), ("email", contact_kinds["email"]), ("wechat", contact_kinds["wechat"]),
                       key=lambda kv: kv[1])
            return (best[0], 0.85) if best[1] >= 0.5 else (MIXED, 0.7)
        agrees = {"mobile": phone, "email": contact_kinds["email"], "wechat": contact_kinds["wechat"] + phone,
                  "qq": contact_kinds["qq"] + contact_kinds["email"]}.get(vote, 0.5)
        return vote, 0.95 if agrees >= 0.5 else 0.7
    if vote in ("name", "company"):
        other = "company" if vote == "name" else "name"
        if s.get(other, 0) >= 0.6 and s.get(vote, 0) < 0.3:  # 客户名称 holding people, 联系人 holding firms
            return other, 0.85
        return vote, 0.95 if s.get(vote, 0) >= 0.5 else 0.7
    if vote == "collected_at":
        return vote, 0.95 if s.get("date", 0) >= 0.5 else 0.6
    if vote is not None:
        return vote, 0.9
    # unknown header: content alone, and only when it is clear
    words = max(s.get("name", 0), s.get("company", 0), s.get("title", 0))
    if phone + contact_kinds["email"] >= 0.5 and words >= 0.5:  # 姓名：张伟 电话：138…: a registration per cell
        return None, 0.6
    if kinds_present >= 2 and phone + contact_kinds["email"] + contact_kinds["wechat"] >= 0.7:
        return MIXED, 0.7
    if content_kind in ("code", "qq") or share < 0.8:  # a QQ number needs a header that says QQ
        return None, 0.0
    return _CONTENT_KIND_TO_ROLE.get(content_kind), min(share, 0.95) * 0.85


def _resolve(roles: list[ColumnRole], body: pd.DataFrame, pinned: set[str]) -> None:
    """Across columns: one lead name (other people's names are owner / referrer), one company, one date."""
    free = [r for r in roles if r.header not in pinned and r.header_vote not in ("extra", SELLER)]
    _our_columns(roles, pinned)
    _choose_lead_name(roles, free, body, pinned)
    for single in ("company", "collected_at", "title", "address", "source", "wechat", "qq", "douyin", "kuaishou"):
        holders = [r for r in roles if r.role == single]
        if len(holders) > 1:
            key = {"company": "company", "collected_at": "date"}.get(single, single)
            holders.sort(key=lambda r: (r.header in pinned, r.content.get(key, 0), r.header_vote == single),
                         reverse=True)
            for other in holders[1:]:
                if other.header in pinned:
                    continue
                other.role, other.confidence = None, 0.5
                other.evidence += f"; {holders[0].header!r} holds the {single}"
    for r in roles:  # a role this version does not store stays an extra attribute under that role's name
        if r.role not in (None, OWNER, REFERRER, MIXED) and r.role not in CANONICAL_FIELDS:
            r.role = None


def _our_columns(roles: list[ColumnRole], pinned: set[str]) -> None:
    """A column whose values are our own branches, departments or regions (重庆分公司, 华东大区, 销售二部)
    is about the seller, whatever its header: never the client's company or name."""
    for r in roles:
        if r.header in pinned or r.role not in ("company", "name", None) or r.content.get("unit", 0) < OUR_VALUE_SHARE:
            continue
        r.role, r.confidence = None, 0.85
        r.evidence += f"; {r.content['unit']:.0%} of its values are our own units (branch, department, region): " \
                      "about the seller, kept as an extra attribute"


def _choose_lead_name(roles: list[ColumnRole], free: list[ColumnRole], body: pd.DataFrame, pinned: set[str]) -> None:
    """One lead name among the columns of people's names, chosen by how each goes with the row's contacts
    (people.py); the others are the owner (a few names over many rows) or another person's name, kept."""
    candidates = [r for r in roles if r.role == "name"]
    candidates += [r for r in free if r.role is None and r.content.get("name", 0) >= 0.8]
    if not candidates:
        return
    contacts = [r.index for r in roles if r.role in (*CONTACT_ROLES, MIXED)]
    ranked = rank_name_columns(body, [(r.index, r.header, r.header in pinned and r.role == "name",
                                       r.header_vote == "name", r.content.get("name", 0)) for r in candidates],
                               contacts)
    by_index = {r.index: r for r in candidates}
    lead, others = ranked[0], ranked[1:]
    chosen = by_index[lead.index]
    if chosen.role != "name":
        chosen.role, chosen.confidence = "name", 0.6 if not others else 0.75
        chosen.evidence += "; taken as the lead's name: no other name column" if not others else ""
    if others:
        chosen.evidence += "; " + why_lead(lead, others)
    has_owner = any(r.role == OWNER for r in roles)
    for other in others:
        column = by_index[other.index]
        if column.header in pinned:
            continue
        if not has_owner and is_owner_like(other):
            column.role, column.confidence, has_owner = OWNER, 0.7, True
            column.evidence += f"; a few names over many rows ({other.describe()}): taken as the owner"
        else:
            column.role, column.confidence = None, 0.7
            column.evidence += f"; another person's name ({other.describe()}): not the lead's, kept as extra"


def _distinct_ratio(body: pd.DataFrame, index: int) -> float:
    values = _spread(body.iloc[:, index], 2000).astype(str).str.strip()
    values = values[values != ""]
    return values.nunique() / len(values) if len(values) else 1.0


def mapping_of(roles: list[ColumnRole]) -> dict[int, str]:
    return {r.index: r.role for r in roles if r.role is not None}


def warnings_of(roles: list[ColumnRole]) -> list[str]:
    out = [f"column {r.header!r} read as {r.role} ({r.confidence:.0%}): {r.evidence}" for r in roles if r.uncertain]
    if not any(r.role == "name" for r in roles):
        out.append("no column holds the lead's name")
    return out


__all__ = ["ColumnRole", "decide_roles", "mapping_of", "profile_values", "warnings_of", "canonical_field"]
