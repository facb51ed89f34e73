"""Issue 19, the store's defects, one test each, through the APIs main already had (so each fails there).

1: restore-backup trusted the manifest (tables removed, history cut, leads edited with the hash updated,
   `rows` never checked, absolute paths); 2: SQL injection through a manifest table name; 3: `restore --as-of`
   retired every lead with no preview and no confirmation; 10: `--as-of` with a time zone gave a traceback.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from datafactory_pipelines.backup import BackupError, backup, restore_backup
from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.restore import restore_all_as_of, restore_lead_as_of
from datafactory_pipelines.store import open_store
from tests import hostile_backups
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx
from tests.test_cli import run_cli

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司"]
ROWS = [HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技"], ["李娜", "13900139000", "ln@163.com", "云帆贸易"],
        ["赵敏", "13500135000", "zm@126.com", "恒信物流"]]


@pytest.fixture(scope="module")
def good_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("defects")
    store = store_in(base / "home")
    import_file(store, write_xlsx(base / "a.xlsx", ROWS))
    relink_and_curate(store)
    lead = store.leads()["lead_id"].iloc[0]
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "company", "value": "新公司"}]), by="李娜")
    return backup(store, base / "backups")


def _forged(good: Path, where: Path, forge, *extra) -> Path:
    root = where / "root"
    shutil.copytree(good.parent, root)
    folder = root / good.name
    forge(folder, *extra)
    return folder


@pytest.mark.parametrize("forge", [hostile_backups.tables_removed, hostile_backups.history_rows_cut,
                                   hostile_backups.lead_values_changed_hash_updated,
                                   hostile_backups.rows_field_lies, hostile_backups.absolute_path],
                         ids=lambda f: f.__name__)
def test_defect_1_a_backup_that_lies_is_refused_and_nothing_restored(good_backup: Path, tmp_path: Path,
                                                                      forge, monkeypatch) -> None:
    monkeypatch.delenv("DATAFACTORY_BACKUP_KEY", raising=False)
    folder = _forged(good_backup, tmp_path, forge)
    target = open_store(tmp_path / "target.duckdb")
    with pytest.raises(BackupError):
        restore_backup(folder, target)
    assert target.counts()["records"] == 0 and target.leads(include_retired=True).empty
    assert target.history().empty


def test_defect_2_a_table_name_from_the_manifest_never_runs_as_sql(good_backup: Path, tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.delenv("DATAFACTORY_BACKUP_KEY", raising=False)
    pwned = tmp_path / "pwned.csv"
    folder = _forged(good_backup, tmp_path, hostile_backups.injected_table_name, pwned)
    target = open_store(tmp_path / "target.duckdb")
    with pytest.raises(BackupError, match="names a table this store does not have"):
        restore_backup(folder, target)
    assert not pwned.exists()
    assert target.counts()["records"] == 0


def _home_with_leads(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    store = store_in(home)
    import_file(store, write_xlsx(tmp_path / "a.xlsx", ROWS))
    relink_and_curate(store)
    return home


def test_defect_3_restore_as_of_1970_is_previewed_and_not_done_without_a_yes(tmp_path: Path) -> None:
    home = _home_with_leads(tmp_path)
    store = store_in(home)
    before = store.leads(include_retired=True)
    history_rows = len(store.history())
    # no terminal and no --yes (as in CI): shown, refused, nothing changed
    done = run_cli(home, "restore", "--as-of", "1970-01-01 00:00")
    assert done.returncode == 2 and "--yes" in done.stderr
    assert "leads retired: 3" in done.stdout and "active leads: 3 -> 0" in done.stdout
    dry = run_cli(home, "restore", "--as-of", "1970-01-01 00:00", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing was written" in dry.stdout and "leads retired: 3" in dry.stdout
    pd.testing.assert_frame_equal(store.leads(include_retired=True), before)
    assert len(store.history()) == history_rows  # the preview's own rows were rolled back
    assert store.imports()["undone_at"].isna().all()


def test_defect_10_as_of_with_a_time_zone_is_understood(tmp_path: Path) -> None:
    """`restore --as-of '2026-12-07T16:16:00+08:00'` gave a traceback (tz-aware against naive)."""
    home = _home_with_leads(tmp_path)
    store = store_in(home)
    lead = store.leads()["lead_id"].iloc[0]
    company = store.leads().set_index("lead_id").at[lead, "company"]
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "company", "value": "改过的公司"}]), by="李娜")
    edited_at = pd.Timestamp(store.history(lead)["changed_at"].max()).to_pydatetime()
    shanghai = timezone(timedelta(hours=8))
    # a moment just before the edit, written in Beijing time: the edit is undone
    before_edit = (edited_at - timedelta(microseconds=1)).replace(tzinfo=timezone.utc).astimezone(shanghai)
    report = restore_lead_as_of(store, lead, before_edit, by="admin")
    assert report.fields_restored == 1
    assert store.leads().set_index("lead_id").at[lead, "company"] == company
    # everything as of a zoned moment after every change: nothing to do, no error
    later = datetime.now(timezone.utc).astimezone(shanghai) + timedelta(hours=1)
    assert restore_all_as_of(store, later, by="admin").imports_undone == []


def _leads_view(store) -> pd.DataFrame:
    columns = ["lead_id", "name", "mobile", "mobile_alternates", "email", "company", "status", "merged_into"]
    return store.leads(include_retired=True)[columns].sort_values("lead_id").reset_index(drop=True)


def test_defect_3_undo_then_reimport_gives_the_same_leads_with_the_same_ids(tmp_path: Path) -> None:
    """Undoing an import and importing the same file again gave 915 of 2,275 leads new ids; now the leads
    come back as they were, ids included, as in a store that never saw the undo."""
    from datafactory_pipelines.restore import undo_import
    from datafactory_pipelines.sample_data import write_sample_files

    files = write_sample_files(tmp_path / "inbox", people=60, records=150, files=2, seed=11).files
    store = open_store(tmp_path / "a.duckdb")
    never = open_store(tmp_path / "never.duckdb")
    for target in (store, never):
        for path in files:
            import_file(target, path)
            relink_and_curate(target)
    before = _leads_view(store)
    last = store.imports()["import_id"].iloc[-1]
    report = undo_import(store, last, by="admin")
    assert report.leads_retired  # the second file made leads of its own
    again = import_file(store, files[-1])
    assert again.import_id
    relink_and_curate(store)
    after = _leads_view(store)
    assert set(report.leads_retired) <= set(after.loc[after["status"] == "active", "lead_id"])
    pd.testing.assert_frame_equal(after, before)
    pd.testing.assert_frame_equal(after, _leads_view(never))


def test_defect_3_restore_as_of_1970_can_be_taken_back(tmp_path: Path) -> None:
    """`restore --as-of 1970` retired every lead and nothing could take it back. Now every restore has an id
    and `restore --undo-restore ID` brings the store back as if it never happened: the same leads with the
    same ids and values, the field values it set gone, and all of it new history rows on a chain that holds."""
    from datafactory_pipelines.history import verify_chain

    home = _home_with_leads(tmp_path)
    store = store_in(home)
    import_file(store, write_xlsx(tmp_path / "b.xlsx", [HEADER, ["孙伟", "13600136000", "sw@qq.com", "星海科技"]]))
    relink_and_curate(store)
    lead = store.leads()["lead_id"].iloc[0]
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "company", "value": "手工改的公司"}]), by="李娜")
    before = _leads_view(store)
    history_rows = len(store.history())
    done = run_cli(home, "restore", "--as-of", "1970-01-01 00:00", "--yes")
    assert done.returncode == 0, done.stderr
    assert store.leads().empty
    restore_id = done.stdout.split("restore id ")[1].split()[0]
    taken_back = run_cli(home, "restore", "--undo-restore", restore_id, "--yes")
    assert taken_back.returncode == 0, taken_back.stderr
    pd.testing.assert_frame_equal(_leads_view(store), before)
    history = store.history()
    assert len(history) > history_rows and verify_chain(history).ok  # new rows only, the chain intact
    assert store.imports()["undone_at"].isna().all()
    again = run_cli(home, "restore", "--undo-restore", restore_id, "--yes")
    assert again.returncode == 2 and "already taken back" in again.stderr


def test_a_field_restore_taken_back_gives_the_value_it_replaced(tmp_path: Path) -> None:
    from datafactory_pipelines.restore import undo_restore

    home = _home_with_leads(tmp_path)
    store = store_in(home)
    lead = store.leads()["lead_id"].iloc[0]
    moment = pd.Timestamp(store.history(lead)["changed_at"].max()).to_pydatetime()
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "company", "value": "手工改的公司"}]), by="李娜")
    before = _leads_view(store)
    report = restore_lead_as_of(store, lead, moment, by="admin")
    assert report.fields_restored == 1 and report.restore_id
    assert store.leads().set_index("lead_id").at[lead, "company"] != "手工改的公司"
    undo_restore(store, report.restore_id, by="admin")
    pd.testing.assert_frame_equal(_leads_view(store), before)
    assert store.restores().set_index("restore_id").at[report.restore_id, "undone_by"] == "admin"
