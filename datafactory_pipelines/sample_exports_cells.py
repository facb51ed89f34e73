"""Export-shaped files for reading cells, with the true person of every row (benchmarks/score_exports.py).

Families of habits the header-and-column reading gets wrong, each a real .xlsx or .csv:
- 联系人合一: the contact person and the number in one cell (`联系人: 罗博/136…`, `张伟 138…`, `张伟（销售总监）`),
  no phone column; slash dates month first;
- 备注联系方式 (CSV): the mobile now in 手机, now only in 备注 (`备用: 139…`, `手机139…`, `微信: …`, `QQ …`),
  a mobile Excel wrote in scientific notation beside a 座机 column; dates day first;
- 客户编号: a customer code and an order number beside names, some rows with no contact at all;
- 港台客户: Traditional Chinese headers and values (聯絡人, 職稱, 行動電話, 公司名稱, 電郵, 備註);
- 拜访记录: one person on several rows, our own switchboard on every row under 客服电话, dates as 2026年3月;
- 无表头 (CSV): no header row at all; 缩写表头: headers in pinyin abbreviations (xm, sj, dw, yx);
- 多联系人: 联系人1/电话1 … 联系人3/电话3 of one company in one row;
- 登记表: a whole registration written into one cell.

Each person appears in two to four of the files. The truth has `part` (which person of a row, from 0, in
the order the row names them) and `has_contact` (the row carries a real contact of the person).
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import zhconv

from datafactory_pipelines.sample_exports import ExportSet, email_text, make_people, mobile_text

TITLES = ["销售总监", "采购经理", "技术总监", "总经理", "财务经理", "市场经理", "行政专员"]
OUR_SWITCHBOARD = "0571-86601234"  # the seller's own number, on every row of its visit log
ABBREVIATED = {"name": "xm", "mobile": "sj", "company": "dw", "email": "yx"}


def _qq(p: dict) -> str:
    return str(100000 + (p["person_id"] * 7919 + 12345) % 900000000)


def _date(rng: random.Random, style: str) -> str:
    day = pd.Timestamp("2026-01-05") + pd.Timedelta(days=rng.randrange(300))
    return {"mdy": f"{day.month}/{day.day}/{day.year}", "dmy": f"{day.day}/{day.month}/{day.year}",
            "ym": f"{day.year}年{day.month}月", "dots": f"{day.year}.{day.month}.{day.day}"}[style]


def _row(pid: int, has_contact: bool = True, **cells: str) -> dict:
    return {"_pid": pid, "_contact": has_contact, **cells}


def _combined(rng: random.Random, people: list[dict]) -> list[dict]:
    rows = []
    for p in people:
        m, form = p["mobile"], rng.randrange(4)
        cell = [f"联系人: {p['name']}/{m}", f"{p['name']} {mobile_text(rng, m)}", f"{p['name']}（{rng.choice(TITLES)}）",
                f"{p['name']}，{m}"][form]
        email = email_text(rng, p) if form == 2 or rng.random() < 0.3 else ""
        has = form != 2 or bool(email)
        rows.append(_row(p["person_id"], has, 联系人=cell, 邮箱=email if p["email"] else "",
                         公司=p["company"]["company"], 日期=_date(rng, "mdy")))
        if form == 2 and not p["email"]:
            rows[-1]["_contact"] = False
    return rows


def _remarks(rng: random.Random, people: list[dict]) -> list[dict]:
    rows = []
    for p in people:
        m, form = p["mobile"], rng.randrange(6)
        mobile, landline, remark, has = m, "", rng.choice(["", "已报价", "意向强"]), True
        if form == 1:
            mobile, remark = "", f"备用: {m}"
        elif form == 2:
            mobile, remark = "", f"客户说换了新号，手机{m[:3]}-{m[3:7]}-{m[7:]}"
        elif form == 3 and p["wechat"]:
            mobile, remark = "", f"微信: {p['wechat']}"
        elif form == 4:
            mobile, remark = "", f"QQ {_qq(p)}"
            has = False  # a QQ number no other file knows: reachable, but it links nobody
        elif form == 5 and p["landline"]:
            mobile, landline = f"{int(m[0])}.{m[1:6]}E+10", p["landline"]  # Excel's 1.38001E+10
        rows.append(_row(p["person_id"], has or form == 4, 姓名=p["name"], 手机=mobile, 座机=landline, 备注=remark,
                         登记日期=_date(rng, "dmy")))
    return rows


def _codes(rng: random.Random, people: list[dict]) -> list[dict]:
    rows = []
    for i, p in enumerate(people):
        has = rng.random() < 0.7
        rows.append(_row(p["person_id"], has, 客户编号=f"C{100123 + i:06d}", 姓名=p["name"],
                         手机=mobile_text(rng, p["mobile"]) if has else "", 公司=p["company"]["company"],
                         订单号=f"2026120{rng.randrange(1, 9)}{i:06d}"))
    return rows


def _traditional(rng: random.Random, people: list[dict]) -> list[dict]:
    rows = []
    for p in people:
        tw = zhconv.convert(p["name"], "zh-tw")
        rows.append(_row(p["person_id"], True, **{"聯絡人": tw, "職稱": zhconv.convert(rng.choice(TITLES), "zh-tw"),
                                                  "行動電話": mobile_text(rng, p["mobile"]),
                                                  "公司名稱": zhconv.convert(p["company"]["company"], "zh-tw"),
                                                  "電郵": p["email"] if rng.random() < 0.4 else "",
                                                  "備註": zhconv.convert(rng.choice(["", "已聯繫", "待回覆"]), "zh-tw")}))
    return rows


def _visits(rng: random.Random, people: list[dict]) -> list[dict]:
    rows = []
    for p in people:
        for _ in range(rng.randrange(2, 5)):
            has = rng.random() < 0.6
            rows.append(_row(p["person_id"], has, 拜访月份=_date(rng, "ym"), 客户=p["name"],
                             联系电话=p["mobile"] if has else "", 客服电话=OUR_SWITCHBOARD,
                             拜访内容=rng.choice(["介绍产品", "回访", "报价"])))
    rng.shuffle(rows)
    return rows


def _headerless(rng: random.Random, people: list[dict]) -> list[dict]:
    return [_row(p["person_id"], True, a=p["name"], b=mobile_text(rng, p["mobile"]), c=p["company"]["company"],
                 d=p["email"] if rng.random() < 0.4 else "") for p in people]


def _abbreviated(rng: random.Random, people: list[dict]) -> list[dict]:
    return [_row(p["person_id"], True, xm=p["name"], sj=mobile_text(rng, p["mobile"]), dw=p["company"]["company"],
                 yx=p["email"] if rng.random() < 0.4 else "") for p in people]


def _registrations(rng: random.Random, people: list[dict]) -> list[dict]:
    rows = []
    for p in people:
        parts = [f"姓名：{p['name']}", f"电话：{mobile_text(rng, p['mobile'])}", f"公司：{p['company']['company']}"]
        if rng.random() < 0.5:
            parts.append(f"职位：{rng.choice(TITLES)}")
        if p["email"] and rng.random() < 0.4:
            parts.append(f"邮箱：{p['email']}")
        rows.append(_row(p["person_id"], True, 登记信息=rng.choice([" ", "；", "，"]).join(parts),
                         提交时间=_date(rng, "dots")))
    return rows


def _several_per_row(rng: random.Random, people: list[dict]) -> list[list[dict]]:
    """Rows of up to three contact people of one company: [{person cells}, …] per row."""
    by_company: dict[str, list[dict]] = {}
    for p in people:
        by_company.setdefault(p["company"]["company"], []).append(p)
    rows = []
    for group in by_company.values():
        for at in range(0, len(group), 3):
            rows.append(group[at:at + 3])
    rng.shuffle(rows)
    return rows


FAMILIES = [("联系人合一.xlsx", _combined), ("备注联系方式.csv", _remarks), ("客户编号.xlsx", _codes),
            ("港台客户.xlsx", _traditional), ("拜访记录.xlsx", _visits), ("无表头.csv", _headerless),
            ("缩写表头.xlsx", _abbreviated), ("多联系人.xlsx", _several_per_row), ("登记表.xlsx", _registrations)]


def _write(path: Path, frame: pd.DataFrame, header: bool = True) -> str:
    """The file as the export writes it; returns the sheet name the reader gives it."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, header=header, encoding="gb18030" if header else "utf-8")
        return path.stem
    frame.to_excel(path, index=False, header=header, sheet_name="Sheet1", engine="openpyxl")
    return "Sheet1"


