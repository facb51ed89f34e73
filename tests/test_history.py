"""History is sacred: every change is a hash-chained row; tampering is found."""

from pathlib import Path

import pandas as pd

from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.history import verify_chain
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from tests.backends import both_backends, store_in, tamper
from tests.conftest import write_xlsx
from tests.test_cli import run_cli

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "来源", "登记日期"]


def _store_with_story(tmp_path: Path):
    store = store_in(tmp_path / "home")
    import_file(store, write_xlsx(tmp_path / "a.xlsx", [HEADER, ["王芳", "13700137000", "", "星海科技", "销售经理",
                                                                 "展会", "2025-01-01"]]))
    relink_and_curate(store, actor="ops", cause="a")
    import_file(store, write_xlsx(tmp_path / "b.xlsx", [HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技",
                                                                 "销售经理", "官网", "2025-06-01"]]))
    relink_and_curate(store, actor="ops", cause="b")
    lead = store.leads()["lead_id"].iloc[0]
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "title", "value": "销售总监"}]), by="李娜", note="客户来电")
    return store, lead


def test_every_change_is_chained_and_readable(tmp_path: Path) -> None:
    store, lead = _store_with_story(tmp_path)
    history = store.history(lead)
    assert set(history["action"]) == {"create", "import", "edit"}
    email = history[history["field"] == "email"].iloc[0]
    assert (email["old_value"], email["new_value"], email["action"], email["cause"]) == ("", "wf@qq.com", "import", "b")
    title = history[history["field"] == "title"].iloc[-1]
    assert (title["old_value"], title["new_value"], title["actor"]) == ("销售经理", "销售总监", "李娜")
    check = verify_chain(store.history())
    assert check.ok and check.rows == len(store.history())
    shown = run_cli(tmp_path / "home", "history", lead).stdout
    assert "title: 销售经理 → 销售总监  [edit by 李娜; 客户来电]" in shown


def test_tampering_is_named(tmp_path: Path) -> None:
    store, lead = _store_with_story(tmp_path)
    assert run_cli(tmp_path / "home", "verify-history").returncode == 0
    target = int(store.history()["seq"].iloc[2])
    # someone on the way out rewrites one row (DuckDB: in the file; PostgreSQL: past the history guard)
    tamper(store, "UPDATE history SET new_value = '13800000000' WHERE seq = ?", [target])
    done = run_cli(tmp_path / "home", "verify-history")
    assert done.returncode == 1
    assert f"row {target}: its content does not match its hash" in done.stdout


def _tables(store) -> dict[str, pd.DataFrame]:
    snapshot = store.table_snapshot(store.table_names())
    return {name: frame.sort_values(list(frame.columns[:2])).reset_index(drop=True) for name, frame in snapshot.items()}


def test_backup_restores_into_an_empty_store_identically(tmp_path: Path) -> None:
    store, lead = _store_with_story(tmp_path)
    first = run_cli(tmp_path / "home", "backup", tmp_path / "backups")
    assert first.returncode == 0, first.stderr
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "email", "value": "wang@163.com"}]), by="李娜")
    second = run_cli(tmp_path / "home", "backup", tmp_path / "backups")
    chunks = sorted((tmp_path / "backups" / "history").glob("*.parquet"))
    assert len(chunks) == 2  # the second backup wrote only the new history rows
    folder = second.stdout.split("backup written to ")[1].split(":")[0]
    restored = run_cli(tmp_path / "restored", "restore-backup", folder, "--yes")
    assert restored.returncode == 0, restored.stderr
    original, copy = _tables(store), _tables(store_in(tmp_path / "restored"))
    for name in original:
        pd.testing.assert_frame_equal(original[name], copy[name], check_dtype=False, obj=name)
    assert run_cli(tmp_path / "restored", "verify-history").returncode == 0

    again = run_cli(tmp_path / "restored", "restore-backup", folder, "--yes")
    assert again.returncode == 2 and "not empty" in again.stderr  # never over a store that holds data


def test_a_changed_backup_file_is_refused(tmp_path: Path) -> None:
    store, _ = _store_with_story(tmp_path)
    from datafactory_pipelines.backup import backup

    folder = backup(store, tmp_path / "backups")
    leads = pd.read_parquet(folder / "leads.parquet")
    leads.loc[0, "mobile"] = "13800000000"
    leads.to_parquet(folder / "leads.parquet", index=False)
    done = run_cli(tmp_path / "other", "restore-backup", folder, "--yes")
    assert done.returncode == 1 and "leads.parquet: SHA-256 does not match the manifest" in done.stderr
    assert store_in(tmp_path / "other").counts()["records"] == 0


def test_each_lead_of_a_bulk_import_names_its_own_imports(tmp_path: Path) -> None:
    """Files imported together: a lead's history names the imports of its own records, not every file of the
    batch (at 100 files, every row carried 2 KB of ids: the 1M base import's memory went to that text)."""
    store = store_in(tmp_path)
    for path in _two_files(tmp_path):
        import_file(store, path)
    relink_and_curate(store)  # both files linked in one pass
    _assert_each_lead_names_its_own_imports(store)


def _two_files(tmp_path: Path) -> tuple[Path, Path]:
    """王芳 in both files, 李雷 in the second only."""
    a = write_xlsx(tmp_path / "a.xlsx", [HEADER, ["王芳", "13700137000", "", "星海科技", "销售经理", "展会", "2025-01-05"]])
    b = write_xlsx(tmp_path / "b.xlsx", [HEADER, ["李雷", "13900139000", "", "远景物流", "采购", "官网", "2025-02-01"],
                                         ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售总监", "官网",
                                          "2025-03-01"]])
    return a, b


def _assert_each_lead_names_its_own_imports(store) -> pd.DataFrame:
    """李雷's history names b.xlsx only, 王芳's both files, and the chain holds; returns the history."""
    imports = dict(zip(store.imports()["file_name"], store.imports()["import_id"], strict=True))
    history = store.history()
    causes = history.groupby("lead_id")["cause"].agg(lambda c: set(c))
    leads = store.leads().set_index("name")["lead_id"]
    assert causes[leads["李雷"]] == {imports["b.xlsx"]}
    assert causes[leads["王芳"]] == {",".join(sorted([imports["a.xlsx"], imports["b.xlsx"]]))}
    assert verify_chain(history).ok
    return history


def test_files_imported_in_one_call_each_lead_names_its_own_imports(tmp_path: Path) -> None:
    """`datafactory import a b`: a lead's history names the imports of its own records, not every file of the
    call (the CLI gave the whole call's ids as the cause of every row)."""
    done = run_cli(tmp_path / "home", "import", *_two_files(tmp_path), "--by", "ops")
    assert done.returncode == 0, done.stderr
    store = store_in(tmp_path / "home")
    assert set(_assert_each_lead_names_its_own_imports(store)["actor"]) == {"ops"}
