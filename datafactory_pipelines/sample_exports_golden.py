"""Export-shaped files for the golden record: one company written many ways, people who move, and the truth.

What a sales team's exports do to a company and a person over a year, as .xlsx files:
- a CRM list writes the registered Chinese name (广州光正机械有限公司), now and then with the city in
  brackets (光正机械（广州）有限公司) or the short name (光正机械);
- a trade-show list in English writes the English name ("Guangzhou Guangzheng Machinery Co., Ltd.");
- a call log writes the short name or the brand (光正) once per call, and names the person as the caller
  heard them: the full name, 张先生 / 王总, 小张 / 阿伟, or nothing at all beside the number;
- people at a branch (…上海分公司) have it written in full by the CRM, their parent's names elsewhere;
- people change jobs and mobiles: rows before the change carry the old values.

`write_golden_exports(dir)` writes the files and returns the truth: per row the person, the row's date
and the person's real company, mobile and email at that date, and whether the row wrote each of them in
full. `golden_report` scores a store's golden records against the people's latest real values, among
the people whose rows allow it (some row wrote that value in full).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pypinyin import lazy_pinyin

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾田董袁潘蒋蔡余杜叶程苏魏吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华兰萍红鹏辉建文斌波宇浩凯峰晨欣怡婷雪琳颖佳慧倩"
TRADE_NAMES = ["光正", "艺慈元", "星海", "远航", "博瑞", "金石", "云帆", "恒信", "华腾", "智源", "瑞德", "东升",
               "鼎新", "安泰", "启明", "天合", "众诚", "宏图", "盛世", "嘉禾", "正和", "百川"]
# a line of business and how English names write it
INDUSTRIES = [("机械", "Machinery"), ("贸易", "Trading"), ("科技", "Technology"), ("电子", "Electronics"),
              ("物流", "Logistics"), ("软件", "Software"), ("医疗器械", "Medical Equipment"), ("新材料", "New Materials")]
LEGAL = [("有限公司", "Co., Ltd."), ("股份有限公司", "Co., Ltd."), ("有限公司", "Co.,Ltd")]
CITIES = ["广州", "上海", "深圳", "杭州", "成都", "南京", "北京", "苏州"]
SALUTATIONS = ["先生", "女士", "总", "经理"]
DOMAINS = ["qq.com", "163.com", "126.com", "foxmail.com"]
START = pd.Timestamp("2026-01-05")


@dataclass
class GoldenExportSet:
    files: list[Path]
    truth: pd.DataFrame  # file, sheet, source_row, person_id, at, true_company/mobile/email, wrote_company/…


def _pinyin(text: str) -> str:
    return "".join(lazy_pinyin(text))


def _companies(rng: random.Random) -> list[dict]:
    """Each company once per trade name: its registered name and the other ways people write it."""
    out = []
    for trade in TRADE_NAMES:
        city = rng.choice(CITIES)
        industry, industry_en = rng.choice(INDUSTRIES)
        legal, legal_en = rng.choice(LEGAL)
        out.append({
            "legal": f"{city}{trade}{industry}{legal}",
            "bracketed": f"{trade}{industry}（{city}）{legal}",
            "short": f"{trade}{industry}",
            "brand": trade,
            "english": f"{_pinyin(city).capitalize()} {_pinyin(trade).capitalize()} {industry_en} {legal_en}",
            "branch_of": None,
        })
    return out


def _branch(rng: random.Random, parent: dict) -> dict:
    city = rng.choice([c for c in CITIES if c not in parent["legal"]])
    branch = f"{parent['legal']}{city}分公司"
    return {**parent, "legal": branch, "bracketed": branch, "branch_of": parent}


def _mobile(rng: random.Random) -> str:
    return rng.choice(["138", "139", "135", "186", "177", "150", "189", "158"]) + f"{rng.randrange(10**8):08d}"


def make_golden_people(rng: random.Random, n: int) -> list[dict]:
    """People with a timeline: a company (sometimes a branch), a mobile, an email; some change jobs or
    mobiles at a day of the year (rows after it carry the new values)."""
    companies = _companies(rng)
    people, used = [], set()
    while len(people) < n:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        if name in used:
            continue
        used.add(name)
        company = rng.choice(companies)
        if rng.random() < 0.12:
            company = _branch(rng, company)
        later_company = rng.choice([c for c in companies if c["brand"] != company["brand"]]) \
            if rng.random() < 0.2 else None
        local = _pinyin(name) + str(rng.randrange(10, 999))
        people.append({
            "person_id": len(people), "name": name, "company": company, "later_company": later_company,
            "mobile": _mobile(rng), "later_mobile": _mobile(rng) if rng.random() < 0.15 else None,
            "email": f"{local}@{rng.choice(DOMAINS)}" if rng.random() < 0.7 else "",
            "change_day": rng.randrange(120, 240),
        })
    return people


def _at(p: dict, day: int) -> dict:
    """The person's real values on that day."""
    moved = day >= p["change_day"]
    company = p["later_company"] if moved and p["later_company"] else p["company"]
    mobile = p["later_mobile"] if moved and p["later_mobile"] else p["mobile"]
    return {"company": company, "mobile": mobile, "email": p["email"]}


