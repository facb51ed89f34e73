"""The change path's SQL (store/change_sql.py) runs on a real PostgreSQL 15 as it runs in the DuckDB store:
the same counters after a save and an undo, the same answers to every lookup, and each lookup can be
served by the indexes of schema.CHANGE_PATH_INDEXES."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg2
import psycopg2.extras
import pytest

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import change_sql, open_store
from datafactory_pipelines.store.schema import CHANGE_PATH_INDEXES, DDL
from tests.postgres_server import postgres_bin, postgres_server

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL binaries are not installed")

TABLES = ("link_values", "value_counts", "value_names", "records", "match_links", "conflicts", "lead_overrides",
          "leads", "lead_splits")
KEY_TABLES = {"added": "record_id BIGINT", "removed": "col VARCHAR, value VARCHAR, surname VARCHAR",
              "wanted_ids": "record_id BIGINT", "wanted_keys": "col VARCHAR, value VARCHAR",
              "wanted_records": "record_id BIGINT", "wanted_leads": "lead_id VARCHAR"}


def _create_tables(cur) -> None:
    for statement in DDL:  # the store's whole DDL, as written: PostgreSQL must accept every statement
        cur.execute(statement)
    for statement in CHANGE_PATH_INDEXES:
        cur.execute(statement)


def _insert(cur, table: str, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    rows = [tuple(v.item() if hasattr(v, "item") else v for v in row)  # numpy scalars as Python values
            for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)]
    psycopg2.extras.execute_values(cur, f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES %s", rows)


def _query(cur, sql: str) -> pd.DataFrame:
    cur.execute(sql)
    return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


def _keys(cur, **tables: pd.DataFrame) -> None:
    """The key tables a lookup joins, as temporary tables (what a PostgreSQL store would do)."""
    for name, frame in tables.items():
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(f"CREATE TEMPORARY TABLE {name} ({KEY_TABLES[name]})")
        columns = ", ".join(part.split()[0] for part in KEY_TABLES[name].split(", "))
        cur.execute(f"CREATE INDEX ON {name} ({columns})")
        _insert(cur, name, frame)
        cur.execute(f"ANALYZE {name}")


def _same(pg: pd.DataFrame, duck: pd.DataFrame) -> None:
    assert len(duck), "an empty answer would prove nothing"
    columns = list(duck.columns)
    left = pg[columns].astype(object).where(pg[columns].notna(), None).astype(str)
    right = duck[columns].astype(object).where(duck[columns].notna(), None).astype(str)
    pd.testing.assert_frame_equal(left.sort_values(columns, ignore_index=True),
                                  right.sort_values(columns, ignore_index=True))


def _count(cur, sign: int, values: pd.DataFrame) -> None:
    cur.execute("DROP TABLE IF EXISTS counted")
    cur.execute("CREATE TEMPORARY TABLE counted (col VARCHAR, value VARCHAR, surname VARCHAR)")
    _insert(cur, "counted", values[["col", "value", "surname"]])
    for statement in change_sql.count_values(sign):
        cur.execute(statement)


def _store_table_reads(plan: str) -> list[tuple[str, bool]]:
    """(store table, read by key) for every scan of a store table in a PostgreSQL plan."""
    reads = []
    for node in plan.split("->"):
        head = node.strip().splitlines()[0] if node.strip() else ""
        table = next((t for t in TABLES if f" on {t} " in head + " " or f" on {t}_" in head), None)
        if table and "Scan" in head and "Bitmap Index Scan" not in head:
            reads.append((table, "Index Cond" in node or "Recheck Cond" in node))
    return reads


def _store_table(store, sql: str) -> pd.DataFrame:
    return store._query(sql)


def test_change_path_sql_runs_alike_on_postgres_and_duckdb(tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=1200, records=3000, files=6, seed=4)
    store = open_store(tmp_path / "leads.duckdb")
    for path in sample.files[:5]:
        import_file(store, path)
    relink_and_curate(store)  # a full pass: the counters are built
    with postgres_server() as url:
        con = psycopg2.connect(url)
        con.autocommit = True
        cur = con.cursor()
        _create_tables(cur)
        _insert(cur, "link_values", _store_table(store, "SELECT col, value, record_id, surname FROM link_values"))
        _insert(cur, "value_counts", _store_table(store, "SELECT * FROM value_counts"))
        _insert(cur, "value_names", _store_table(store, "SELECT * FROM value_names"))
        _insert(cur, "records", _store_table(store, "SELECT record_id, lead_id, retired_by FROM records"))
        _insert(cur, "match_links", _store_table(store, "SELECT record_l, record_r FROM match_links"))

        # a save: its values are counted in, in DuckDB by the store, in PostgreSQL by the same statements
        imported = import_file(store, sample.files[5])
        new = _store_table(store, f"SELECT record_id, lead_id, retired_by FROM records "
                                  f"WHERE import_id = '{imported.import_id}'")
        new_values = _store_table(store, "SELECT col, value, record_id, surname FROM link_values WHERE record_id "
                                         f"IN (SELECT record_id FROM records WHERE import_id = '{imported.import_id}')")
        _insert(cur, "records", new)
        _insert(cur, "link_values", new_values)
        _count(cur, 1, new_values)
        counters, names = store.value_counters()
        _same(_query(cur, "SELECT * FROM value_counts"), counters)
        _same(_query(cur, "SELECT * FROM value_names"), names)

        # every lookup of the change path, the same keys on both
        added = new[["record_id"]]
        removed = _store_table(store, "SELECT col, value, surname FROM link_values WHERE record_id IN "
                                      "(SELECT min(record_id) FROM records)")
        keys = new_values[["col", "value"]].drop_duplicates()
        some_ids = _store_table(store, "SELECT record_id FROM records WHERE record_id % 7 = 0")
        some_leads = _store_table(store, "SELECT DISTINCT lead_id FROM records WHERE lead_id IS NOT NULL "
                                         "AND record_id % 11 = 0")
        # operators split leads apart (as an unmerge records it), on both: two of those leads, and many
        # others (a table of one row is read whole whatever its indexes)
        leads = _store_table(store, "SELECT lead_id FROM leads ORDER BY lead_id")["lead_id"].astype(str).tolist()
        splits = [(str(some_leads["lead_id"].iloc[0]), str(some_leads["lead_id"].iloc[1])),
                  *zip(leads[0::2], leads[1::2], strict=False)]
        with store.transaction() as duck:
            duck.executemany("INSERT INTO lead_splits VALUES (?, ?, 'test', now())", [list(pair) for pair in splits])
        psycopg2.extras.execute_values(cur, "INSERT INTO lead_splits VALUES %s",
                                       [(a, b, "test", None) for a, b in splits])
        _keys(cur, added=added, removed=removed, wanted_ids=some_ids, wanted_keys=keys, wanted_records=some_ids,
              wanted_leads=some_leads)
        cur.execute("ANALYZE")
        lookups = {
            "change counts": (change_sql.CHANGE_COUNTS, store.change_counts(added["record_id"].tolist(), removed)),
            "value stats": (change_sql.VALUE_STATS.replace("wanted", "wanted_keys"), store.value_stats(keys)),
            "neighbourhood stats": (change_sql.NEIGHBOURHOOD_STATS.replace("wanted", "wanted_ids"),
                                    store.neighbourhood_stats(some_ids["record_id"].tolist())),
            "records sharing": (change_sql.RECORDS_SHARING.replace("wanted", "wanted_keys"),
                                store.records_sharing(keys)),
            "record leads": (change_sql.RECORD_LEADS_OF, store.record_leads_of(
                some_ids["record_id"].tolist(), some_leads["lead_id"].tolist())),
            "links touching": (change_sql.LINKS_TOUCHING.replace("wanted", "wanted_ids"),
                               store.links_touching(some_ids["record_id"].tolist())),
            "kept apart": (change_sql.KEPT_APART, store.kept_apart_pairs(some_leads["lead_id"].tolist())),
        }
        for sql, duck in lookups.values():
            _same(_query(cur, sql), duck)

        # with a change's few keys, each lookup reads the store tables through the change path's indexes,
        # by key (an Index Cond on every store table it touches), never whole
        _keys(cur, added=added.head(5), removed=removed.head(3), wanted_ids=some_ids.head(10),
              wanted_keys=keys.head(10), wanted_records=some_ids.head(10), wanted_leads=some_leads.head(5))
        # tables this small could be read whole at no cost: with sequential scans priced out (the key tables
        # are indexed too, so no plan is penalised more than another), an index must serve every read
        cur.execute("SET enable_seqscan = off")
        for name, (sql, _) in lookups.items():
            plan = "\n".join(row[0] for row in _query(cur, "EXPLAIN " + sql).itertuples(index=False))
            reads = _store_table_reads(plan)
            assert reads, f"{name}: reads no store table?\n{plan}"
            assert all(by_key for _, by_key in reads), f"{name}: a store table read whole\n{plan}"

        # an undo: the records' values are taken away again, on both
        store.retire_import(imported.import_id or "", by="test")
        _count(cur, -1, new_values)
        _keys(cur, added=added)
        cur.execute("DELETE FROM link_values WHERE record_id IN (SELECT record_id FROM added)")
        counters, names = store.value_counters()
        _same(_query(cur, "SELECT * FROM value_counts"), counters)
        _same(_query(cur, "SELECT * FROM value_names"), names)
        _same(_query(cur, "SELECT col, value, count(*) AS n_records, count(DISTINCT surname) AS n_names "
                          "FROM link_values GROUP BY col, value"), counters)  # and equal a recount there
        con.close()


def test_postgres_keeps_lead_ids_and_history_seqs_unique() -> None:
    """DuckDB's store has no key index on leads.lead_id and history.seq (its single writer keeps them unique);
    on PostgreSQL the DDL and its indexes refuse a repeated lead id or history row."""
    with postgres_server() as url:
        con = psycopg2.connect(url)
        con.autocommit = True
        cur = con.cursor()
        _create_tables(cur)
        cur.execute("INSERT INTO leads (lead_id) VALUES ('L000001')")
        with pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute("INSERT INTO leads (lead_id) VALUES ('L000001')")
        cur.execute("INSERT INTO history (seq, lead_id, field) VALUES (1, 'L000001', 'name')")
        with pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute("INSERT INTO history (seq, lead_id, field) VALUES (1, 'L000001', 'mobile')")
        cur.execute("SELECT count(*) FROM leads")
        assert cur.fetchone()[0] == 1
        con.close()
