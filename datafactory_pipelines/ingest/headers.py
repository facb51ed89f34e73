"""Header synonyms (Chinese and English) mapped to the canonical lead fields."""

from __future__ import annotations

import re
import unicodedata

from datafactory_pipelines.standardize.chinese import simplified_table

# Exact synonyms, compared after normalize_header(). Order inside a list does not matter.
HEADER_SYNONYMS: dict[str, list[str]] = {
    "name": ["姓名", "客户姓名", "联系人", "联系人姓名", "名字", "客户", "称呼", "真实姓名", "被推荐人", "被介绍人",
             "name", "fullname", "contact", "contactname", "contactperson", "customername", "firstname",
             "referee", "referredperson", "联络人", "联系人名称", "客户联系人", "对接人"],
    "mobile": ["手机", "手机号", "手机号码", "移动电话", "联系电话", "电话", "电话号码", "联系手机",
               "手机电话", "座机", "固定电话", "固话", "办公电话", "行动电话", "手提电话", "流动电话", "mobile", "mobilephone", "mobileno", "phone",
               "phonenumber", "cell", "cellphone", "tel", "telephone", "contactnumber"],
    "email": ["邮箱", "电子邮箱", "邮件", "邮件地址", "电子邮件", "邮箱地址", "电邮", "电邮地址", "email", "e-mail", "mail",
              "emailaddress", "e-mailaddress"],
    "wechat": ["微信", "微信号", "微信id", "wechat", "wechatid", "weixin", "wx"],
    "qq": ["qq", "qq号", "qq号码", "qqid"],
    "douyin": ["抖音", "抖音号", "抖音id", "douyin", "tiktok", "douyinid"],
    "kuaishou": ["快手", "快手号", "快手id", "kuaishou", "kuaishouid"],
    "company": ["公司", "公司名称", "公司名", "单位", "单位名称", "工作单位", "企业", "企业名称", "客户名称",
                "所属公司", "机构", "机构名称", "company", "companyname", "organization", "organisation",
                "org", "employer", "account", "accountname"],
    "title": ["职位", "职务", "岗位", "头衔", "职称", "title", "jobtitle", "position", "role", "designation"],
    "address": ["地址", "联系地址", "通讯地址", "详细地址", "公司地址", "办公地址", "所在地", "address",
                "mailingaddress", "streetaddress", "location"],
    "source": ["来源", "渠道", "线索来源", "来源渠道", "获取渠道", "客户来源", "source", "channel",
               "leadsource"],
    "collected_at": ["日期", "收集时间", "登记日期", "登记时间", "创建时间", "创建日期", "录入时间", "录入日期",
                     "提交时间", "留资时间", "时间", "date", "created", "createdat", "createdon",
                     "collectedat", "submittedat", "timestamp"],
    # the salesperson who follows the lead up (not the lead's own contact person)
    "owner": ["负责人", "销售", "跟进人", "归属销售", "所属销售", "销售负责人", "跟进销售", "销售代表", "客户经理",
              "业务员", "归属人", "跟进负责人", "owner", "leadowner", "accountowner", "salesrep",
              "salesrepresentative", "salesperson", "salesowner", "assignedto", "assignee"],
}

# Other people's names: never the lead's own. The sales owner (for notifications) and the referrer.
ROLE_SYNONYMS: dict[str, list[str]] = {
    "owner": ["负责人", "销售", "销售人员", "销售代表", "跟进人", "跟进销售", "业务员", "客户经理", "归属人", "所属销售",
              "所属人", "录入人", "创建人", "跟单员", "顾问", "owner", "leadowner", "accountowner", "salesrep",
              "salesperson", "assignedto", "assignee", "createdby"],
    "referrer": ["推荐人", "介绍人", "转介绍人", "推荐者", "referrer", "referredby", "referrername"],
    # several kinds of contact in one column, read cell by cell
    "contact": ["联系方式", "联系方法", "联系信息", "contactinfo", "contactdetails", "contacts"],
    # free text: whatever it holds (a phone in a remark) is kept as written, never read as a field
    "extra": ["备注", "备注信息", "说明", "描述", "附言", "留言", "跟进记录", "跟进情况", "沟通记录", "remark", "remarks",
              "note", "notes", "comment", "comments", "memo", "description"],
}
ROLE_KEYWORDS: list[tuple[str, str]] = [
    ("被推荐", "name"), ("被介绍", "name"), ("推荐人", "referrer"), ("介绍人", "referrer"),
    ("负责人", "owner"), ("跟进人", "owner"), ("销售", "owner"), ("业务员", "owner"), ("owner", "owner"),
]
_CONTACT_WORDS = [("手机", "mobile"), ("电话", "mobile"), ("phone", "mobile"), ("mobile", "mobile"),
                  ("微信", "wechat"), ("wechat", "wechat"), ("qq", "qq"), ("邮箱", "email"), ("email", "email")]

