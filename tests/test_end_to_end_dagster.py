"""The spine, end to end: files dropped in the inbox -> sensor -> one run per file -> curated leads."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.resources import LeadStoreResource
from datafactory_pipelines.config import Paths
from datafactory_pipelines.definitions import defs
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store
from sensors.inbox import inbox_sensor
from tests.conftest import pairwise_f1, write_csv, write_xlsx


def _evaluate_sensor(instance: dg.DagsterInstance) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()})
    result = inbox_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def _run(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("import_lead_file").execute_in_process(
        instance=instance, partition_key=request.partition_key, run_config=request.run_config,
        tags=request.tags, raise_on_error=False,
    )


def test_drop_files_get_curated_leads(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "展会名单.xlsx", [
        ["2026 上海展会 线索"],
        ["联系人", "手机号码", "电子邮箱", "单位", "职务", "客户等级"],
        ["张伟", "+86 138 0013 8000", "ZW@QQ.COM", "深圳星海科技有限公司", "销售经理", "A"],
        ["李娜", "13900139000", "", "杭州云帆贸易有限公司", "工程师", "B"],
        ["无名氏", "1234", "", "", "", "C"],  # 5+ digits would be read as a QQ number
    ])
    write_csv(paths.inbox / "web_form.csv", [
        ["Name", "Mobile", "Email", "Company", "Title"],
        ["張偉", "138-0013-8000", "zw@qq.com", "星海科技", "Sales Manager"],
        ["Amy Chen", "13600136000", "amy@example.com", "Acme", "CTO"],
    ], encoding="gb18030")
    (paths.inbox / "broken.xlsx").write_bytes(b"PK\x03\x04 damaged")

    result = _evaluate_sensor(instance)
    assert len(result.run_requests) == 3
    assert len({r.run_key for r in result.run_requests}) == 3
    outcomes = {r.partition_key.split("-")[0]: _run(instance, r) for r in result.run_requests}
    assert outcomes["展会名单"].success and outcomes["web_form"].success
    assert not outcomes["broken"].success

    # the good files are archived, the bad one is moved aside with its reason
    assert sorted(p.suffix for p in paths.processed.iterdir()) == [".csv", ".xlsx"]
    assert "cannot be opened as a spreadsheet" in (paths.rejected / "broken.xlsx.error.txt").read_text("utf-8")
    assert not list(paths.inbox.iterdir())

    leads = open_store(paths.store).leads().set_index("name")
    assert sorted(leads.index) == ["Amy Chen", "张伟", "李娜"]  # 无名氏 reaches nobody: set aside
    assert leads.loc["张伟", "record_count"] == 2
    assert leads.loc["张伟", "mobile"] == "13800138000"
    assert leads.loc["张伟", "title"] == "销售经理"

    # materializations a data engineer looks at, with personal data masked in previews
    std = instance.get_latest_materialization_event(dg.AssetKey("standardized_contacts"))
    curated = instance.get_latest_materialization_event(dg.AssetKey("curated_leads"))
    assert curated.asset_materialization.metadata["active_leads"].value == 3
    preview = std.asset_materialization.metadata["preview"].value
    assert "138****8000" in preview and "13800138000" not in preview
    clusters = instance.get_latest_materialization_event(dg.AssetKey("entity_clusters")).asset_materialization
    assert "█" in clusters.metadata["match_weight_histogram"].value
    assert "mobile" in clusters.metadata["model"].value
    quarantine = instance.get_latest_materialization_event(dg.AssetKey("quarantined_records"))
    assert quarantine.asset_materialization.metadata["quarantined_in_store"].value == 1
    checks = [e for r in outcomes.values() for e in r.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(e.event_specific_data.passed for e in checks)


def test_same_file_dropped_twice_imports_once(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    paths = Paths.from_env().ensure()
    rows = [["姓名", "手机"], ["王芳", "13700137000"]]
    write_xlsx(paths.inbox / "list.xlsx", rows)
    first = _evaluate_sensor(instance)
    assert len(first.run_requests) == 1
    assert _run(instance, first.run_requests[0]).success
    # the operator drops the very same file again, under another name
    (paths.inbox / "list (1).xlsx").write_bytes(next(paths.processed.glob("*.xlsx")).read_bytes())
    second = _evaluate_sensor(instance)  # the store, not Dagster's memory, says whether content is new
    assert len(second.run_requests) == 1 and second.run_requests[0].run_key != first.run_requests[0].run_key
    run = _run(instance, second.run_requests[0])
    assert run.success
    std = run.asset_materializations_for_node("raw_imports")
    assert any(str(m.metadata["import_status"].value).startswith("duplicate") for m in std
               if "import_status" in m.metadata)
    assert (paths.processed / "duplicates" / "list (1).xlsx").exists()
    assert open_store(paths.store).counts()["imports"] == 1


def test_rejected_file_leaves_store_unchanged(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "good.xlsx", [["姓名", "手机"], ["王芳", "13700137000"]])
    assert _run(instance, _evaluate_sensor(instance).run_requests[0]).success
    before = open_store(paths.store).counts()
    write_xlsx(paths.inbox / "no_contacts.xlsx", [["姓名", "公司"], ["赵六", "某公司"]])
    run = _run(instance, _evaluate_sensor(instance).run_requests[0])
    assert not run.success
    assert open_store(paths.store).counts() == before
    error = (paths.rejected / "no_contacts.xlsx.error.txt").read_text("utf-8")
    assert "row 1" in error and "no contact column" in error


def test_generated_set_reaches_f1(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    paths = Paths.from_env().ensure()
    sample = write_sample_files(paths.inbox, people=2000, records=5000, files=4, seed=11)
    result = _evaluate_sensor(instance)
    assert all(_run(instance, r).success for r in result.run_requests)
    links = open_store(paths.store).links()
    truth = sample.truth.rename(columns={"file": "source_file"})
    merged = truth.merge(links, on=["source_file", "source_row"], how="left")
    merged["lead_id"] = merged["lead_id"].fillna(pd.Series("unlinked-" + merged.index.astype(str), index=merged.index))
    precision, recall, f1 = pairwise_f1(merged["person_id"], merged["lead_id"])
    assert f1 >= 0.90, (precision, recall, f1)
    assert precision >= 0.98


def test_nightly_relink_job_keeps_the_leads(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    paths = Paths.from_env().ensure()
    write_sample_files(paths.inbox, people=300, records=800, files=2, seed=4)
    assert all(_run(instance, r).success for r in _evaluate_sensor(instance).run_requests)
    before = open_store(paths.store).links()[["record_id", "lead_id"]]
    run = defs.resolve_job_def("relink_leads").execute_in_process(
        instance=instance, run_config={"ops": {"entity_clusters": {"config": {"full_relink": True}}}})
    assert run.success
    after = open_store(paths.store).links()[["record_id", "lead_id"]]
    assert before.equals(after)


def test_definitions_validate(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "datafactory_pipelines.definitions"],
        capture_output=True, text=True, env={"DAGSTER_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful" in done.stderr + done.stdout


def _run_request(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, run_config=request.run_config,
        tags=request.tags, raise_on_error=False,
    )


def test_decision_workbook_and_edits_sheet_through_the_inbox(datafactory_home: Path,
                                                             instance: dg.DagsterInstance) -> None:
    import openpyxl

    from datafactory_pipelines.workbooks import GROUP_SHEET, export_conflicts

    paths = Paths.from_env().ensure()
    header = ["姓名", "手机", "职位", "来源", "登记日期"]
    write_xlsx(paths.inbox / "a.xlsx", [header, ["王芳", "13700137000", "销售经理", "展会2025", "2025-01-01"],
                                        ["李娜", "13900139000", "工程师", "展会2025", "2025-01-01"]])
    assert all(_run_request(instance, r).success for r in _evaluate_sensor(instance).run_requests)
    write_xlsx(paths.inbox / "b.xlsx", [header, ["王芳", "13700137000", "销售总监", "展会2026", "2026-01-01"],
                                        ["李娜", "13900139000", "技术总监", "展会2026", "2026-01-01"]])
    assert all(_run_request(instance, r).success for r in _evaluate_sensor(instance).run_requests)
    queue = instance.get_latest_materialization_event(dg.AssetKey("conflict_queue")).asset_materialization
    assert queue.metadata["open_conflicts"].value == 2 and queue.metadata["groups"].value == 1

    store = open_store(paths.store)
    stale, _ = export_conflicts(store, paths.home / "stale.xlsx")
    workbook_path, _ = export_conflicts(store, paths.home / "冲突决定.xlsx")
    workbook = openpyxl.load_workbook(workbook_path)
    workbook[GROUP_SHEET]["H2"] = "采用新值"
    workbook.save(paths.inbox / "冲突决定.xlsx")
    requests = _evaluate_sensor(instance).run_requests
    assert [r.job_name for r in requests] == ["apply_operator_workbook"]
    assert _run_request(instance, requests[0]).success
    assert sorted(store.leads()["title"]) == ["技术总监", "销售总监"]
    assert (paths.processed / "冲突决定.xlsx").exists() is False and any(paths.processed.glob("冲突决定-*.xlsx"))

    # the stale copy (same conflicts, now decided) is refused and set aside with the reason
    workbook = openpyxl.load_workbook(stale)
    workbook[GROUP_SHEET]["H2"] = "保留现有"
    workbook.save(paths.inbox / "stale.xlsx")
    run = _run_request(instance, _evaluate_sensor(instance).run_requests[0])
    assert not run.success
    assert "already decided" in (paths.rejected / "stale.xlsx.error.txt").read_text("utf-8")
    assert sorted(store.leads()["title"]) == ["技术总监", "销售总监"]

    # an edits sheet: lead id plus the columns to change
    lead = store.leads().set_index("name").loc["王芳", "lead_id"]
    workbook = openpyxl.Workbook()
    workbook.active.title = "修改"
    workbook.active.append(["线索编号", "邮箱"])
    workbook.active.append([lead, "WF@QQ.COM"])
    workbook.save(paths.inbox / "批量修改.xlsx")
    requests = _evaluate_sensor(instance).run_requests
    assert requests[0].tags["datafactory/workbook"] == "edits"
    assert _run_request(instance, requests[0]).success
    assert store.leads().set_index("name").loc["王芳", "email"] == "wf@qq.com"


HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "登记日期"]
FIRST = [HEADER, ["王芳", "13700137000", "", "星海科技", "销售经理", "2025-01-01"],
         ["李娜", "13900139000", "ln@163.com", "云帆贸易", "工程师", "2025-01-01"]]
SECOND = [HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售经理", "2025-06-01"],
          ["赵敏", "13500135000", "zm@126.com", "恒信物流", "采购经理", "2025-06-01"]]


def _import_two_files(inst: dg.DagsterInstance, paths: Paths) -> list[str]:
    keys = []
    for name, rows in (("first.xlsx", FIRST), ("second.xlsx", SECOND)):
        write_xlsx(paths.inbox / name, rows)
        request = _evaluate_sensor(inst).run_requests[0]
        assert _run(inst, request).success
        keys.append(request.partition_key)
    return keys


def test_undo_lead_file_job_equals_undo_import(tmp_path: Path, monkeypatch) -> None:
    """Undo is asked for by name: the partitioned undo_lead_file job does exactly what restore --undo-import does."""
    from datafactory_pipelines.restore import undo_import

    states = []
    for way in ("job", "undo"):
        home = tmp_path / way
        (home / "dagster_home").mkdir(parents=True)
        monkeypatch.setenv("DATAFACTORY_HOME", str(home))
        monkeypatch.setenv("DATAFACTORY_INBOX_SETTLE_SECONDS", "0")
        paths = Paths.from_env().ensure()
        with dg.DagsterInstance.local_temp(str(home / "dagster_home")) as inst:
            keys = _import_two_files(inst, paths)
            store = open_store(paths.store)
            if way == "job":
                assert defs.resolve_job_def("undo_lead_file").execute_in_process(
                    instance=inst, partition_key=keys[0]).success
            else:
                undo_import(store, keys[0], by="admin")
            leads = store.leads(include_retired=True).set_index("name")
            states.append(leads[["status", "mobile", "email", "company", "title", "record_count"]].sort_index())
    pd.testing.assert_frame_equal(states[0], states[1])
    assert states[0].loc["李娜", "status"] == "retired"


def _store_state(paths: Paths) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    store = open_store(paths.store)
    return (store.leads(include_retired=True).sort_values("lead_id").reset_index(drop=True),
            store.history().sort_values("seq").reset_index(drop=True),
            store.links().sort_values("record_id").reset_index(drop=True))


def _assert_only_relink_rows_added(before: tuple, after: tuple) -> None:
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[2], after[2])
    history_before, history_after = before[1], after[1]
    pd.testing.assert_frame_equal(history_before, history_after.head(len(history_before)))
    assert set(history_after.iloc[len(history_before):]["action"]) <= {"relink"}


def test_a_deleted_partition_changes_no_lead(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    """Deleting a lead_files partition is Dagster bookkeeping, not an undo: relinking afterwards changes nothing."""
    paths = Paths.from_env().ensure()
    keys = _import_two_files(instance, paths)
    before = _store_state(paths)
    instance.delete_dynamic_partition("lead_files", keys[0])
    for config in ({}, {"ops": {"entity_clusters": {"config": {"full_relink": True}}}}):
        assert defs.resolve_job_def("relink_leads").execute_in_process(instance=instance, run_config=config).success
    _assert_only_relink_rows_added(before, _store_state(paths))
    assert set(open_store(paths.store).leads()["name"]) == {"王芳", "李娜", "赵敏"}


def test_a_brand_new_dagster_instance_changes_no_lead(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    """The store is the system of record; Dagster's instance is a view. A store built under one instance, then
    relinked and re-materialized under a brand-new one (wiped DAGSTER_HOME), keeps its leads and history."""
    paths = Paths.from_env().ensure()
    write_sample_files(paths.inbox, people=150, records=400, files=2, seed=9)
    assert all(_run(instance, r).success for r in _evaluate_sensor(instance).run_requests)
    _import_two_files(instance, paths)
    before = _store_state(paths)
    assert len(before[0]) > 100
    with dg.DagsterInstance.ephemeral() as fresh:
        assert fresh.get_dynamic_partitions("lead_files") == []
        for config in ({}, {"ops": {"entity_clusters": {"config": {"full_relink": True}}}}):
            assert defs.resolve_job_def("relink_leads").execute_in_process(instance=fresh, run_config=config).success
        leads_assets = {defs.get_assets_def(dg.AssetKey(key)) for key in ("entity_clusters", "curated_leads")}
        assert dg.materialize(list(leads_assets), instance=fresh, resources={"lead_store": LeadStoreResource()}).success
    _assert_only_relink_rows_added(before, _store_state(paths))


def test_restore_job_and_history_backup(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "a.xlsx", [["姓名", "手机"], ["王芳", "13700137000"], ["李娜", "13900139000"]])
    request = _evaluate_sensor(instance).run_requests[0]
    assert _run(instance, request).success
    backup = dg.materialize([defs.get_assets_def("history_backup")], instance=instance,
                            resources={"lead_store": LeadStoreResource()})
    assert backup.success
    folder = Path(backup.asset_materializations_for_node("history_backup")[0].metadata["folder"].value)
    assert (folder / "manifest.json").exists() and (folder.parent / "history").is_dir()
    run = defs.resolve_job_def("restore").execute_in_process(
        instance=instance, run_config={"ops": {"restore_leads": {"config": {"import_id": request.partition_key}}}})
    assert run.success
    assert open_store(paths.store).leads().empty
    assert set(open_store(paths.store).leads(include_retired=True)["status"]) == {"retired"}


def _files_holding(folder: Path, needles: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n in needles if n.encode("utf-8") in data or n.encode("utf-16-le") in data]
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def test_no_personal_data_in_dagster_storage(datafactory_home: Path, tmp_path: Path) -> None:
    """The lead store is the system of record: no asset hands a frame of contacts to Dagster's IO manager,
    so after an import, a relink and a rejected file, nothing under DAGSTER_HOME holds a phone or an email."""
    paths = Paths.from_env().ensure()
    needles = ["13812345678", "138 1234 5678", "19912345678", "secret.person@example.com", "SECRET.PERSON",
               "other.one@163.com"]
    write_xlsx(paths.inbox / "contacts.xlsx", [
        ["姓名", "手机", "邮箱", "公司"],
        ["保密甲", "+86 138 1234 5678", "SECRET.PERSON@example.com", "星海科技"],
        ["保密乙", "19912345678", "other.one@163.com", "云帆贸易"],
    ])
    write_xlsx(paths.inbox / "no_contacts.xlsx", [["姓名", "公司", "备注"], ["赵六", "某公司", "VIP"]])
    home = tmp_path / "dagster_home_on_disk"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as inst:
        runs = [_run(inst, r) for r in _evaluate_sensor(inst).run_requests]
        assert sorted(r.success for r in runs) == [False, True]
        assert defs.resolve_job_def("relink_leads").execute_in_process(
            instance=inst, run_config={"ops": {"entity_clusters": {"config": {"full_relink": True}}}}).success
    assert len(open_store(paths.store).leads()) == 2
    assert any(home.rglob("*.db")), "the instance keeps its runs and events on disk"
    assert _files_holding(home, needles) == {}
