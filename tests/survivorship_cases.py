"""Records for survivorship tests: a table of records with their leads, in the columns golden_sql reads."""

from __future__ import annotations

import random
from datetime import datetime

import duckdb
import pandas as pd

from datafactory_pipelines.survivorship_sql import INPUT_COLUMNS, golden_sql

FLAGS = {"name_partial", "email_role"}
NUMBERS = {"record_id", "source_row"}


def column_type(column: str) -> str:
    if column in NUMBERS:
        return "BIGINT"
    if column in FLAGS:
        return "BOOLEAN"
    return "TIMESTAMP" if column == "import_time" else "VARCHAR"


COLUMNS = ["lead_id", "import_time", *INPUT_COLUMNS]
DDL = "CREATE TABLE golden_input (" + ", ".join(f"{c} {column_type(c)}" for c in COLUMNS) + ")"


def record(lead_id: str, record_id: int, **values: object) -> dict:
    """One record: empty text unless given; imported 2025-01-01 unless `import_time` says otherwise."""
    row: dict[str, object] = {c: "" for c in COLUMNS}
    row.update(lead_id=lead_id, record_id=record_id, import_time=datetime(2025, 1, 1, 9), source_row=record_id + 1,
               name_partial=False, email_role=False, source_file="f.xlsx")
    row.update(values)
    return row


def generated_records(leads: int = 400, seed: int = 11) -> pd.DataFrame:
    """Many leads whose records disagree in every way the rules care about: dates and import times that
    tie, partial names with salutations, one-digit mobile slips, cells holding several mobiles, role
    mailboxes, company spellings of one entity, trusted sources, a mobile several leads share, quotes and
    backslashes in file names, and NULLs where a record has no value."""
    rng = random.Random(seed)
    times = [datetime(2025, 1, 1, 10), datetime(2025, 3, 1, 9), datetime(2025, 3, 1, 12), datetime(2025, 6, 1, 8)]
    rows, record_id = [], 0
    for n in range(leads):
        lead = f"L{n:08d}"
        mobile = f"13{rng.randrange(10**9):09d}"
        slip = mobile[:6] + str((int(mobile[6]) + 1) % 10) + mobile[7:]
        family = f"1390000{n % 40:04d}"  # the same mobile in several leads
        for _ in range(rng.randint(1, 7)):
            record_id += 1
            partial = rng.random() < 0.2
            email = rng.choice(["", "a@x.com", "b@x.com", "sales@x.com", None])
            company = rng.choice(["", "星海科技", "深圳星海科技有限公司", "别的公司", "Xinghai Technology Co., Ltd.",
                                  "星海科技（深圳）有限公司", "重庆分公司", "深圳星海科技有限公司上海分公司", None])
            rows.append(record(
                lead, record_id, import_time=rng.choice(times), source_row=rng.randrange(2, 500),
                name_partial=partial if rng.random() > 0.05 else None,
                email_role=bool(email and email.startswith("sales")),
                collected_at=rng.choice(["", "2025-02-01", "2025-02-01", "2024-12-31", None]),
                source=rng.choice(["", "展会", "event_verified", "manual_edit", "官网", None]),
                source_file=rng.choice(["a.xlsx", "b.csv", 'q"uote\\d.xlsx']),
                salutation=rng.choice(["", "先生", "女士"]) if partial else "",
                name=rng.choice(["王", "李", ""]) if partial else rng.choice(["王芳", "王小芳", "", "李雷", None]),
                name_key=rng.choice(["wf", "wxf", ""]),
                mobile=rng.choice([mobile, mobile, slip, "", family, "12345", None]),
                mobile_alternates=rng.choice(["", "", f"{slip};13800000000", "13800000001", ";13800000001;", mobile,
                                              None]),
                email=email, landline=rng.choice(["", "010-1234567", "021-7654321"]),
                wechat=rng.choice(["", "wx1", "wx2"]), qq=rng.choice(["", "12345", "54321"]),
                douyin=rng.choice(["", "dy"]), kuaishou=rng.choice(["", "ks"]), company=company,
                company_key={"星海科技": "xh", "深圳星海科技有限公司": "xh", "别的公司": "bd",
                             "星海科技（深圳）有限公司": "xh"}.get(company or "", ""),
                company_entity={"星海科技": "xinghai", "深圳星海科技有限公司": "xinghai", "别的公司": "biede",
                                "Xinghai Technology Co., Ltd.": "xinghai", "星海科技（深圳）有限公司": "xinghai",
                                "重庆分公司": "~重庆分公司", "深圳星海科技有限公司上海分公司": "xinghai|shanghai",
                                None: None}.get(company, ""),
                company_form={"星海科技": "3", "深圳星海科技有限公司": "7", "别的公司": "3",
                              "Xinghai Technology Co., Ltd.": "1", "星海科技（深圳）有限公司": "7", "重庆分公司": "0",
                              "深圳星海科技有限公司上海分公司": "7", None: None}.get(company, ""),
                title=rng.choice(["", "经理", "总监", "经理"]), owner=rng.choice(["", "张三", "李四"]),
                address=rng.choice(["", "北京", "北京市朝阳区建国路8号", "北京朝阳"]),
                province=rng.choice(["", "北京"]), city=rng.choice(["", "北京市"]), district=rng.choice(["", "朝阳区"])))
    return pd.DataFrame(rows, columns=COLUMNS)


def duckdb_golden(records: pd.DataFrame, switchboards: set[str] = frozenset()) -> pd.DataFrame:
    """golden_sql run by DuckDB over these records (a real table, as a store holds them)."""
    con = duckdb.connect()
    try:
        con.execute(DDL)
        con.register("frame", records[COLUMNS])
        con.execute("INSERT INTO golden_input SELECT * FROM frame")
        con.execute("CREATE TABLE switchboards (value VARCHAR)")
        for value in sorted(switchboards):
            con.execute("INSERT INTO switchboards VALUES (?)", [value])
        return con.execute(golden_sql("golden_input", "switchboards")).df()
    finally:
        con.close()