# Substring fallbacks for decorated headers such as "手机号码(必填)" or "客户邮箱*".
# Checked in order, so the more specific words come first.
HEADER_KEYWORDS: list[tuple[str, str]] = [
    ("微信", "wechat"), ("wechat", "wechat"), ("抖音", "douyin"), ("快手", "kuaishou"),
    ("qq", "qq"), ("邮箱", "email"), ("邮件", "email"), ("email", "email"),
    ("手机", "mobile"), ("电话", "mobile"), ("mobile", "mobile"), ("phone", "mobile"),
    ("公司", "company"), ("单位", "company"), ("企业", "company"), ("company", "company"),
    ("职位", "title"), ("职务", "title"), ("岗位", "title"),
    ("地址", "address"), ("address", "address"),
    ("负责人", "owner"), ("跟进人", "owner"), ("归属销售", "owner"), ("owner", "owner"),
    ("姓名", "name"), ("联系人", "name"), ("name", "name"),
    ("来源", "source"), ("渠道", "source"), ("source", "source"),
    ("日期", "collected_at"), ("时间", "collected_at"), ("date", "collected_at"),
    ("电邮", "email"), ("联络", "name"),
]

# Columns of codes (客户编号, 订单号, ID): kept as extra attributes, never read as contacts.
IDENTIFIER_WORDS = ("编号", "单号", "订单", "流水号", "序号", "工号", "会员号", "卡号", "客户号", "合同号", "编码",
                    "代码", "证号", "票号", "批次")
_IDENTIFIER_LATIN = re.compile(r"(?:^|[^a-z])(?:id|no|code|number|ref)$|^(?:id|no|code|ref)(?:[^a-z]|$)")


def is_identifier_header(header: object) -> bool:
    """客户编号, 订单号, Customer ID, Order No: a column of codes by its name (contact headers excepted)."""
    key = normalize_header(header)
    if not key or key in _LOOKUP or key in _ROLE_LOOKUP:
        return False
    if any(word in key for word, _ in _CONTACT_WORDS):  # 手机号码, QQ号: contacts
        return False
    return any(w in key for w in IDENTIFIER_WORDS) or bool(_IDENTIFIER_LATIN.search(
        unicodedata.normalize("NFKC", str(header)).strip().lower()))

_LOOKUP = {syn: field for field, syns in HEADER_SYNONYMS.items() for syn in syns}
_DECORATION = re.compile(r"[\s_:：*＊#\-.·/\\]+|[（(\[【].*?[)）\]】]")

# Fields that may come in several columns: later columns are merged in as alternates.
MULTI_VALUE_FIELDS = {"mobile", "email"}


def normalize_header(text: object) -> str:
    """Lower-case, half-width, simplified (聯絡人 reads 联络人), without spaces, punctuation or bracketed
    notes like "(必填)"."""
    s = unicodedata.normalize("NFKC", str(text or "")).strip().lower().translate(simplified_table())
    s = _DECORATION.sub("", s)
    return s.replace("-", "")


def canonical_field(header: object) -> str | None:
    """The canonical field for one header cell, or None for an unknown column."""
    key = normalize_header(header)
    if not key:
        return None
    if key in _LOOKUP:
        return _LOOKUP[key]
    if len(key) > 24:  # a sentence, not a header
        return None
    for word, field in HEADER_KEYWORDS:
        if word in key:
            return field
    return None


_ROLE_LOOKUP = {syn: role for role, syns in ROLE_SYNONYMS.items() for syn in syns}


def header_role(header: object) -> str | None:
    """What the header alone says: a canonical field, "owner", "referrer", "contact" (several kinds), or None."""
    key = normalize_header(header)
    if not key:
        return None
    if key in _ROLE_LOOKUP:
        return _ROLE_LOOKUP[key]
    if key in _LOOKUP:
        return _LOOKUP[key]
    if len(key) <= 24:
        kinds = {kind for word, kind in _CONTACT_WORDS if word in key}
        if len(kinds) >= 2:  # 手机/微信, 电话或邮箱
            return "contact"
        for word, role in ROLE_KEYWORDS:
            if word in key:
                return role
    return canonical_field(header)


def map_headers(headers: list[object]) -> dict[int, str]:
    """Column index -> canonical field. Repeats of a single-valued field are left unmapped (kept as extras)."""
    mapping: dict[int, str] = {}
    seen: set[str] = set()
    for i, header in enumerate(headers):
        field = canonical_field(header)
        if field is None:
            continue
        if field in seen and field not in MULTI_VALUE_FIELDS:
            continue
        mapping[i] = field
        seen.add(field)
    return mapping


def header_score(row: list[object]) -> int:
    """How much a row looks like a header: the number of distinct canonical fields it names."""
    fields = {header_role(c) for c in row if isinstance(c, str) and c.strip()}
    fields.discard(None)
    return len(fields)