def write_cell_files(out_dir: str | Path, people: int = 240, seed: int = 11) -> ExportSet:
    rng = random.Random(seed * 7 + 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    persons, _ = make_people(rng, people)
    chosen: dict[int, list[dict]] = {i: [] for i in range(len(FAMILIES))}
    for p in persons:
        for i in rng.sample(range(len(FAMILIES)), rng.choice([2, 2, 3, 4])):
            chosen[i].append(p)
    files, truths = [], []
    for i, (file_name, maker) in enumerate(FAMILIES):
        group = chosen[i]
        rng.shuffle(group)
        path = out / file_name
        if maker is _several_per_row:
            frame, truth = _several_frame(rng, maker(rng, group))
            sheet = _write(path, frame)
        else:
            rows = maker(rng, group)
            frame = pd.DataFrame(rows).drop(columns=["_pid", "_contact"]).astype(str)
            sheet = _write(path, frame, header=maker is not _headerless)
            first = 1 if maker is _headerless else 2
            truth = pd.DataFrame({"source_row": range(first, first + len(rows)), "part": 0,
                                  "person_id": [r["_pid"] for r in rows], "has_contact": [r["_contact"] for r in rows]})
        truth.insert(0, "sheet", sheet)
        truth.insert(0, "file", path.name)
        truth["name"] = [persons[pid]["name"] for pid in truth["person_id"]]
        files.append(path)
        truths.append(truth)
    return ExportSet(files=files, truth=pd.concat(truths, ignore_index=True))


def _several_frame(rng: random.Random, rows: list[list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    cells, truth = [], []
    for r, group in enumerate(rows):
        row = {"公司名称": group[0]["company"]["company"]}
        for k in range(3):
            p = group[k] if k < len(group) else None
            row[f"联系人{k + 1}"] = p["name"] if p else ""
            row[f"电话{k + 1}"] = mobile_text(rng, p["mobile"]) if p else ""
            if p:
                truth.append({"source_row": r + 2, "part": k, "person_id": p["person_id"], "has_contact": True})
        row["地址"] = f"{group[0]['company']['company'][:2]}市某路{rng.randrange(1, 300)}号"
        cells.append(row)
    return pd.DataFrame(cells), pd.DataFrame(truth)
