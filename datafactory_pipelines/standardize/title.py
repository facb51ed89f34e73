"""Job titles: Chinese and English synonyms mapped to one canonical Chinese title."""

from __future__ import annotations

import re

from datafactory_pipelines.standardize.chinese import simplified_table
from datafactory_pipelines.standardize.text import clean_text

# canonical -> synonyms (compared lower-cased, without spaces)
TITLE_SYNONYMS: dict[str, list[str]] = {
    "总经理": ["总经理", "gm", "generalmanager", "ceo", "chiefexecutiveofficer", "总裁", "首席执行官"],
    "董事长": ["董事长", "chairman", "董事局主席"],
    "销售经理": ["销售经理", "salesmanager", "销售部经理", "销售主管", "salessupervisor"],
    "销售总监": ["销售总监", "salesdirector", "销售部总监", "vpofsales", "销售副总"],
    "销售代表": ["销售代表", "salesrepresentative", "salesrep", "销售专员", "销售员", "业务员"],
    "市场总监": ["市场总监", "marketingdirector", "市场部总监", "cmo"],
    "市场经理": ["市场经理", "marketingmanager", "市场部经理"],
    "采购经理": ["采购经理", "purchasingmanager", "procurementmanager", "采购部经理", "purchasemanager"],
    "采购专员": ["采购专员", "采购员", "buyer", "purchaser"],
    "技术总监": ["技术总监", "cto", "chieftechnologyofficer", "技术部总监", "首席技术官"],
    "人事专员": ["人事专员", "hr", "hrspecialist", "人力资源专员"],
    "人事经理": ["人事经理", "hrmanager", "人力资源经理", "人事部经理"],
    "财务主管": ["财务主管", "financesupervisor", "财务部主管"],
    "财务经理": ["财务经理", "financemanager", "财务部经理"],
    "财务总监": ["财务总监", "cfo", "chieffinancialofficer", "首席财务官"],
    "运营经理": ["运营经理", "operationsmanager", "运营部经理"],
    "工程师": ["工程师", "engineer"],
    "项目经理": ["项目经理", "projectmanager", "pm"],
    "产品经理": ["产品经理", "productmanager"],
    "行政专员": ["行政专员", "administrativeassistant", "行政助理"],
}
_LOOKUP = {syn: canonical for canonical, syns in TITLE_SYNONYMS.items() for syn in syns}
_DEPT_ROLE = re.compile(r"^(.{2,4})部(经理|总监|主管|专员)$")


def standardize_title(value: str) -> str:
    text = clean_text(value).translate(simplified_table())  # 銷售總監 is 销售总监
    if not text:
        return ""
    text = re.split(r"兼|/|、|&", text)[0].strip() or text  # "董事长兼总经理": the first role leads
    key = re.sub(r"[\s._-]+", "", text.casefold())
    if key in _LOOKUP:
        return _LOOKUP[key]
    dept = _DEPT_ROLE.match(key)  # "客服部经理" -> "客服经理"
    if dept:
        return _LOOKUP.get(dept.group(1) + dept.group(2), dept.group(1) + dept.group(2))
    return text
