"""Export-shaped files about LAYOUT and WHO IS WHO, with the true person of every row.

The habits behind them (not the examples) are what the product must read like a person:
- a template workbook: an instructions sheet with an example table (张三 / 李四 / @example.com) before the
  data, the company cell merged down over the people who work there, a subtotal row after each company,
  a total row and a footnote under the table, then a summary sheet, a pivot sheet and our staff's phone list;
- a visit log: one person on several rows, name, company and phone merged down over that person's visits,
  and the salesperson under a header the product does not know;
- referral lists whose two name columns have headers the product does not know (or where the referrer's
  header is a word it knows for customers): the referrer repeats, the lead's name goes with the contacts;
- ledgers kept by our branches: our 分公司 / 部门 / 销售 beside the client's 客户单位, and a file where our
  branch is the only "机构" column, with namesakes (different people, one name) at one branch.

``write_layout_files(dir)`` writes them and returns an ``ExportSet``: truth rows are the people only.
``not_lead_rows`` lists the rows of those files that are not people (examples, totals, notes, summaries).
"""

from __future__ import annotations

import random
from pathlib import Path

import openpyxl
import pandas as pd

from datafactory_pipelines.sample_exports import (
    OWNERS,
    ExportSet,
    _contacts,
    company_text,
    date_text,
    email_text,
    make_people,
    mobile_text,
    name_text,
)

BRANCHES = ["重庆分公司", "成都分公司", "西安分公司", "武汉分公司"]
DEPARTMENTS = ["销售一部", "销售二部", "大客户部"]
INSTRUCTIONS = ["填写说明：", "1. 每行填写一位客户，联系人和手机为必填项。", "2. 手机号请填写11位数字，不要加空格或横线。",
                "3. 公司名称请写营业执照上的全称，例如：杭州星海科技有限公司。", "4. 负责人填写跟进该客户的销售姓名。",
                "下面是填写示例："]
EXAMPLE_ROWS = [["张三", "13800138000", "zhangsan@example.com", "XX科技有限公司", "采购经理", "李四"],
                ["李四", "13912345678", "lisi@example.com", "某某贸易公司", "总经理", "王五"]]


class _Sheet:
    """Rows written one by one, remembering which Excel row holds which person."""

    def __init__(self, sheet) -> None:
        self.sheet = sheet
        self.truth: list[tuple[int, int]] = []  # (Excel row, person_id)

    def row(self, values: list, person: int | None = None) -> int:
        self.sheet.append(values)
        at = self.sheet.max_row
        if person is not None:
            self.truth.append((at, person))
        return at


