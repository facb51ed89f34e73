"""The possible-matches workbook: the queue as Excel, one pair a row, side by side, with a dropdown
(合并 / 分开 / 跳过), decided by people who never open a terminal, and applied back in one change."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd

from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.workbooks import add_dropdown, write_sheet

REVIEW_SHEET = "可能重复"
META_SHEET = "_datafactory"
META_KIND = "datafactory-match-review"
SHOWN = ["name", "mobile", "email", "wechat", "company", "title"]
SHOWN_LABELS = {"name": "姓名", "mobile": "手机", "email": "邮箱", "wechat": "微信", "company": "公司", "title": "职位"}
CHOICES = {"合并": "merge", "分开": "apart", "跳过": ""}
HEADERS = ["编号", "模式", "匹配概率", "现在", *[f"A {SHOWN_LABELS[f]}" for f in SHOWN], "A 来源",
           *[f"B {SHOWN_LABELS[f]}" for f in SHOWN], "B 来源", "各字段权重", "决定 (合并/分开/跳过)"]
DECISION_COLUMN = len(HEADERS)  # 1-based


def side_by_side(store: LeadStore, queue: pd.DataFrame) -> pd.DataFrame:
    """The queue with each record's shown fields (left_*, right_*) and where it came from."""
    ids = sorted(set(queue["id_l"].astype("int64")) | set(queue["id_r"].astype("int64")))
    records = store.linkage_records_of(ids, [], columns=["record_id", "source_file", "sheet", "source_row",
                                                         "collected_at", *SHOWN]).set_index("record_id")
    records["origin"] = (records["source_file"].astype(str) + " 第" + records["source_row"].astype(str) + "行")
    out = queue.copy()
    for side, column in (("left", "id_l"), ("right", "id_r")):
        picked = records.reindex(out[column].astype("int64"))
        for field in [*SHOWN, "origin"]:
            out[f"{side}_{field}"] = picked[field].fillna("").astype(str).to_numpy()
    return out


def export_reviews(store: LeadStore, out: str | Path, queue: pd.DataFrame | None = None) -> tuple[Path, int]:
    from datafactory_pipelines.match_review import review_queue

    queue = review_queue(store) if queue is None else queue
    shown = side_by_side(store, queue) if len(queue) else queue
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = REVIEW_SHEET
    rows = []
    for row in shown.itertuples(index=False):
        rows.append([f"{row.id_l}~{row.id_r}", row.pattern_text, round(float(row.match_probability), 3),
                     "同一线索" if row.same_lead else f"{row.lead_l} / {row.lead_r}",
                     *[getattr(row, f"left_{f}") for f in SHOWN], row.left_origin,
                     *[getattr(row, f"right_{f}") for f in SHOWN], row.right_origin, row.contributions, ""])
    write_sheet(ws, HEADERS, rows, [14, 40, 8, 22, *[12] * len(SHOWN), 22, *[12] * len(SHOWN), 22, 40, 18])
    add_dropdown(ws, openpyxl.utils.get_column_letter(DECISION_COLUMN), len(rows), list(CHOICES))
    meta = workbook.create_sheet(META_SHEET)
    meta.append(["kind", META_KIND])
    meta.sheet_state = "hidden"
    path = Path(out)
    workbook.save(path)
    return path, len(rows)


def read_review_decisions(path: Path) -> pd.DataFrame:
    """id_l, id_r, decision for every row whose 决定 is 合并 or 分开 (跳过 and blank rows are left for later)."""
    from datafactory_pipelines.match_review import ReviewError

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if REVIEW_SHEET not in workbook.sheetnames:
            raise ReviewError(f"{path.name}: no sheet {REVIEW_SHEET!r}; export one with `datafactory review export`")
        rows = []
        for number, row in enumerate(workbook[REVIEW_SHEET].iter_rows(min_row=2, values_only=True), start=2):
            if not row or not row[0]:
                continue
            word = str(row[DECISION_COLUMN - 1] or "").strip()
            if word not in CHOICES:
                raise ReviewError(f"{path.name} sheet {REVIEW_SHEET!r} row {number}: 决定 must be one of "
                                  f"{', '.join(CHOICES)}, got {word!r}")
            if not CHOICES[word]:
                continue
            left, sep, right = str(row[0]).partition("~")
            if not sep or not left.strip().isdigit() or not right.strip().isdigit():
                raise ReviewError(f"{path.name} sheet {REVIEW_SHEET!r} row {number}: 编号 {row[0]!r} is not a pair")
            rows.append({"id_l": int(left), "id_r": int(right), "decision": CHOICES[word]})
    finally:
        workbook.close()
    return pd.DataFrame(rows, columns=["id_l", "id_r", "decision"])
