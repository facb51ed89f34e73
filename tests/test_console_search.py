"""Finding a lead: the search index beside the store, the tails written after it, and the scan without it."""

from __future__ import annotations

from pathlib import Path

from datafactory_pipelines.console.search import find_leads
from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.pipeline import import_file, relink_and_curate
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
    assert built["keys"] > 0 and store.search_index_lag() == {"records": 0, "history": 0}
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