def _template_workbook(path: Path, rng: random.Random, people: list[dict]) -> dict[str, list[tuple[int, int]]]:
    """Instructions + example table, then the data grouped by company with merged company cells, subtotals,
    a grand total and a footnote, then a summary and a pivot sheet."""
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "填写说明"
    for line in INSTRUCTIONS:
        notes.append([line])
    notes.append(["联系人", "手机", "邮箱", "公司", "职务", "负责人"])
    for example in EXAMPLE_ROWS:
        notes.append(example)
    data = _Sheet(book.create_sheet("客户线索"))
    data.row(["客户线索登记表（2026年）"])
    data.sheet.merge_cells("A1:G1")  # a title merged across: a label, not a value for the rows
    data.row(["序号", "公司名称", "联系人", "手机", "邮箱", "职务", "负责人"])
    by_company: dict[str, list[dict]] = {}
    for p in people:
        by_company.setdefault(p["company"]["company"], []).append(p)
    n, owners_count = 0, {o: 0 for o in OWNERS}
    for company, group in by_company.items():
        first = None
        for p in group:
            c = _contacts(rng, p)
            owner = rng.choice(OWNERS)
            owners_count[owner] += 1
            n += 1
            at = data.row([n, company_text(rng, company, False) if first is None else None, name_text(rng, p["name"]),
                           mobile_text(rng, p["mobile"]) if c["mobile"] or not p["email"] else "",
                           email_text(rng, p) if c["email"] or not c["mobile"] else "", "", owner], p["person_id"])
            first = first or at
        if len(group) > 1:
            data.sheet.merge_cells(f"B{first}:B{first + len(group) - 1}")
            data.row(["小计", "", f"{len(group)}人", "", "", "", ""])
    data.row(["合计", "", f"{n}人", "", "", "", ""])
    data.row([])
    data.row(["注：本表数据导出自CRM系统，仅供内部跟进使用，请勿外传。"])
    summary = book.create_sheet("汇总")
    summary.append(["负责人", "线索数", "已联系", "成交"])
    for owner, count in owners_count.items():
        summary.append([owner, count, count // 2, count // 5])
    summary.append(["总计", n, n // 2, n // 5])
    pivot = book.create_sheet("透视")
    pivot.append(["行标签", "计数项:手机", "计数项:邮箱"])
    for owner, count in owners_count.items():
        pivot.append([owner, count, count // 2])
    pivot.append(["总计", n, n // 2])
    staff = book.create_sheet("员工通讯录")  # visible: our own people and their phones, not leads
    staff.append(["姓名", "手机", "邮箱", "部门"])
    for i, owner in enumerate(OWNERS):
        staff.append([owner, f"1360571{i:04d}", f"staff{i}@ourcompany.cn", rng.choice(DEPARTMENTS)])
    book.save(path)
    return {"客户线索": data.truth}


def _visit_log(path: Path, rng: random.Random, people: list[dict]) -> dict[str, list[tuple[int, int]]]:
    """One person over 2-4 visit rows: name, company and phone merged down over them; the salesperson
    under a header the product does not know (经办)."""
    book = openpyxl.Workbook()
    sheet = _Sheet(book.active)
    sheet.sheet.title = "拜访记录"
    sheet.row(["客户姓名", "单位", "联系电话", "拜访日期", "拜访内容", "经办"])
    for p in people:
        visits = rng.choice([2, 2, 3, 4])
        owner = rng.choice(OWNERS)
        first = None
        for v in range(visits):
            head = v == 0
            at = sheet.row([name_text(rng, p["name"]) if head else None,
                            company_text(rng, p["company"]["company"], False) if head else None,
                            mobile_text(rng, p["mobile"]) if head else None,
                            date_text(rng, rng.randrange(300), "iso"),
                            rng.choice(["初次拜访", "介绍产品", "送样", "报价", "回访"]), owner], p["person_id"])
            first = first or at
        for column in "ABC":
            sheet.sheet.merge_cells(f"{column}{first}:{column}{first + visits - 1}")
    book.save(path)
    return {"拜访记录": sheet.truth}


def _referral_rows(rng: random.Random, people: list[dict], referrers: list[str], lead_first: bool,
                   referrer_header: str, lead_header: str) -> tuple[list[dict], list[int]]:
    rows, pids = [], []
    for p in people:
        c = _contacts(rng, p)
        phone = mobile_text(rng, p["mobile"]) if c["mobile"] or not p["email"] else ""
        lead = (lead_header, name_text(rng, p["name"]))
        referrer = (referrer_header, rng.choice(referrers))
        pair = [lead, referrer] if lead_first else [referrer, lead]
        rows.append({**dict(pair), "电话": phone, "邮箱": email_text(rng, p) if c["email"] or not phone else "",
                     "单位": company_text(rng, p["company"]["company"], True),
                     "登记日期": date_text(rng, rng.randrange(300), "slash")})
        pids.append(p["person_id"])
    return rows, pids


def _ledger_rows(rng: random.Random, people: list[dict], branch_of: dict[int, str]) -> tuple[list[dict], list[int]]:
    """Our branch ledger: 分公司 (ours) beside 客户单位 (theirs), 销售 and 部门 (ours)."""
    rows, pids = [], []
    for p in people:
        c = _contacts(rng, p)
        rows.append({"分公司": branch_of[p["person_id"]], "客户单位": company_text(rng, p["company"]["company"], False),
                     "姓名": name_text(rng, p["name"]),
                     "手机": mobile_text(rng, p["mobile"]) if c["mobile"] or not p["email"] else "",
                     "邮箱": email_text(rng, p) if c["email"] or not c["mobile"] else "", "销售": rng.choice(OWNERS),
                     "部门": rng.choice(DEPARTMENTS)})
        pids.append(p["person_id"])
    return rows, pids


def _namesakes(rng: random.Random, persons: list[dict], companies: list[dict], k: int) -> list[dict]:
    """k people who share a name with someone else but nothing more: another firm, their own phone."""
    twins = []
    for p in rng.sample(persons, k):
        other = rng.choice([c for c in companies if c is not p["company"]])
        twins.append({**p, "person_id": len(persons) + len(twins), "company": other,
                      "mobile": f"13{rng.randrange(5, 10)}{rng.randrange(10**8):08d}", "email": "", "wechat": "",
                      "landline": "", "ext": ""})
    return twins


def _write_table(path: Path, frame: pd.DataFrame, sheet: str) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            frame.to_excel(writer, index=False, sheet_name=sheet)


def write_layout_files(out_dir: str | Path, people: int = 160, seed: int = 11) -> ExportSet:
    """The layout families about `people` people (plus namesakes), each person in two or three files."""
    rng = random.Random(seed * 7919 + 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    persons, companies = make_people(rng, people)
    twins = _namesakes(rng, persons, companies, max(4, people // 20))
    everyone = persons + twins
    names = {p["person_id"]: p["name"] for p in everyone}
    kinds = ["template", "visits", "referral_unknown", "referral_known_word", "ledger", "agency"]
    chosen: dict[str, list[dict]] = {k: [] for k in kinds}
    for p in persons:
        for kind in rng.sample(kinds, rng.choice([2, 2, 3])):
            chosen[kind].append(p)
    branch_of = {p["person_id"]: rng.choice(BRANCHES) for p in everyone}
    for twin in twins:  # each namesake pair at one branch, in both ledgers: the branch must not join them
        branch_of[twin["person_id"]] = branch_of[persons[[q["name"] for q in persons].index(twin["name"])]["person_id"]]
        for kind in ("ledger", "agency"):
            chosen[kind].append(twin)
            namesake = next(q for q in persons if q["name"] == twin["name"])
            if namesake not in chosen[kind]:
                chosen[kind].append(namesake)
    files: list[Path] = []
    truths: list[pd.DataFrame] = []

    def keep(path: Path, per_sheet: dict[str, list[tuple[int, int]]]) -> None:
        files.append(path)
        for sheet, rows in per_sheet.items():
            truths.append(pd.DataFrame({"file": path.name, "sheet": sheet, "source_row": [r for r, _ in rows],
                                        "person_id": [pid for _, pid in rows],
                                        "name": [names[pid] for _, pid in rows]}))

    def table(path: Path, sheet: str, rows: list[dict], pids: list[int]) -> None:
        _write_table(path, pd.DataFrame(rows).astype(str), sheet)
        keep(path, {sheet if path.suffix != ".csv" else path.stem: list(zip(range(2, 2 + len(rows)), pids,
                                                                            strict=True))})

    for kind in kinds:
        rng.shuffle(chosen[kind])
    path = out / "线索导入模板_含说明.xlsx"
    keep(path, _template_workbook(path, rng, chosen["template"]))
    path = out / "拜访记录_合并单元格.xlsx"
    keep(path, _visit_log(path, rng, chosen["visits"]))
    pool = [p["name"] for p in rng.sample(persons, max(8, people // 6))]  # old customers who refer friends
    rows, pids = _referral_rows(rng, chosen["referral_unknown"], pool, lead_first=False,
                                referrer_header="老客户", lead_header="意向人")
    table(out / "老带新_表头未知.xlsx", "名单", rows, pids)
    rows, pids = _referral_rows(rng, chosen["referral_known_word"], pool, lead_first=True,
                                referrer_header="客户", lead_header="朋友")
    table(out / "客户转介绍.csv", "", rows, pids)
    rows, pids = _ledger_rows(rng, chosen["ledger"], branch_of)
    table(out / "分公司客户台账.xlsx", "台账", rows, pids)
    rows, pids = [], []
    for p in chosen["agency"]:  # our branch under a header the product does not know; no client firm column
        c = _contacts(rng, p)
        rows.append({"所属机构": branch_of[p["person_id"]], "联系人": name_text(rng, p["name"]),
                     "电话": mobile_text(rng, p["mobile"]) if c["mobile"] or not p["email"] else "",
                     "邮箱": email_text(rng, p) if c["email"] or not c["mobile"] else "",
                     "跟进人": rng.choice(OWNERS)})
        pids.append(p["person_id"])
    table(out / "机构客户表.csv", "", rows, pids)
    return ExportSet(files=files, truth=pd.concat(truths, ignore_index=True))


__all__ = ["write_layout_files"]
