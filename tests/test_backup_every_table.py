"""Backups hold every table: a store after import, unmerge, edit, decision and undo comes back whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datafactory_pipelines.backup import backed_up_tables
from datafactory_pipelines.decisions import decide, edit_leads
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.restore import undo_import, unmerge
from datafactory_pipelines.store.schema import TABLE_NAMES
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx
from tests.test_cli import run_cli

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "来源", "登记日期"]


def _every_table(store) -> dict[str, pd.DataFrame]:
    snapshot = store.table_snapshot(store.table_names())
    return {name: frame.sort_values(list(frame.columns)).reset_index(drop=True) for name, frame in snapshot.items()}


def _store_that_did_everything(tmp_path: Path, home: Path):
    store = store_in(home)
    import_file(store, write_xlsx(tmp_path / "1.xlsx", [
        HEADER, ["赵敏", "13500135000", "", "", "", "", "2025-01-01"], ["赵敏", "", "zm@163.com", "", "", "", "2025-01-02"],
        ["王芳", "13700137000", "", "星海科技", "销售经理", "展会", "2025-01-01"]]))
    relink_and_curate(store)
    import_file(store, write_xlsx(tmp_path / "2.xlsx", [
        HEADER, ["赵敏", "13500135000", "zm@163.com", "", "", "", "2025-03-01"],
        ["王芳", "13700137000", "", "星海科技", "采购经理", "官网", "2025-06-01"]]))
    merged = relink_and_curate(store).merges
    (_, survivor), = merged.items()
    unmerge(store, survivor, by="admin")
    wang = store.leads().set_index("name").at["王芳", "lead_id"]
    edit_leads(store, pd.DataFrame([{"lead_id": wang, "field": "email", "value": "wf@qq.com"}]), by="李娜")
    conflict = store.conflicts()
    decide(store, pd.DataFrame({"conflict_id": conflict["conflict_id"], "decision": "incoming"}), by="李娜")
    third = import_file(store, write_xlsx(tmp_path / "3.xlsx", [HEADER, ["孙伟", "13600136000", "", "", "", "", ""]]))
    relink_and_curate(store)
    undo_import(store, third.import_id or "", by="admin")
    return store, survivor


def test_backup_then_restore_into_an_empty_home_gives_every_table_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store, survivor = _store_that_did_everything(tmp_path, home)
    assert sorted(store.table_names()) == sorted(TABLE_NAMES)  # the catalog is the one DDL list
    assert set(backed_up_tables(store)) == set(TABLE_NAMES) - {"history"}  # history goes in chunks
    original = _every_table(store)
    for name in ("imports", "records", "leads", "history", "conflicts", "lead_overrides", "lead_splits",
                 "match_links", "store_meta"):
        assert len(original[name]), f"the scenario leaves {name} empty, so it would prove nothing about it"

    done = run_cli(home, "backup", tmp_path / "backups")
    assert done.returncode == 0, done.stderr
    folder = done.stdout.split("backup written to ")[1].split(":")[0]
    restored_home = tmp_path / "restored"
    done = run_cli(restored_home, "restore-backup", folder, "--yes")
    assert done.returncode == 0, done.stderr

    copy = store_in(restored_home)
    again = _every_table(copy)
    assert sorted(again) == sorted(original)
    for name, frame in original.items():
        pd.testing.assert_frame_equal(again[name], frame, check_dtype=False, obj=name)
    # the restored store remembers the unmerge: a full relink keeps the split leads apart
    split = set(copy.lead_splits()["lead_b"])
    relink_and_curate(copy, full=True)
    assert split and split <= set(copy.leads()["lead_id"])
    assert survivor in set(copy.leads()["lead_id"])
