"""Export-shaped lead files with known truth: the way real CRM, OA, form and trade-show exports look.

Unlike ``sample_data`` (clean header names, one kind per column), these files carry what real
exports carry: 客户名称 holding people next to 单位名称 holding companies, 被推荐人 next to 推荐人,
owner columns (负责人/跟进人/销售/Owner), mixed 手机/微信 and 联系方式 columns, landlines with
extensions and ``+86 571`` forms, a mobile and a landline in one cell, 149 numbers, romanized names,
salutation-only names and homophones, shared role mailboxes, confusable names at one company
(汪伟/王伟, 张杰/张洁), a date under an unknown header, ASCII vs full-width brackets in company
names, and the containers: .xlsx (with a hidden sheet), GBK CSV, an HTML table saved as .xls and a
SpreadsheetML 2003 workbook saved as .xls (with a hidden sheet).

``write_export_files(dir)`` writes the files and returns the truth (file, sheet, source_row,
person_id); ``pairwise_scores`` compares a lead assignment with it.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
from pypinyin import lazy_pinyin

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾田董袁潘蒋蔡余杜叶程苏魏吕汪"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华兰萍红鹏辉建文斌波宇浩凯峰晨欣怡婷雪琳颖佳慧倩"
# Characters read alike (toneless pinyin): the slips operators make when a name is said on the phone.
HOMOPHONES = {"伟": "玮炜", "静": "晶婧", "杰": "洁捷", "明": "铭鸣", "丽": "莉俪", "军": "君均", "芳": "方",
              "磊": "垒", "涛": "滔", "敏": "旻", "强": "墙", "晨": "辰", "婷": "亭", "峰": "锋", "华": "骅",
              "欣": "馨", "佳": "嘉", "慧": "惠", "琳": "林", "宇": "雨", "浩": "昊", "红": "虹", "英": "瑛"}
# Pairs of different people who work at one company and whose names sound (or look) alike.
CONFUSABLE = [("王伟", "汪伟"), ("张杰", "张洁"), ("李静", "李晶"), ("陈晨", "陈辰"), ("刘洋", "刘阳"),
              ("杨帆", "杨凡")]
SALUTATIONS = ["总", "工", "经理", "老师"]
CITIES = [("杭州", "0571"), ("北京", "010"), ("上海", "021"), ("深圳", "0755"), ("成都", "028"), ("南京", "025")]
CORES = ["星海", "远航", "博瑞", "金石", "云帆", "恒信", "华腾", "智源", "瑞德", "东升", "鼎新", "安泰", "启明",
         "天合", "众诚", "宏图"]
INDUSTRIES = ["科技", "贸易", "软件", "物流", "医疗器械", "教育咨询", "新材料", "电子"]
LEGAL = ["有限公司", "股份有限公司", "有限责任公司"]
MOBILE_PREFIXES = ["138", "139", "135", "186", "177", "150", "189", "158", "199", "166"]
DOMAINS = ["qq.com", "163.com", "126.com", "foxmail.com", "sina.com"]
ROLE_LOCALS = ["info", "hr", "sales", "service"]
OWNERS = ["刘洋", "陈静", "赵磊", "孙丽", "周杰"]  # the sales team: never a lead's own name


@dataclass
class ExportSet:
    files: list[Path]
    truth: pd.DataFrame  # file, sheet, source_row, person_id, name (the person's true name)


def _pinyin(text: str) -> list[str]:
    return lazy_pinyin(text)


def romanize(name: str, style: int) -> str:
    """A Chinese name the ways English-language exports write it."""
    sur, given = _pinyin(name[0])[0], "".join(_pinyin(name[1:]))
    parts = _pinyin(name[1:])
    hyphenated = "-".join(p.capitalize() for p in parts)
    forms = [
        f"{sur.capitalize()} {given.capitalize()}",  # Zhang Wei
        f"{given.capitalize()} {sur.capitalize()}",  # Wei Zhang
        f"{sur.upper()} {given.capitalize()}",  # ZHANG Wei
        f"{sur.capitalize()}, {given.capitalize()}",  # Zhang, Wei
        f"{hyphenated} {sur.capitalize()}",  # Xiao-Ming Zhang
    ]
    return forms[style % len(forms)]


def _homophone(rng: random.Random, name: str) -> str:
    for i in range(len(name) - 1, 0, -1):
        alikes = [c for c in HOMOPHONES.get(name[i], "") if _pinyin(c) == _pinyin(name[i])]
        if alikes:
            return name[:i] + rng.choice(alikes) + name[i + 1:]
    return name


def _company_names(rng: random.Random, n: int) -> list[dict]:
    seen: set[str] = set()
    companies = []
    n = min(n, len(CORES) * len(INDUSTRIES))  # each core name once: no two firms share a key
    while len(companies) < n:
        city, area = rng.choice(CITIES)
        core = rng.choice(CORES) + rng.choice(INDUSTRIES)
        if core in seen:
            continue
        seen.add(core)
        branch = rng.random() < 0.35  # 星海科技（杭州）有限公司: the bracket that exports write two ways
        legal = f"{core}（{city}）{rng.choice(LEGAL)}" if branch else f"{city}{core}{rng.choice(LEGAL)}"
        domain = "".join(_pinyin(core[:2])) + rng.choice([".com", ".cn", ".com.cn"])
        companies.append({"company": legal, "switchboard": f"{area}-{rng.randrange(2, 9)}{rng.randrange(10**6, 10**7)}",
                          "area": area, "domain": domain})
    return companies


def _mobile(rng: random.Random) -> str:
    prefix = "149" if rng.random() < 0.08 else rng.choice(MOBILE_PREFIXES)  # 149: real, not in libphonenumber
    return prefix + f"{rng.randrange(10**8):08d}"


def make_people(rng: random.Random, n: int) -> tuple[list[dict], list[dict]]:
    companies = _company_names(rng, max(6, n // 5))
    people: list[dict] = []
    used: set[str] = set()

    def add(name: str, company: dict) -> None:
        pid = len(people)
        local = "".join(_pinyin(name)) + str(rng.randrange(10, 9999))
        ext = str(rng.randrange(8001, 8999)) if rng.random() < 0.5 else ""
        people.append({
            "person_id": pid, "name": name, "company": company, "mobile": _mobile(rng),
            "email": f"{local}@{rng.choice(DOMAINS + [company['domain']])}" if rng.random() < 0.75 else "",
            "wechat": f"{rng.choice('abcdefghjkmnpqrstwxyz')}{local[:6]}_{rng.randrange(10, 99)}"
                      if rng.random() < 0.55 else "",
            "landline": f"{company['switchboard']}-{ext}" if ext else "",
            "ext": ext,
        })

    for a, b in CONFUSABLE:  # two different people, one company
        company = rng.choice(companies)
        add(a, company)
        add(b, company)
        used.update((a, b))
    while len(people) < n:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.55 else "")
        if name in used or name in OWNERS:
            continue
        used.add(name)
        add(name, rng.choice(companies))
    return people, companies


# -- how each kind of value is written ---------------------------------------------------------------
def mobile_text(rng: random.Random, m: str) -> str:
    return rng.choice([m, m, f"{m[:3]}-{m[3:7]}-{m[7:]}", f"+86 {m[:3]} {m[3:7]} {m[7:]}", f"{m[:3]} {m[3:7]} {m[7:]}",
                       f"86-{m}"])


def landline_text(rng: random.Random, p: dict) -> str:
    area, local = p["company"]["switchboard"].split("-")
    ext = p["ext"]
    return rng.choice([f"{area}-{local}-{ext}", f"{area}-{local}转{ext}", f"({area}){local} ext. {ext}",
                       f"+86 {area[1:]} {local[:4]} {local[4:]}-{ext}", f"{area}-{local} 分机{ext}"])


def name_text(rng: random.Random, name: str, english: bool = False) -> str:
    if english:
        return romanize(name, rng.randrange(5))
    style = rng.random()
    if style < 0.66:
        return name
    if style < 0.80:
        return name[0] + rng.choice(SALUTATIONS)  # 王总, 陈工
    if style < 0.92:
        return _homophone(rng, name)
    return f"{name}({rng.choice(['先生', '女士'])})"


def company_text(rng: random.Random, company: str, ascii_brackets: bool) -> str:
    text = company.replace("（", "(").replace("）", ")") if ascii_brackets else company
    return text if rng.random() < 0.8 else text.replace("股份有限公司", "").replace("有限责任公司", "").replace("有限公司", "")


def email_text(rng: random.Random, p: dict) -> str:
    """The person's own address, or now and then the company's shared mailbox instead."""
    if rng.random() < 0.18:
        return f"{rng.choice(ROLE_LOCALS[:2])}@{p['company']['domain']}"
    return p["email"]


def date_text(rng: random.Random, day: int, style: str) -> str:
    stamp = pd.Timestamp("2026-01-05") + pd.Timedelta(days=day, minutes=rng.randrange(600, 1100))
    return stamp.strftime({"slash": "%Y/%m/%d %H:%M", "iso": "%Y-%m-%d", "cn": "%Y年%m月%d日"}[style])


# -- the files --------------------------------------------------------------------------------------
def _contacts(rng: random.Random, p: dict) -> dict:
    """Which contacts a record carries: at least one, as exports drop columns per row."""
    shown = {"mobile": rng.random() < 0.75, "email": rng.random() < 0.5 and bool(p["email"]),
             "wechat": rng.random() < 0.4 and bool(p["wechat"]), "landline": rng.random() < 0.3 and bool(p["ext"])}
    if not any(shown.values()):
        shown["mobile"] = True
    return shown


def _crm_rows(rng, people):
    """CRM customer list: 客户名称 = the person, 单位名称 = the company, mixed 手机/微信, 负责人, 最后跟进."""
    rows = []
    for p in people:
        c = _contacts(rng, p)
        mixed = mobile_text(rng, p["mobile"]) if c["mobile"] or not p["wechat"] else p["wechat"]
        rows.append({"_pid": p["person_id"], "序号": len(rows) + 1, "客户名称": name_text(rng, p["name"]),
                     "单位名称": company_text(rng, p["company"]["company"], False), "手机/微信": mixed,
                     "邮箱": email_text(rng, p) if c["email"] else "", "负责人": rng.choice(OWNERS),
                     "最后跟进": date_text(rng, rng.randrange(300), "slash"), "备注": rng.choice(["", "", "已报价", "意向强"])})
    return rows


def _referral_rows(rng, people):
    """Referrals: 推荐人 (someone else, often another customer) next to 被推荐人 (the lead), 联系方式 mixed."""
    rows = []
    everyone = [q["name"] for q in people]
    for p in people:
        c = _contacts(rng, p)
        kinds = [k for k in ("mobile", "email", "wechat", "landline") if c[k]]
        kind = rng.choice(kinds)
        if kind == "mobile":
            value = mobile_text(rng, p["mobile"])
        elif kind == "email":
            value = email_text(rng, p)
        else:
            value = p["wechat"] if kind == "wechat" else landline_text(rng, p)
        rows.append({"_pid": p["person_id"], "推荐人": rng.choice(everyone), "被推荐人": name_text(rng, p["name"]),
                     "联系方式": value, "公司": company_text(rng, p["company"]["company"], True),
                     "跟进人": rng.choice(OWNERS)})
    return rows


def _english_rows(rng, people):
    """A trade-show export in English: romanized names, +86 forms, extensions, Owner, Last Contact."""
    rows = []
    for p in people:
        c = _contacts(rng, p)
        phones = []
        if c["mobile"]:
            phones.append(mobile_text(rng, p["mobile"]))
        if c["landline"]:
            phones.append(landline_text(rng, p))
        rows.append({"_pid": p["person_id"], "Full Name": name_text(rng, p["name"], english=True),
                     "Company": company_text(rng, p["company"]["company"], rng.random() < 0.5),
                     "Phone": " / ".join(phones), "Email": email_text(rng, p) if c["email"] else "",
                     "Owner": romanize(rng.choice(OWNERS), 0), "Last Contact": date_text(rng, rng.randrange(300), "iso")})
    return rows


def _oa_rows(rng, people):
    """An OA back office: 电话 holds a mobile and a landline separated by one space, 销售, 最近联系."""
    rows = []
    for p in people:
        c = _contacts(rng, p)
        phone = mobile_text(rng, p["mobile"]).replace(" ", "") if c["mobile"] else ""
        if p["ext"] and (c["landline"] or not phone):
            area, local = p["company"]["switchboard"].split("-")
            landline = f"{area}-{local}-{p['ext']}"
            phone = f"{phone} {landline}".strip()
        if not phone:
            phone = p["mobile"]
        rows.append({"_pid": p["person_id"], "姓名": name_text(rng, p["name"]), "电话": phone,
                     "单位": company_text(rng, p["company"]["company"], rng.random() < 0.5), "销售": rng.choice(OWNERS),
                     "最近联系": date_text(rng, rng.randrange(300), "cn")})
    return rows


def _form_rows(rng, people):
    """A web-form export: clean headers, full-width brackets, a shared mailbox now and then."""
    rows = []
    for p in people:
        c = _contacts(rng, p)
        rows.append({"_pid": p["person_id"], "联系人": name_text(rng, p["name"]),
                     "手机": mobile_text(rng, p["mobile"]) if c["mobile"] or not (p["email"] or p["wechat"]) else "",
                     "邮箱": email_text(rng, p) if c["email"] or not c["mobile"] else "",
                     "微信号": p["wechat"] if c["wechat"] else "",
                     "公司名称": company_text(rng, p["company"]["company"], False),
                     "提交时间": date_text(rng, rng.randrange(300), "iso")})
    return rows


def _ad_rows(rng, people):
    """An ad platform's lead list: 客户名称 holds people and there is no company column at all."""
    rows = []
    for p in people:
        c = _contacts(rng, p)
        rows.append({"_pid": p["person_id"], "客户名称": name_text(rng, p["name"]),
                     "手机": mobile_text(rng, p["mobile"]) if c["mobile"] or not p["wechat"] else "",
                     "微信": p["wechat"] if c["wechat"] or not c["mobile"] else "", "跟进人": rng.choice(OWNERS),
                     "最后跟进": date_text(rng, rng.randrange(300), "slash")})
    return rows


