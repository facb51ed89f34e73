"""The column-wise history writer (Arrow texts, one SHA-256 per row, slices inserted while the next is hashed)
writes exactly the rows the row-at-a-time reference (`history.chain_rows` over a plain loop of field
differences) writes: same seq, values, action, cause, prev_hash and hash, and the chain still verifies after
rows the older writer appended."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from datafactory_pipelines.fields import LEAD_COLUMN_TYPES, LEAD_COLUMNS, TRACKED_FIELDS
from datafactory_pipelines.history import (
    GENESIS,
    HISTORY_COLUMNS,
    chain_rows,
    chain_table,
    field_changes,
    verify_chain,
)
from datafactory_pipelines.store import open_store
from datafactory_pipelines.store.base import LeadChanges
from datafactory_pipelines.store.parts import history_writers
from tests.backends import both_backends, store_in

pytestmark = both_backends

# values that stress the row text: empty, CJK, the separator itself, a comma list, long text, digits
VALUES = ["", "", "王芳", "13700137000", "a\x1fb", "leads_000-c8e9a56b63,leads_001-97a7a45350",
          "北京市海淀区年河路676号" * 8, "wf@qq.com", "merged", " "]


def _leads(rng: random.Random, lead_ids: list[str]) -> pd.DataFrame:
    rows = []
    for lead in lead_ids:
        row: dict[str, object] = {c: rng.choice(VALUES) for c in LEAD_COLUMNS}
        row.update(lead_id=lead, record_count=rng.randrange(1, 9), status=rng.choice(["active", "active", "merged"]))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=LEAD_COLUMNS)
    for column in LEAD_COLUMNS:  # some missing values (NULL in the store, "" in the history)
        if LEAD_COLUMN_TYPES[column] == "VARCHAR" and column != "lead_id":
            frame.loc[frame.sample(frac=0.1, random_state=rng.randrange(10**6)).index, column] = None
    return frame


def _expected(before: pd.DataFrame, after: pd.DataFrame, changes: LeadChanges, seq: int, prev: str,
              at: datetime) -> list[tuple]:
    """The rows of one curation, made one row at a time with `chain_rows` (the reference)."""
    known = {row["lead_id"]: row for row in before.to_dict("records")}
    causes = {} if changes.lead_causes is None else changes.lead_causes.to_dict()
    rows: list[tuple] = []
    for lead in sorted(after["lead_id"]):
        new_row = after[after["lead_id"] == lead].iloc[0]
        for field in sorted(TRACKED_FIELDS):
            new = "" if pd.isna(new_row[field]) else str(new_row[field])
            old_value = known[lead][field] if lead in known else None
            old = "" if old_value is None or pd.isna(old_value) else str(old_value)
            if new == old:
                continue
            action = "merge" if field == "status" and new == "merged" else (
                changes.action if lead in known else "create")
            (row,) = chain_rows([(lead, field, old, new)], seq, prev, at, action, changes.actor,
                                causes.get(lead, changes.cause))
            rows.append(row)
            seq, prev = seq + 1, row[-1]
    return rows


def _stored(store, after_seq: int) -> list[tuple]:
    history = store.history_after(after_seq)
    return [(int(r.seq), pd.Timestamp(r.changed_at).to_pydatetime(), r.lead_id, r.field, r.old_value or "",
             r.new_value or "", r.action, r.actor, r.cause, r.prev_hash, r.hash) for r in history.itertuples()]


def test_the_sliced_arrow_writer_writes_the_reference_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    monkeypatch.setattr(history_writers, "HISTORY_SLICE_LEADS", 37)  # many slices, the last one short
    store = store_in(tmp_path)
    empty_links = pd.DataFrame({"record_id": pd.Series([], dtype="int64"), "lead_id": pd.Series([], dtype=object)})
    # rows appended by the one-lead writer first: the fast writer chains on from them
    with store.transaction() as con:
        store._append_history_rows(con, [("L00000999", "title", "", "经理"), ("L00000999", "title", "经理", "总监")],
                                   "edit", "李娜", "客户来电")
    lead_ids = [f"L{n:08d}" for n in rng.sample(range(1, 10**6), 400)]
    first = _leads(rng, lead_ids)
    causes = pd.Series({lead: rng.choice(["imp-a", "imp-a,imp-b"]) for lead in lead_ids[::3]})
    changes = LeadChanges(record_leads=empty_links, upserts=first, action="import", actor="ops",
                          cause="imp-a,imp-b,imp-c", lead_causes=causes)
    store.apply_lead_changes(changes)
    stored = _stored(store, 2)
    assert len({row[1] for row in stored}) == 1  # one change, one moment
    assert stored == _expected(first.iloc[:0], first, changes, 3, store.history_after(1)["hash"].iloc[0],
                               stored[0][1])

    # a second curation of some of them (and new ones): old values, merges, one cause for all
    before = store.leads_by_id(lead_ids[:250])
    second = _leads(rng, lead_ids[:250] + [f"M{n:08d}" for n in range(60)])
    keep = second["lead_id"].isin(lead_ids[:100])
    second.loc[keep, TRACKED_FIELDS[:10]] = before.set_index("lead_id").loc[second.loc[keep, "lead_id"],
                                                                             TRACKED_FIELDS[:10]].to_numpy()
    last = int(store.history()["seq"].max())
    changes = LeadChanges(record_leads=empty_links, upserts=second, action="relink", actor="nightly", cause="run 7")
    store.apply_lead_changes(changes)
    stored = _stored(store, last)
    assert stored == _expected(before, second, changes, last + 1, store.history_after(last - 1)["hash"].iloc[0],
                               stored[0][1])
    assert {"create", "relink", "merge"} <= {row[6] for row in stored}
    assert verify_chain(store.history()).ok


def test_chain_table_equals_chain_rows_on_generated_changes() -> None:
    rng = random.Random(5)
    changes = [(f"L{rng.randrange(10**8):08d}", rng.choice(TRACKED_FIELDS), rng.choice(VALUES), rng.choice(VALUES))
               for _ in range(3000)]
    at = datetime(2026, 11, 27, 12, 5, 17, 793067)
    prev = "ab" * 32
    reference = chain_rows(changes, 41, prev, at, "rule", "rules", "event e-1; rule profile_update")
    table = pa.table({name: [c[i] for c in changes] for i, name in enumerate(["lead_id", "field", "old_value",
                                                                             "new_value"])})
    fast = chain_table(table, 41, prev, at, "rule", "rules", "event e-1; rule profile_update")
    assert [tuple(r.values()) for r in fast.to_pylist()] == reference
    # per-row action and cause
    actions = [rng.choice(["create", "import"]) for _ in changes]
    causes = [rng.choice(["", "imp-1", "imp-1,imp-2"]) for _ in changes]
    fast = chain_table(table, 1, GENESIS, at, pa.array(actions), "ops", pa.array(causes))
    seq, prev, expected = 1, GENESIS, []
    for change, action, cause in zip(changes, actions, causes, strict=True):
        (row,) = chain_rows([change], seq, prev, at, action, "ops", cause)
        expected.append(row)
        seq, prev = seq + 1, row[-1]
    assert [tuple(r.values()) for r in fast.to_pylist()] == expected


def test_field_changes_compares_text_as_before() -> None:
    before = pd.DataFrame({"lead_id": ["L2", "L1"], "name": ["王芳", None], "record_count": [3, 4]})
    after = pd.DataFrame({"lead_id": ["L1", "L2", "L3"], "name": ["李雷", "王芳", None], "mobile": ["137", "", "139"],
                          "status": ["active", "merged", "active"]})
    assert field_changes(before, after).values.tolist() == [
        ["L1", "mobile", "", "137"], ["L1", "name", "", "李雷"], ["L1", "status", "", "active"],
        ["L2", "status", "", "merged"], ["L3", "mobile", "", "139"], ["L3", "status", "", "active"]]


OLD_HISTORY_DDL = """CREATE TABLE history (
    seq BIGINT PRIMARY KEY, changed_at TIMESTAMP, lead_id VARCHAR, field VARCHAR, old_value VARCHAR, new_value VARCHAR,
    action VARCHAR, actor VARCHAR, cause VARCHAR, prev_hash VARCHAR, hash VARCHAR)"""


def _history_keys(path: Path) -> list:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'history'").fetchall()
    finally:
        con.close()


def test_a_store_whose_history_has_the_old_key_opens_appends_and_verifies(tmp_path: Path) -> None:
    """Stores made before history lost its PRIMARY KEY keep it; the new writer appends to them as before."""
    path = tmp_path / "leads.duckdb"
    at = datetime(2026, 1, 5, 9, 0, 0)
    old_rows = chain_rows([("L00000001", "name", "", "王芳"), ("L00000001", "mobile", "", "13700137000")], 1, GENESIS,
                          at, "create", "ops", "imp-1")
    con = duckdb.connect(str(path))
    con.execute(OLD_HISTORY_DDL)
    con.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", old_rows)
    con.close()
    store = open_store(path)
    rng = random.Random(2)
    leads = _leads(rng, [f"L{n:08d}" for n in range(2, 60)])
    empty_links = pd.DataFrame({"record_id": pd.Series([], dtype="int64"), "lead_id": pd.Series([], dtype=object)})
    changes = LeadChanges(record_leads=empty_links, upserts=leads, action="import", actor="ops", cause="imp-2")
    store.apply_lead_changes(changes)
    stored = _stored(store, 2)
    assert stored == _expected(leads.iloc[:0], leads, changes, 3, old_rows[-1][-1], stored[0][1])
    assert verify_chain(store.history()).ok
    assert ("PRIMARY KEY",) in _history_keys(path)  # kept: the old store was not rewritten
    fresh = tmp_path / "fresh" / "leads.duckdb"
    open_store(fresh)
    assert ("PRIMARY KEY",) not in _history_keys(fresh)


def test_a_repeated_or_missing_row_is_named() -> None:
    at = datetime(2026, 1, 5, 9, 0, 0)
    rows = chain_rows([("L1", "name", "", "王芳"), ("L1", "mobile", "", "137"), ("L1", "email", "", "a@b.cn")], 1,
                      GENESIS, at, "create", "ops", "imp-1")
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    assert verify_chain(frame).ok
    check = verify_chain(pd.concat([frame, frame.iloc[[1]]], ignore_index=True))
    assert (check.first_bad_seq, check.reason) == (2, "row 2 appears twice")
    check = verify_chain(frame.drop(index=1))
    assert (check.first_bad_seq, check.reason) == (2, "row 2 is missing")
