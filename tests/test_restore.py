"""Restore by writing new history: undo an import, bring one lead or everything back to a time."""

import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from datafactory_pipelines.conflicts import EDITABLE_FIELDS
from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.history import verify_chain
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.restore import restore_all_as_of, restore_lead_as_of, undo_import
from datafactory_pipelines.store import open_store
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "来源", "登记日期"]
FIRST = [HEADER, ["王芳", "13700137000", "", "星海科技", "销售经理", "展会2025", "2025-01-01"],
         ["李娜", "13900139000", "ln@163.com", "云帆贸易", "工程师", "展会2025", "2025-01-01"]]
SECOND = [HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售经理", "官网", "2025-06-01"],
          ["赵敏", "13500135000", "zm@126.com", "恒信物流", "采购经理", "官网", "2025-06-01"]]


def _by_name(store) -> pd.DataFrame:
    return store.leads().set_index("name")[[f for f in EDITABLE_FIELDS if f != "name"]].sort_index()


def _edit(store, name: str, field: str, value: str) -> None:
    lead = store.leads().set_index("name").loc[name, "lead_id"]
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": field, "value": value}]), by="李娜")


def test_undo_first_import_equals_never_importing_it(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a.duckdb")
    first = import_file(store, write_xlsx(tmp_path / "first.xlsx", FIRST))
    relink_and_curate(store)
    import_file(store, write_xlsx(tmp_path / "second.xlsx", SECOND))
    relink_and_curate(store)
    _edit(store, "王芳", "title", "销售总监")  # a later edit of a field the first import set

    report = undo_import(store, first.import_id, by="admin")
    assert report.records_retired == 2
    assert len(report.leads_retired) == 1  # 李娜 came only from the first import
    assert ("L00000001", "title") in report.contested  # reported, not clobbered
    contested = store.conflicts()
    assert contested[["field", "kind", "current_value", "incoming_value"]].values.tolist() == [
        ["title", "undo import", "销售总监", ""]]  # before that import the lead had no title

    without = open_store(tmp_path / "b.duckdb")
    import_file(without, write_xlsx(tmp_path / "second_again.xlsx", SECOND))
    relink_and_curate(without)
    _edit(without, "王芳", "title", "销售总监")
    pd.testing.assert_frame_equal(_by_name(store), _by_name(without))
    retired = store.leads(include_retired=True).set_index("name")
    assert retired.loc["李娜", "status"] == "retired"  # kept, never deleted
    assert verify_chain(store.history()).ok
    assert set(store.history()["action"]) >= {"create", "import", "edit", "restore"}


def test_as_of_restore_equals_the_snapshot_then(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.duckdb")
    import_file(store, write_xlsx(tmp_path / "first.xlsx", FIRST))
    relink_and_curate(store)
    _edit(store, "李娜", "title", "技术总监")
    snapshot = _by_name(store)
    time.sleep(0.05)
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    time.sleep(0.05)
    import_file(store, write_xlsx(tmp_path / "second.xlsx", SECOND))
    relink_and_curate(store)
    _edit(store, "李娜", "company", "云帆国际贸易")
    assert not _by_name(store).equals(snapshot)

    report = restore_all_as_of(store, moment, by="admin")
    assert len(report.imports_undone) == 1
    pd.testing.assert_frame_equal(_by_name(store), snapshot)
    assert verify_chain(store.history()).ok


def test_one_lead_as_of(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.duckdb")
    import_file(store, write_xlsx(tmp_path / "first.xlsx", FIRST))
    relink_and_curate(store)
    before = _by_name(store)
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    time.sleep(0.05)
    _edit(store, "王芳", "email", "wang@163.com")
    _edit(store, "李娜", "email", "li@163.com")
    lead = store.leads().set_index("name").loc["王芳", "lead_id"]
    assert restore_lead_as_of(store, lead, moment, by="admin").fields_restored == 1
    after = _by_name(store)
    assert after.loc["王芳", "email"] == before.loc["王芳", "email"]
    assert after.loc["李娜", "email"] == "li@163.com"  # only the one lead


def test_unmerge_splits_a_merged_lead_back_and_keeps_both_histories(tmp_path: Path) -> None:
    from tests.test_cli import run_cli

    home = tmp_path / "home"
    store = store_in(home)
    import_file(store, write_xlsx(tmp_path / "1.xlsx", [HEADER, ["赵敏", "13500135000", "", "", "", "", "2025-01-01"],
                                                        ["赵敏", "", "zm@163.com", "", "", "", "2025-01-02"]]))
    relink_and_curate(store)
    import_file(store, write_xlsx(tmp_path / "2.xlsx", [HEADER, ["赵敏", "13500135000", "zm@163.com", "", "", "",
                                                                 "2025-03-01"]]))
    outcome = relink_and_curate(store)
    (retired, survivor), = outcome.merges.items()
    done = run_cli(home, "unmerge", survivor, "--by", "admin")
    assert done.returncode == 0, done.stderr
    leads = store.leads().set_index("lead_id")
    assert set(leads.index) == {survivor, retired}
    assert leads.loc[retired, "email"] == "zm@163.com" and leads.loc[retired, "record_count"] == 1
    relink_and_curate(store, full=True)  # never merged again
    assert set(store.leads()["lead_id"]) == {survivor, retired}
    story = store.history(retired)
    assert list(story["action"])[:1] == ["create"] and "merge" in set(story["action"]) and "unmerge" in set(story["action"])
    assert verify_chain(store.history()).ok


def test_undo_import_undoes_the_merge_it_caused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.duckdb")
    import_file(store, write_xlsx(tmp_path / "1.xlsx", [HEADER, ["赵敏", "13500135000", "", "", "", "", "2025-01-01"],
                                                        ["赵敏", "", "zm@163.com", "", "", "", "2025-01-02"]]))
    relink_and_curate(store)
    before = set(store.leads()["lead_id"])
    bridge = import_file(store, write_xlsx(tmp_path / "2.xlsx", [HEADER, ["赵敏", "13500135000", "zm@163.com", "", "",
                                                                          "", "2025-03-01"]]))
    assert relink_and_curate(store).merges
    undo_import(store, bridge.import_id, by="admin")
    assert set(store.leads()["lead_id"]) == before  # both leads back, with their own ids