def _frame(rows: list[dict]) -> tuple[pd.DataFrame, list[int]]:
    frame = pd.DataFrame(rows)
    return frame.drop(columns="_pid").astype(str), frame["_pid"].tolist()


def write_html_xls(path: Path, frame: pd.DataFrame, encoding: str = "gb18030", title: str = "") -> None:
    """An HTML table saved as .xls, as Chinese web back offices export it (charset in a meta tag)."""
    charset = "GBK" if encoding.lower() in ("gbk", "gb18030", "gb2312") else "UTF-8"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                     for row in frame.itertuples(index=False))
    caption = f"<tr><td colspan=\"{len(frame.columns)}\">{html.escape(title)}</td></tr>\n" if title else ""
    text = (f'<html xmlns:x="urn:schemas-microsoft-com:office:excel"><head>'
            f'<meta http-equiv="Content-Type" content="text/html; charset={charset}"></head><body>'
            f'<table border="1">\n{caption}<tr>{head}</tr>\n{body}\n</table></body></html>')
    path.write_bytes(text.encode(encoding))


def spreadsheetml(sheets: list[tuple[str, pd.DataFrame, bool]]) -> str:
    """SpreadsheetML 2003 text: each sheet (name, table, hidden)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<?mso-application progid="Excel.Sheet"?>',
             '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
             'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet" '
             'xmlns:x="urn:schemas-microsoft-com:office:excel">']
    for name, frame, hidden in sheets:
        parts.append(f"<Worksheet ss:Name={quoteattr(name)}><Table>")
        for row in [list(frame.columns), *frame.itertuples(index=False)]:
            cells = "".join(f'<Cell><Data ss:Type="String">{escape(str(v))}</Data></Cell>' if str(v) else "<Cell/>"
                            for v in row)
            parts.append(f"<Row>{cells}</Row>")
        parts.append("</Table>")
        if hidden:
            parts.append('<WorksheetOptions xmlns="urn:schemas-microsoft-com:office:excel">'
                         "<Visible>SheetHidden</Visible></WorksheetOptions>")
        parts.append("</Worksheet>")
    parts.append("</Workbook>")
    return "\n".join(parts)


def _staff_sheet() -> pd.DataFrame:
    """The sales team's own phone list: a hidden sheet that must not become leads."""
    return pd.DataFrame({"姓名": OWNERS, "手机": [f"1360571{i:04d}" for i in range(len(OWNERS))]})


