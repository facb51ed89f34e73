from pathlib import Path

import pandas as pd
import pytest

from datafactory_pipelines.pipeline import import_file, prepare_file, relink_and_curate
from datafactory_pipelines.store import ImportMeta
from datafactory_pipelines.survivorship import assign_lead_ids
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "登记日期"]


def test_import_is_one_transaction(store, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [HEADER, ["张伟", "13800138000", "zw@qq.com", "星海科技", "销售经理", "2025-01-02"]])
    prepared = prepare_file(path)
    broken = prepared.records.drop(columns=["email"])  # the insert fails half-way through
    with pytest.raises(KeyError):
        store.save_import(prepared.meta(), broken)
    assert store.counts()["imports"] == 0 and store.counts()["records"] == 0


def test_same_content_imports_once(store, tmp_path: Path) -> None:
    rows = [HEADER, ["张伟", "13800138000", "zw@qq.com", "星海科技", "销售经理", "2025-01-02"]]
    first = import_file(store, write_xlsx(tmp_path / "a.xlsx", rows))
    copy = tmp_path / "copy_of_a.xlsx"
    copy.write_bytes((tmp_path / "a.xlsx").read_bytes())
    second = import_file(store, copy)
    assert (first.status, second.status) == ("imported", "duplicate")
    assert store.counts()["records"] == 1


def test_lead_ids_are_stable_and_merges_keep_the_oldest(store, tmp_path: Path) -> None:
    import_file(store, write_xlsx(tmp_path / "1.xlsx", [
        HEADER, ["张伟", "13800138000", "", "星海科技", "销售经理", "2025-01-02"],
        ["李娜", "", "ln@163.com", "云帆贸易", "工程师", "2025-01-03"],
    ]))
    relink_and_curate(store)
    first = store.leads().set_index("name")["lead_id"].to_dict()
    # a new record carrying both 张伟's mobile and a new email; and a new person
    import_file(store, write_xlsx(tmp_path / "2.xlsx", [
        HEADER, ["张伟", "13800138000", "zw@qq.com", "星海科技", "销售总监", "2025-06-01"],
        ["王芳", "13700137000", "", "", "", "2025-06-01"],
    ]))
    outcome = relink_and_curate(store)
    second = store.leads().set_index("name")
    assert second.loc["张伟", "lead_id"] == first["张伟"]
    assert second.loc["李娜", "lead_id"] == first["李娜"]
    assert second.loc["张伟", "email"] == "zw@qq.com"  # a new contact is added
    assert second.loc["张伟", "title"] == "销售经理"  # a changed title waits for an operator (conflict policy)
    assert store.conflicts()[["field", "incoming_value"]].values.tolist() == [["title", "销售总监"]]
    assert second.loc["张伟", "record_count"] == 2
    assert outcome.changes.created == 1 and outcome.changes.updated == 1


def test_bridge_record_merges_two_leads_into_the_oldest() -> None:
    clusters = pd.DataFrame({"record_id": [1, 2, 3], "cluster_id": [1, 1, 1]})
    previous = pd.Series({1: "L00000002", 2: "L00000001", 3: None})
    leads, merged = assign_lead_ids(clusters, previous, next_number=3)
    assert set(leads["lead_id"]) == {"L00000001"}
    assert merged == {"L00000002": "L00000001"}


def test_split_lead_keeps_its_id_where_most_records_are() -> None:
    clusters = pd.DataFrame({"record_id": [1, 2, 3], "cluster_id": [1, 1, 3]})
    previous = pd.Series({1: "L00000001", 2: "L00000001", 3: "L00000001"})
    leads, merged = assign_lead_ids(clusters, previous, next_number=2)
    assert leads.set_index("record_id")["lead_id"].to_dict() == {1: "L00000001", 2: "L00000001", 3: "L00000002"}
    assert merged == {}


def test_store_meta_round_trip(store) -> None:
    meta = ImportMeta("x-1", "x.csv", "ab" * 32, rows_read=0)
    assert store.save_import(meta, pd.DataFrame(columns=prepare_columns())) == 0
    assert store.find_import("ab" * 32) == "x-1"


def prepare_columns() -> list[str]:
    from datafactory_pipelines.store.schema import RECORD_COLUMNS

    return [c for c in RECORD_COLUMNS if c not in ("record_id", "import_id", "source_file", "imported_at", "lead_id")]


def test_switchboard_is_typed_and_recorded(store, tmp_path: Path) -> None:
    rows = [HEADER] + [[n, "0755-81234567", "", "星海科技", "", "2025-01-02"] for n in ("王芳", "李娜", "刘洋")]
    rows.append(["陈静", "0755-87654321", "", "星海科技", "", "2025-01-02"])
    import_file(store, write_xlsx(tmp_path / "switchboard.xlsx", rows))
    relink_and_curate(store)
    leads = store.leads().set_index("name")
    assert len(leads) == 4  # colleagues on one switchboard stay four people
    assert set(leads.loc[["王芳", "李娜", "刘洋"], "landline_type"]) == {"switchboard"}
    assert leads.loc["陈静", "landline_type"] == "landline"
    shared = store.shared_contacts()
    assert shared[["kind", "value", "n_names"]].values.tolist() == [["landline", "0755-81234567", 3]]


def test_unreachable_rows_are_quarantined_with_reasons(store, tmp_path: Path) -> None:
    import_file(store, write_xlsx(tmp_path / "q.xlsx", [HEADER, ["张伟", "1234", "not-an-email", "", "", ""],
                                                        ["李娜", "13900139000", "", "", "", ""]]))
    quarantine = store.quarantine()
    assert quarantine[["source_file", "source_row"]].values.tolist() == [["q.xlsx", 2]]
    assert quarantine["reject_reason"].iloc[0] == (
        "no reachable contact: mobile invalid (not a CN mobile or landline (4 digits)); "
        "email invalid (no single @)")