def _name_as_heard(rng: random.Random, name: str) -> str:
    roll = rng.random()
    if roll < 0.55:
        return name
    if roll < 0.7:
        return name[0] + rng.choice(SALUTATIONS)  # 张先生, 王总
    if roll < 0.82:
        return rng.choice(["小", "老"]) + name[0] if rng.random() < 0.6 else "阿" + name[-1]  # 小张, 老张, 阿伟
    return ""  # the caller gave no name: the number is the person


def _row(p: dict, day: int, company_text: str, mobile: bool, email: bool) -> tuple[dict, dict]:
    """What a row writes of the person, and its truth."""
    real = _at(p, day)
    wrote_company = company_text == real["company"]["legal"]  # the registered name, in full
    cells = {"mobile": real["mobile"] if mobile else "", "email": real["email"] if email else ""}
    truth = {"person_id": p["person_id"], "at": (START + pd.Timedelta(days=day)).strftime("%Y-%m-%d"),
             "true_company": real["company"]["legal"], "true_mobile": real["mobile"], "true_email": real["email"],
             "wrote_company": wrote_company, "wrote_mobile": mobile, "wrote_email": email and bool(real["email"])}
    return cells, truth


def _crm_rows(rng: random.Random, people: list[dict]) -> list[tuple[dict, dict]]:
    rows = []
    for p in people:
        day = rng.randrange(0, 330)
        company = _at(p, day)["company"]
        roll = rng.random()
        text = company["legal"] if roll < 0.6 else company["bracketed"] if roll < 0.75 else company["short"]
        cells, truth = _row(p, day, text, mobile=rng.random() < 0.85, email=rng.random() < 0.6)
        if not cells["mobile"] and not cells["email"]:
            cells, truth = _row(p, day, text, mobile=True, email=False)
        rows.append(({"客户姓名": p["name"], "公司名称": text, "手机": cells["mobile"], "邮箱": cells["email"],
                      "最后跟进": truth["at"]}, truth))
    return rows


def _expo_rows(rng: random.Random, people: list[dict]) -> list[tuple[dict, dict]]:
    rows = []
    for p in people:
        day = rng.randrange(0, 330)
        company = _at(p, day)["company"]
        parent = company["branch_of"] or company
        cells, truth = _row(p, day, parent["english"], mobile=True, email=rng.random() < 0.7)
        rows.append(({"Name": p["name"], "Company": parent["english"], "Mobile": cells["mobile"],
                      "Email": cells["email"], "Date": truth["at"]}, truth))
    return rows


def _call_rows(rng: random.Random, people: list[dict]) -> list[tuple[dict, dict]]:
    """A call log: one row per call, several calls per person, the short name or the brand."""
    rows = []
    for p in people:
        for _ in range(rng.choice([1, 2, 3, 4])):
            day = rng.randrange(0, 330)
            company = _at(p, day)["company"]
            parent = company["branch_of"] or company
            text = rng.choice([parent["short"], parent["brand"], parent["short"]])
            cells, truth = _row(p, day, text, mobile=True, email=False)
            rows.append(({"联系人": _name_as_heard(rng, p["name"]), "电话": cells["mobile"], "单位": text,
                          "通话日期": truth["at"]}, truth))
    return rows