def write_export_files(out_dir: str | Path, people: int = 240, seed: int = 11) -> ExportSet:
    """Seven export-shaped files about `people` people, each person in two to four of them."""
    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    persons, _ = make_people(rng, people)
    makers = [("CRM客户导出.xlsx", _crm_rows), ("转介绍名单.csv", _referral_rows), ("expo_leads_en.xlsx", _english_rows),
              ("OA客户台账.xls", _oa_rows), ("表单线索.xls", _form_rows), ("广告线索_GBK.csv", _ad_rows),
              ("OA导出_utf8.xls", _oa_rows)]
    chosen: dict[int, list[dict]] = {i: [] for i in range(len(makers))}
    for p in persons:  # each person appears in two to four files
        for i in rng.sample(range(len(makers)), rng.choice([2, 2, 3, 3, 4])):
            chosen[i].append(p)
    files, truths = [], []
    for i, (file_name, maker) in enumerate(makers):
        group = chosen[i]
        rng.shuffle(group)
        frame, pids = _frame(maker(rng, group))
        path = out / file_name
        sheet, first_data_row = "Sheet1", 2
        if file_name.endswith(".xlsx"):
            sheet = "客户列表" if "CRM" in file_name else "Leads"
            with pd.ExcelWriter(path, engine="openpyxl") as writer:
                frame.to_excel(writer, index=False, sheet_name=sheet)
                if "CRM" in file_name:
                    _staff_sheet().to_excel(writer, index=False, sheet_name="员工")
                    writer.sheets["员工"].sheet_state = "hidden"
        elif file_name.endswith(".csv"):
            sheet = path.stem
            frame.to_csv(path, index=False, encoding="gb18030")
        elif file_name.startswith("OA"):
            encoding = "utf-8" if "utf8" in file_name else "gb18030"
            write_html_xls(path, frame, encoding, title="客户台账（导出）")
            sheet, first_data_row = "Sheet1", 3
        else:
            sheet = "线索"
            path.write_text(spreadsheetml([(sheet, frame, False), ("下拉选项", _staff_sheet(), True)]),
                            encoding="utf-8")
        files.append(path)
        truths.append(pd.DataFrame({"file": path.name, "sheet": sheet,
                                    "source_row": range(first_data_row, first_data_row + len(frame)),
                                    "person_id": pids, "name": [persons[pid]["name"] for pid in pids]}))
    return ExportSet(files=files, truth=pd.concat(truths, ignore_index=True))


def pairwise_scores(truth: pd.DataFrame, predicted: pd.Series) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a lead assignment (one label per truth row; NaN = alone)."""
    labels = predicted.reset_index(drop=True).astype(object)
    alone = labels.isna()
    labels[alone] = [f"__alone_{i}" for i in range(int(alone.sum()))]
    frame = pd.DataFrame({"person": truth["person_id"].to_numpy(), "lead": labels.to_numpy()})

    def pairs(counts: pd.Series) -> int:
        return int((counts * (counts - 1) // 2).sum())

    true_pairs = pairs(frame.groupby("person").size())
    predicted_pairs = pairs(frame.groupby("lead").size())
    both = pairs(frame.groupby(["person", "lead"]).size())
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": true_pairs,
            "predicted_pairs": predicted_pairs}
