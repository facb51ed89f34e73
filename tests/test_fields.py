"""The one field vocabulary: the schema, masking, history and export read their lists from fields.py."""

import duckdb
import pandas as pd

from datafactory_pipelines import CANONICAL_FIELDS, CONTACT_FIELDS
from datafactory_pipelines.fields import (
    EDITABLE_FIELDS,
    EXPORT_COLUMNS,
    FIELD,
    FIELDS,
    LEAD_COLUMNS,
    PERSONAL_COLUMNS,
    TRACKED_FIELDS,
)
from datafactory_pipelines.history import field_changes
from datafactory_pipelines.masking import mask_frame
from datafactory_pipelines.store.schema import DDL, RECORD_COLUMNS


def test_names_are_unique_and_old_names_still_import():
    assert len({f.name for f in FIELDS}) == len(FIELDS)
    assert CANONICAL_FIELDS[:3] == ("name", "mobile", "email") and "collected_at" in CANONICAL_FIELDS
    assert set(CONTACT_FIELDS) <= set(CANONICAL_FIELDS)
    assert all(FIELD[f].kind == "contact" for f in CONTACT_FIELDS)


def test_the_store_tables_have_every_field_column():
    con = duckdb.connect()
    for statement in DDL:
        con.execute(statement)
    leads = [r[0] for r in con.execute("DESCRIBE leads").fetchall()]
    records = {r[0] for r in con.execute("DESCRIBE records").fetchall()}
    assert leads == LEAD_COLUMNS
    assert {f"{f}_raw" for f in CANONICAL_FIELDS} <= records and set(RECORD_COLUMNS) == records
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'leads'").fetchall())
    assert types["record_count"] == "BIGINT" and types["name"] == "VARCHAR"


def test_every_personal_column_is_masked_and_nothing_else():
    row = {c: "13812345678" for c in LEAD_COLUMNS}
    row["email"] = "zhang.wei@example.com"
    masked = mask_frame(pd.DataFrame([row])).iloc[0]
    for column in LEAD_COLUMNS:
        if column in PERSONAL_COLUMNS:
            assert masked[column] != row[column], column
        else:
            assert masked[column] == row[column], column
    assert masked["email"] == "z***@example.com"
    assert "mobile_suspected_typos" in PERSONAL_COLUMNS  # holds phone numbers too


def test_history_follows_the_tracked_fields():
    before = pd.DataFrame([{c: "a" for c in LEAD_COLUMNS} | {"lead_id": "L1"}])
    after = pd.DataFrame([{c: "b" for c in LEAD_COLUMNS} | {"lead_id": "L1"}])
    assert sorted(field_changes(before, after)["field"]) == sorted(TRACKED_FIELDS)
    assert set(EDITABLE_FIELDS) <= set(TRACKED_FIELDS) and set(EXPORT_COLUMNS) <= set(LEAD_COLUMNS)