def test_one_digit_typo_is_flagged_not_trusted(store, tmp_path: Path) -> None:
    rows = [HEADER] + [["王芳", "13700137000", "wf@qq.com", "", "", f"2025-01-0{d}"] for d in (1, 2, 3)]
    rows.append(["王芳", "13700137001", "wf@qq.com", "", "", "2025-06-01"])  # newest, but a slip of one digit
    import_file(store, write_xlsx(tmp_path / "typo.xlsx", rows))
    relink_and_curate(store)
    lead = store.leads().iloc[0]
    assert lead["mobile"] == "13700137000"
    assert lead["mobile_suspected_typos"] == "13700137001"
    assert "13700137001" not in lead["mobile_alternates"]


def test_family_phone_stays_primary_for_one_lead_only(store, tmp_path: Path) -> None:
    rows = [HEADER, ["王建国", "13700137000", "wjg@qq.com", "", "", "2025-01-01"],
            ["王建国", "13700137000", "", "", "", "2025-01-02"],
            ["李秀英", "13700137000", "lxy@163.com", "", "", "2025-01-03"]]
    import_file(store, write_xlsx(tmp_path / "family.xlsx", rows))
    relink_and_curate(store)
    leads = store.leads().set_index("name")
    assert leads.loc["王建国", "mobile"] == "13700137000"
    assert leads.loc["李秀英", "mobile"] == "" and leads.loc["李秀英", "mobile_alternates"] == "13700137000"


def test_a_store_from_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    import duckdb

    from datafactory_pipelines.store import open_store
    from datafactory_pipelines.store.schema import LEAD_COLUMNS, RECORD_COLUMNS

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # the first version had neither column
        con.execute("CREATE TABLE records (" + ", ".join(
            f'"{c}" VARCHAR' for c in RECORD_COLUMNS if c not in ("retired_by", "first_lead_id")) + ")")
        con.execute("CREATE TABLE leads (" + ", ".join(
            f'"{c}" VARCHAR' for c in LEAD_COLUMNS if c not in ("provenance", "landline_type")) + ")")
    store = open_store(path)
    assert store.quarantine().empty
    with duckdb.connect(str(path)) as con:
        records = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'records'").fetchall()}
        leads = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'leads'").fetchall()}
    assert {"retired_by", "first_lead_id"} <= records and {"provenance", "landline_type"} <= leads


def test_an_older_store_loses_the_leads_key_index_and_keeps_its_leads(tmp_path: Path) -> None:
    """lead_id was the leads' PRIMARY KEY (DuckDB rewrites its whole index at every checkpoint after a
    change): a store made so is rebuilt once without it, every lead as it was, and it goes on working."""
    import duckdb

    from datafactory_pipelines.store import open_store
    from datafactory_pipelines.store.schema import DDL

    path = tmp_path / "keyed.duckdb"
    store = open_store(path)
    import_file(store, write_xlsx(tmp_path / "a.xlsx", [HEADER, ["王建国", "13700137000", "", "", "", "2025-01-02"],
                                                        ["李秀英", "13800138000", "", "", "", "2025-01-03"]]))
    relink_and_curate(store)
    leads_before = store.leads(include_retired=True)
    keyed = next(s for s in DDL if "TABLE IF NOT EXISTS leads " in s).replace("lead_id VARCHAR NOT NULL",
                                                                            "lead_id VARCHAR PRIMARY KEY")
    with duckdb.connect(str(path)) as con:  # as an older version made it
        con.execute("CREATE TABLE leads_copy AS SELECT * FROM leads")
        con.execute("DROP TABLE leads")
        con.execute(keyed)
        con.execute("INSERT INTO leads SELECT * FROM leads_copy")
        con.execute("DROP TABLE leads_copy")
        con.execute("UPDATE store_meta SET value = 'older' WHERE key = 'schema_ddl'")
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'leads' "
                           "AND constraint_type = 'PRIMARY KEY'").fetchall()[0][0] == 1
    store = open_store(path)
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'leads' "
                           "AND constraint_type = 'PRIMARY KEY'").fetchall()[0][0] == 0
    pd.testing.assert_frame_equal(store.leads(include_retired=True), leads_before)
    import_file(store, write_xlsx(tmp_path / "b.xlsx", [HEADER, ["王建国", "13700137000", "wjg@163.com", "", "",
                                                                 "2025-02-02"]]))
    relink_and_curate(store)
    leads = store.leads()
    assert leads["lead_id"].is_unique and len(leads) == 2
    assert leads.set_index("name").loc["王建国", "email"] == "wjg@163.com"


def test_a_change_writing_one_lead_twice_is_refused_whole(tmp_path: Path) -> None:
    """Without a key index on the leads table, the store itself refuses repeated lead ids in a change."""
    from datafactory_pipelines.store import LeadChanges

    store = store_in(tmp_path)
    import_file(store, write_xlsx(tmp_path / "a.xlsx", [HEADER, ["王建国", "13700137000", "", "", "", "2025-01-02"]]))
    relink_and_curate(store)
    before = store.leads(include_retired=True)
    twice = pd.concat([before, before], ignore_index=True)
    with pytest.raises(ValueError, match="repeated lead ids"):
        store.apply_lead_changes(LeadChanges(record_leads=pd.DataFrame({"record_id": [], "lead_id": []}),
                                             upserts=twice))
    pd.testing.assert_frame_equal(store.leads(include_retired=True), before)