MAKERS = [("CRM客户导出.xlsx", "客户", _crm_rows), ("expo_contacts_en.xlsx", "Contacts", _expo_rows),
          ("电话回访记录.xlsx", "回访", _call_rows)]


def write_golden_exports(out_dir: str | Path, people: int = 200, seed: int = 11) -> GoldenExportSet:
    """Three .xlsx exports about `people` people, each person in one to three of them."""
    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    persons = make_golden_people(rng, people)
    chosen: dict[int, list[dict]] = {i: [] for i in range(len(MAKERS))}
    for p in persons:
        for i in rng.sample(range(len(MAKERS)), rng.choice([1, 2, 2, 3])):
            chosen[i].append(p)
    files, truths = [], []
    for i, (file_name, sheet, maker) in enumerate(MAKERS):
        group = chosen[i]
        rng.shuffle(group)
        made = maker(rng, group)
        frame = pd.DataFrame([cells for cells, _ in made]).astype(str)
        truth = pd.DataFrame([t for _, t in made])
        path = out / file_name
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            frame.to_excel(writer, index=False, sheet_name=sheet)
        files.append(path)
        truths.append(truth.assign(file=path.name, sheet=sheet, source_row=range(2, 2 + len(frame))))
    return GoldenExportSet(files=files, truth=pd.concat(truths, ignore_index=True))


GOLDEN_FIELDS = ("company", "mobile", "email")
EXACT_KEYS = ("mobile", "email", "wechat", "qq")


def exact_key_labels(records: pd.DataFrame) -> pd.Series:
    """The yardstick the engine must not fall below: records sharing any standardized contact value
    (mobile, email, WeChat, QQ) are one person, transitively. records: record_id and those columns.
    Returns a label per record_id."""
    from datafactory_pipelines.linkage.clustering import components

    frame = records.reset_index(drop=True)
    left, right = [], []
    for column in EXACT_KEYS:
        if column not in frame.columns:
            continue
        values = frame[column].fillna("").astype(str)
        carried = values[values != ""]
        first = carried.groupby(carried).transform(lambda group: group.index[0])
        left.extend(first.to_numpy().tolist())
        right.extend(carried.index.tolist())
    labels = components(len(frame), np.array(left, dtype=np.int64), np.array(right, dtype=np.int64))
    return pd.Series(labels, index=frame["record_id"].to_numpy())


def golden_report(truth: pd.DataFrame, links: pd.DataFrame, leads: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per field, how often a person's golden value equals their latest real value, among the people whose
    rows allow it (one of their rows wrote that latest value in full).

    truth: file, sheet, source_row, person_id, at, true_<field> and wrote_<field> per field; links: file, sheet,
    source_row, lead_id (store.links()); leads: lead_id and the golden fields (store.leads()). A person's lead
    is the one holding most of their rows. Company names compare as standardized (brackets' width).
    """
    from datafactory_pipelines.standardize.company import standardize_companies

    rows = truth.merge(links[["file", "sheet", "source_row", "lead_id"]], on=["file", "sheet", "source_row"],
                       how="left")
    rows = rows.sort_values(["person_id", "at", "file", "source_row"])
    latest = rows.groupby("person_id").tail(1).set_index("person_id")
    lead_of = rows.dropna(subset=["lead_id"]).groupby("person_id")["lead_id"].agg(lambda s: s.value_counts().index[0])
    golden = leads.set_index("lead_id")
    report = {}
    for field in GOLDEN_FIELDS:
        value = latest[f"true_{field}"].astype(str)
        written = rows[rows[f"wrote_{field}"].astype(bool)]
        allowed = [pid for pid, v in value.items()
                   if v and (written.loc[written["person_id"] == pid, f"true_{field}"].astype(str) == v).any()]
        right = 0
        for pid in allowed:
            lead = lead_of.get(pid)
            got = str(golden.at[lead, field]) if lead is not None and lead in golden.index else ""
            want = value[pid]
            if field == "company":
                got, want = standardize_companies([got, want])["company"].tolist()
            elif field == "email":
                got, want = got.lower(), want.lower()
            right += got == want
        report[field] = {"people": len(value), "allowed": len(allowed), "right": right,
                         "share": right / len(allowed) if allowed else 1.0}
    return report
