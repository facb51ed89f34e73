"""Golden records in SQL: the statement survivorship generates gives the same leads in PostgreSQL 15 and DuckDB."""

import pandas as pd
import psycopg2
import pytest
from psycopg2.extras import execute_values

from datafactory_pipelines import survivorship_sql
from datafactory_pipelines.survivorship import survivorship_rules
from datafactory_pipelines.survivorship_sql import (
    CURATED_COLUMNS,
    RULE_FIELDS,
    RULES,
    golden_sql,
    record_column,
)
from tests.postgres_server import postgres_bin, postgres_server
from tests.survivorship_cases import COLUMNS, DDL, duckdb_golden, generated_records

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL binaries are not installed")

SWITCHBOARDS = {"010-1234567"}
NUMBERS = ["record_count", *(record_column(f) for f in RULE_FIELDS)]


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in NUMBERS:
        frame[column] = frame[column].astype("Int64")
    return frame.reset_index(drop=True)


def _postgres_golden(cur, records: pd.DataFrame) -> pd.DataFrame:
    cur.execute(golden_sql("golden_input", "switchboards"))
    return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


@pytest.mark.parametrize("rule", ["survivorship.yaml", *RULES])
def test_postgres_and_duckdb_agree(rule: str, monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> None:
    records = generated_records()
    if rule != "survivorship.yaml":  # every field by this rule, so each rule's SQL runs on both
        rules = survivorship_rules()
        monkeypatch.setattr(survivorship_sql, "survivorship_rules",
                            lambda: {**rules, "fields": {field: rule for field in rules["fields"]}})
    con = psycopg2.connect(postgres_url)
    try:
        cur = con.cursor()
        cur.execute("DROP TABLE IF EXISTS golden_input; DROP TABLE IF EXISTS switchboards")
        cur.execute(DDL)
        rows = [tuple(None if pd.isna(v) else v for v in row) for row in records[COLUMNS].itertuples(index=False)]
        execute_values(cur, "INSERT INTO golden_input VALUES %s", rows)
        cur.execute("CREATE TABLE switchboards (value VARCHAR)")
        execute_values(cur, "INSERT INTO switchboards VALUES %s", [(v,) for v in sorted(SWITCHBOARDS)])
        in_postgres = _comparable(_postgres_golden(cur, records))
    finally:
        con.close()
    in_duckdb = _comparable(duckdb_golden(records, SWITCHBOARDS))
    assert list(in_duckdb.columns) == CURATED_COLUMNS + [record_column(f) for f in RULE_FIELDS]
    assert len(in_duckdb) == records["lead_id"].nunique()
    pd.testing.assert_frame_equal(in_postgres, in_duckdb, check_dtype=False)
    # the generated records reach every part of the statement
    for column in ("mobile_suspected_typos", "mobile_alternates", "email_alternates", "salutation", "province"):
        assert (in_duckdb[column] != "").any(), column
    assert set(in_duckdb["landline_type"]) == {"", "landline", "switchboard"}
    primary = in_duckdb.loc[in_duckdb["mobile"] != "", "mobile"]
    assert primary.is_unique  # a mobile several leads carry is primary in one of them only


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url
