"""Sample lead files with known truth, for the demo and the tests.

Each person gets several records spread over files from different sources. Files use
different header names, some have a title row above the header, some are GBK CSVs, and the
values carry the usual mess (phone prefixes and dashes, Excel '.0', full-width characters,
upper-case emails, salutations, traditional characters, shortened company names). Hard
negatives are included: namesakes at other companies and colleagues sharing a switchboard.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程苏魏吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华兰萍红鹏辉建国文斌波宇浩凯峰晨欣怡婷雪琳颖佳慧倩"
TRADITIONAL = str.maketrans("伟丽军杰涛华兰红鹏辉国凯颖张刘陈杨黄赵吴孙马郑谢韩冯邓叶苏吕", "偉麗軍傑濤華蘭紅鵬輝國凱穎張劉陳楊黃趙吳孫馬鄭謝韓馮鄧葉蘇呂")
CITIES = [("北京", "010"), ("上海", "021"), ("广州", "020"), ("深圳", "0755"), ("杭州", "0571"), ("成都", "028")]
CORES = ["星海", "远航", "博瑞", "金石", "云帆", "恒信", "华腾", "智源", "瑞德", "东升", "鼎新", "安泰"]
INDUSTRIES = ["科技", "贸易", "软件", "物流", "医疗设备", "教育咨询"]
TITLES = [("销售经理", ["销售经理", "Sales Manager", "销售部经理"]), ("总经理", ["总经理", "GM"]),
          ("采购经理", ["采购经理", "Purchasing Manager"]), ("市场总监", ["市场总监", "Marketing Director"]),
          ("工程师", ["工程师", "Engineer"]), ("人事专员", ["人事专员", "HR"])]
DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "foxmail.com"]
SOURCES = ["展会2026", "官网表单", "抖音广告", "客户转介绍", "400热线"]
FULL_WIDTH = str.maketrans("0123456789@", "０１２３４５６７８９＠")

HEADER_STYLES = [
    {"name": "姓名", "mobile": "手机", "email": "邮箱", "wechat": "微信", "company": "公司名称",
     "title": "职位", "source": "来源", "collected_at": "登记日期"},
    {"name": "联系人", "mobile": "联系电话", "email": "电子邮箱", "qq": "QQ号", "company": "单位",
     "title": "职务", "address": "地址", "collected_at": "收集时间"},
    {"name": "Name", "mobile": "Mobile", "email": "E-mail", "wechat": "WeChat", "company": "Company",
     "title": "Title", "source": "Source", "collected_at": "Date"},
    {"name": "客户姓名", "mobile": "手机号码(必填)", "email": "邮件地址", "douyin": "抖音号", "company": "企业名称",
     "title": "岗位", "source": "线索来源", "collected_at": "创建时间"},
]


@dataclass
class SampleSet:
    files: list[Path]
    truth: pd.DataFrame  # file, source_row, person_id, and the person's true values at that time


def _mobile(rng: random.Random) -> str:
    return rng.choice(["138", "139", "135", "186", "177", "150", "189"]) + f"{rng.randrange(10**8):08d}"


def _people(rng: random.Random, n: int) -> list[dict]:
    companies = []
    for _ in range(max(3, n // 6)):
        city, area = rng.choice(CITIES)
        companies.append({"company": f"{city}{rng.choice(CORES)}{rng.choice(INDUSTRIES)}有限公司",
                          "switchboard": f"{area}-{rng.randrange(10**7, 10**8)}"})
    people = []
    for pid in range(n):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        if pid % 40 == 39:  # a namesake of an earlier person, at another company
            name = people[pid - 20]["name"]
        local = f"{rng.choice('abcdefghjkmnpqrstwxyz')}{rng.choice('aeiou')}{rng.randrange(100, 99999)}"
        company = rng.choice(companies)
        people.append({
            "person_id": pid, "name": name, "mobile": _mobile(rng), "new_mobile": _mobile(rng),
            "email": f"{local}@{rng.choice(DOMAINS)}" if rng.random() < 0.7 else "",
            "wechat": f"wx_{local}" if rng.random() < 0.5 else "",
            "qq": str(rng.randrange(10**5, 10**10)) if rng.random() < 0.3 else "",
            "douyin": f"dy{rng.randrange(10**6, 10**9)}" if rng.random() < 0.15 else "",
            "company": company["company"], "switchboard": company["switchboard"],
            "title": rng.randrange(len(TITLES)), "changes_mobile": rng.random() < 0.08,
            "changes_job": rng.random() < 0.12,
            "address": f"{company['company'][:2]}市{rng.choice('东西南北中')}城区{rng.choice('人民解放建设')}路{rng.randrange(1, 300)}号",
        })
    return people


def _mess_mobile(rng: random.Random, m: str) -> str:
    style = rng.random()
    if style < 0.35:
        return m
    if style < 0.50:
        return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
    if style < 0.62:
        return f"{m[:3]}-{m[3:7]}-{m[7:]}"
    if style < 0.72:
        return f"{m}.0"
    if style < 0.80:
        return m.translate(FULL_WIDTH)
    if style < 0.88:
        return f"0086{m}"
    if style < 0.91:  # one digit slipped
        i = rng.randrange(3, 11)
        return m[:i] + str((int(m[i]) + 1) % 10) + m[i + 1:]
    return f" {m} "


def _mess_name(rng: random.Random, name: str) -> str:
    style = rng.random()
    if style < 0.6:
        return name
    if style < 0.7:
        return f"{name[0]} {name[1:]}"
    if style < 0.8:
        return f"{name}({rng.choice(['先生', '女士'])})"
    if style < 0.87:
        return name.translate(TRADITIONAL)
    if style < 0.9 and len(name) > 2:  # a wrong character typed (homophones are common)
        return name[0] + rng.choice(GIVEN) + name[2:]
    return name[0] + rng.choice(["总", "经理"])


def _mess_email(rng: random.Random, email: str) -> str:
    style = rng.random()
    if not email or style < 0.6:
        return email
    if style < 0.75:
        return email.upper()
    if style < 0.85:
        return email.replace("@", "＠")
    if style < 0.92:
        return f"mailto:{email}"
    return email.replace(".com", ".con")


def _record(rng: random.Random, p: dict, day: int) -> dict:
    changed = p["changes_mobile"] and day > 200
    mobile = p["new_mobile"] if changed else p["mobile"]
    shown_mobile = p["switchboard"] if rng.random() < 0.04 else _mess_mobile(rng, mobile)
    company = p["company"] if rng.random() < 0.7 else p["company"][2:].replace("有限公司", "")
    return {
        "person_id": p["person_id"], "name": _mess_name(rng, p["name"]),
        "mobile": shown_mobile if rng.random() < 0.9 else "",
        "email": _mess_email(rng, p["email"]) if rng.random() < 0.8 else "",
        "wechat": p["wechat"].upper() if p["wechat"] and rng.random() < 0.1 else p["wechat"],
        "qq": p["qq"], "douyin": p["douyin"], "company": company,
        "title": rng.choice(TITLES[(p["title"] + (2 if p["changes_job"] and day > 250 else 0)) % len(TITLES)][1]), "address": p["address"] if rng.random() < 0.5 else "",
        "source": rng.choice(SOURCES),
        "collected_at": (pd.Timestamp("2025-06-01") + pd.Timedelta(days=day)).strftime("%Y-%m-%d"),
        "true_mobile": mobile, "true_name": p["name"], "true_email": p["email"], "true_company": p["company"],
    }


def generate_records(people: int = 400, records: int = 1000, seed: int = 7) -> pd.DataFrame:
    rng = random.Random(seed)
    persons = _people(rng, people)
    rows = [_record(rng, p, rng.randrange(400)) for p in persons]
    # some people turn up far more often than others, as in real lead lists
    weights = [4.0 if rng.random() < 0.1 else 1.0 for _ in persons]
    for person in rng.choices(persons, weights=weights, k=records - people):
        rows.append(_record(rng, person, rng.randrange(400)))
    rng.shuffle(rows)
    return pd.DataFrame(rows)


def write_sample_files(out_dir: str | Path, people: int = 400, records: int = 1000, files: int = 4,
                       seed: int = 7) -> SampleSet:
    """Write `files` lead files (xlsx and csv, different headers) into out_dir, with truth."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = generate_records(people, records, seed)
    paths: list[Path] = []
    truths = []
    chunk = -(-len(table) // files)
    for i in range(files):
        part = table.iloc[i * chunk:(i + 1) * chunk]
        style = HEADER_STYLES[i % len(HEADER_STYLES)]
        sheet = part[list(style)].rename(columns=style)
        sheet["备注"] = ""  # an unknown column: kept as an extra attribute
        title_rows = 2 if i % 2 == 0 else 0  # a title and a blank row above the header
        kind = "xlsx" if i % 2 == 0 else "csv"
        path = out / f"线索_{SOURCES[i % len(SOURCES)]}_{i + 1:02d}.{kind}"
        if kind == "xlsx":
            with pd.ExcelWriter(path, engine="openpyxl") as writer:
                sheet.to_excel(writer, index=False, sheet_name="线索", startrow=title_rows)
                if title_rows:
                    writer.sheets["线索"]["A1"] = f"{SOURCES[i % len(SOURCES)]} 线索名单（导出）"
        else:
            encoding = "gb18030" if i % 4 == 1 else "utf-8-sig"
            sheet.to_csv(path, index=False, encoding=encoding)
        paths.append(path)
        header_row = title_rows + 1
        truths.append(pd.DataFrame({
            "file": path.name, "source_row": range(header_row + 1, header_row + 1 + len(part)),
            "person_id": part["person_id"].to_numpy(), "true_name": part["true_name"].to_numpy(),
            "true_mobile": part["true_mobile"].to_numpy(), "true_email": part["true_email"].to_numpy(),
            "true_company": part["true_company"].to_numpy(),
        }))
    return SampleSet(files=paths, truth=pd.concat(truths, ignore_index=True))


def write_crm_exports(out_dir: str | Path, people: int = 600, records: int = 1600, seed: int = 23,
                      overlap_days: tuple[int, int] = (140, 260)) -> SampleSet:
    """Two exports from one CRM, taken months apart: the same header, overlapping people and rows.

    The first export holds what was collected before day `overlap_days[1]`, the second what was
    collected from day `overlap_days[0]` on, so rows in between are in both. People change jobs
    (title and company) and numbers over time, so the two exports disagree about them.
    """
    rng = random.Random(seed)
    persons = _people(rng, people)
    companies = sorted({p["company"] for p in persons})
    for person in persons:  # a job change moves some people to another company as well
        person["next_company"] = rng.choice(companies) if person["changes_job"] and rng.random() < 0.6 else ""
    rows = []
    for person in [*persons, *rng.choices(persons, k=records - people)]:
        day = rng.randrange(400)
        row = _record(rng, person, day)
        if person["next_company"] and day > 250:
            row["company"] = row["true_company"] = person["next_company"]
        rows.append({**row, "day": day})
    table = pd.DataFrame(rows).sort_values(["day", "person_id"], kind="stable", ignore_index=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    style = HEADER_STYLES[0]
    paths, truths = [], []
    for number, part in enumerate((table[table["day"] < overlap_days[1]], table[table["day"] >= overlap_days[0]]), 1):
        path = out / f"CRM导出_{number}.xlsx"
        part[list(style)].rename(columns=style).to_excel(path, index=False, sheet_name="线索", engine="openpyxl")
        paths.append(path)
        truths.append(pd.DataFrame({
            "file": path.name, "source_row": range(2, 2 + len(part)), "person_id": part["person_id"].to_numpy(),
            "true_name": part["true_name"].to_numpy(), "true_mobile": part["true_mobile"].to_numpy(),
            "true_email": part["true_email"].to_numpy(), "true_company": part["true_company"].to_numpy()}))
    return SampleSet(files=paths, truth=pd.concat(truths, ignore_index=True))
