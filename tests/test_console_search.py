"""Finding a lead: the search index beside the store (its keys and the leads' result columns), the tails
written after it, and the scan without it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from datafactory_pipelines.console.search import find_leads
from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.restore import undo_import, unmerge
from datafactory_pipelines.store import open_store
from tests.conftest import write_xlsx
from tests.console_helpers import HEADER, console_home


def _found(store, text: str) -> set[str]:
    return {row["name"] for row in find_leads(store, text)}


def test_index_then_tails_then_no_index(tmp_path: Path) -> None:
    store = open_store(console_home(tmp_path / "home"))
    questions = {"王芳": "王芳", "wangfang": "王芳", "Wang Fang": "王芳", "186-1234-5678": "王芳",
                 "LN@163.com": "李娜", "星海科技": "王芳", "云帆贸易": "李娜"}
    for text, name in questions.items():  # no index yet: scans
        assert _found(store, text) == {name}, text
    assert store.search_index_lag() is None
    built = store.build_search_index()
    assert built["keys"] > 0 and store.search_index_lag() == {"records": 0, "history": 0, "leads": 0}
    for text, name in questions.items():
        assert _found(store, text) == {name}, text
    # written after the index: a new file's records, a hand-set WeChat id, a merge
    import_file(store, write_xlsx(tmp_path / "later.xlsx", [
        HEADER, ["周杰", "13300133000", "zj@qq.com", "蓝鲸科技", "经理", "新展会", "2026-05-01"]]))
    relink_and_curate(store)
    zhao = next(r["lead_id"] for r in find_leads(store, "赵敏"))
    edit_leads(store, [{"lead_id": zhao, "field": "wechat", "value": "zhaomin_wx"}], by="li")
    assert store.search_index_lag()["records"] == 1
    assert _found(store, "13300133000") == {"周杰"} and _found(store, "zhaomin_wx") == {"赵敏"}
    assert _found(store, "qianwei@163.com") == {"钱伟"}  # the merged lead's value finds the survivor
    assert [r["lead_id"] for r in find_leads(store, zhao)] == [zhao]
    store.build_search_index()
    assert _found(store, "13300133000") == {"周杰"} and _found(store, "zhaomin_wx") == {"赵敏"}
    # an index of another store (here: of another home, copied beside this store) is not used
    other = open_store(console_home(tmp_path / "other"))
    other.build_search_index()
    store.search_index_path.write_bytes(other.search_index_path.read_bytes())
    assert store.search_index_lag() is None
    assert _found(store, "zhaomin_wx") == {"赵敏"} and _found(store, "13300133000") == {"周杰"}
    store.search_index_path.unlink()
    assert _found(store, "zhaomin_wx") == {"赵敏"} and _found(store, "wangfang") == {"王芳"}
    assert find_leads(store, "nobody at all") == []


QUESTIONS = ["王芳", "wangfang", "李娜", "ln@163.com", "13900139000", "赵敏", "钱伟", "qianwei@163.com", "13200132000",
             "云帆贸易", "星海科技", "周杰", "13300133000", "蓝鲸科技", "绿地建材", "新绿地集团"]


def _rows(store, text: str) -> list[dict]:
    return [{k: row[k] for k in ("lead_id", "name", "mobile", "email", "company", "status", "merged_into",
                                 "record_count", "updated_at")} for row in find_leads(store, text)]


def _scanned(store, text: str) -> list[dict]:
    """The same question without the index: the store's own columns scanned (the truth the index must give)."""
    aside = store.search_index_path.with_name("aside.duckdb")
    store.search_index_path.rename(aside)
    try:
        return _rows(store, text)
    finally:
        aside.rename(store.search_index_path)


def _assert_index_agrees(store, step: str) -> None:
    """Over the active leads: a retired lead (every record of it undone) is found by the scan through its own
    row, while the index holds the records' values (it is not searched for, a lead that no longer exists)."""
    for text in QUESTIONS:
        indexed = [row for row in _rows(store, text) if row["status"] == "active"]
        assert indexed == [row for row in _scanned(store, text) if row["status"] == "active"], (step, text)


def test_result_columns_follow_imports_edits_merges_unmerges_and_undo(tmp_path: Path) -> None:
    """The result rows come from the index while their leads are as built, and from the store once a lead
    changed: after each change every question answers as the scan of the store does, before the index is
    built again and after."""
    store = open_store(console_home(tmp_path / "home"))
    store.build_search_index()
    _assert_index_agrees(store, "as built")
    li_na = find_leads(store, "李娜")[0]
    # an import: a new lead, and a record that joins 李娜 (her record count moves, her row is read again)
    later = import_file(store, write_xlsx(tmp_path / "later.xlsx", [
        HEADER, ["周杰", "13300133000", "zj@qq.com", "蓝鲸科技", "经理", "新展会", "2026-05-01"],
        ["李娜", "13900139000", "ln@163.com", "云帆贸易", "技术总监", "新展会", "2026-05-02"]]))
    relink_and_curate(store)
    assert find_leads(store, "李娜")[0]["record_count"] == li_na["record_count"] + 1
    assert [r["name"] for r in find_leads(store, "蓝鲸科技")] == ["周杰"]
    _assert_index_agrees(store, "import")
    # an edit of a column the result list shows
    zhao = find_leads(store, "赵敏")[0]["lead_id"]
    edit_leads(store, [{"lead_id": zhao, "field": "company", "value": "新绿地集团"}], by="li")
    assert [r["company"] for r in find_leads(store, "赵敏")] == ["新绿地集团"]
    assert [r["lead_id"] for r in find_leads(store, "新绿地集团")] == [zhao]
    _assert_index_agrees(store, "edit")
    # the merged 钱伟 split back into two leads, each found by its own contact
    qian = find_leads(store, "钱伟")
    assert len(qian) == 1
    unmerge(store, qian[0]["lead_id"], by="boss")
    assert len(find_leads(store, "钱伟")) == 2
    _assert_index_agrees(store, "unmerge")
    store.build_search_index()
    _assert_index_agrees(store, "built again after the unmerge")
    # the import undone: 周杰 active no more, 李娜 back to her record count
    undo_import(store, later.import_id or "", by="boss")
    assert all(r["status"] != "active" for r in find_leads(store, "周杰"))
    assert find_leads(store, "李娜")[0]["record_count"] == li_na["record_count"]
    _assert_index_agrees(store, "undo")
    store.build_search_index()
    _assert_index_agrees(store, "built again after the undo")


def test_an_index_of_the_earlier_format_is_not_used(tmp_path: Path) -> None:
    """An index written by the code before its result columns (marks without a format) is left aside: searches
    scan, and the console sees no index (lag None) and builds one."""
    store = open_store(console_home(tmp_path / "home"))
    old = duckdb.connect(str(store.search_index_path))
    old.execute("CREATE TABLE search_keys AS SELECT '王芳' AS key, 1::BIGINT AS record_id, NULL::VARCHAR AS lead_id")
    old.execute("CREATE TABLE marks AS SELECT 1::BIGINT AS record_id, 1::BIGINT AS seq, '' AS head_hash")
    old.close()
    assert store.search_index_lag() is None
    assert _found(store, "王芳") == {"王芳"} and _found(store, "云帆贸易") == {"李娜"}
    store.build_search_index()
    assert store.search_index_lag() == {"records": 0, "history": 0, "leads": 0}
    assert _found(store, "王芳") == {"王芳"}
