"""What every file dropped into the inbox can count on: it is imported once, retried when its run failed
for another reason than its content, rejected with a readable reason, or reported as ignored."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import LeadStoreResource
from datafactory_pipelines.config import Paths
from datafactory_pipelines.definitions import defs
from datafactory_pipelines.pipeline import fit_name
from datafactory_pipelines.store import open_store
from sensors.inbox import ATTEMPT_TAG, inbox_sensor
from tests.conftest import write_xlsx

ROWS = [["姓名", "手机", "公司"], ["王芳", "13700137000", "星海科技"], ["李娜", "13900139000", "云帆贸易"]]
CLI = str(Path(sys.executable).with_name("datafactory"))


def _sensor(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lead_store": LeadStoreResource()})
    result = inbox_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def _run(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, run_config=request.run_config,
        tags=request.tags, raise_on_error=False)


def _cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "DATAFACTORY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
                               "DATAFACTORY_INBOX_SETTLE_SECONDS": "0", **env})


class HeldLock:
    """Another process holding the store's writer lock, as a long import next door would."""

    def __init__(self, store_path: Path) -> None:
        lock = store_path.with_name(store_path.name + ".writer.lock")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from filelock import FileLock; l = FileLock(sys.argv[1]); "
             "l.acquire(); print('held', flush=True); sys.stdin.read()", str(lock)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def test_a_run_that_failed_on_a_busy_store_is_retried_then_rejected(datafactory_home: Path,
                                                                     instance: dg.DagsterInstance,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFACTORY_LOCK_WAIT", "1")
    monkeypatch.setenv("DATAFACTORY_INBOX_ATTEMPTS", "2")
    paths = Paths.from_env().ensure()
    open_store(paths.store).counts()  # the store exists
    write_xlsx(paths.inbox / "busy.xlsx", ROWS)
    held = HeldLock(paths.store)
    try:
        first = _sensor(instance).run_requests
        assert len(first) == 1 and first[0].tags[ATTEMPT_TAG] == "1"
        assert not _run(instance, first[0]).success
        assert (paths.inbox / "busy.xlsx").exists()  # not the file's fault: it stays for another attempt
        second = _sensor(instance).run_requests
        assert len(second) == 1 and second[0].tags[ATTEMPT_TAG] == "2"
        assert second[0].run_key != first[0].run_key  # Dagster remembers run keys forever
        assert not _run(instance, second[0]).success
        assert _sensor(instance).run_requests == []
    finally:
        held.release()
    assert not (paths.inbox / "busy.xlsx").exists()
    reason = (paths.rejected / "busy.xlsx.error.txt").read_text("utf-8")
    assert "tried 2 times" in reason and "waiting for another" in reason


def test_a_retry_after_the_store_is_free_imports_the_file(datafactory_home: Path, instance: dg.DagsterInstance,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFACTORY_LOCK_WAIT", "1")
    paths = Paths.from_env().ensure()
    open_store(paths.store).counts()
    write_xlsx(paths.inbox / "later.xlsx", ROWS)
    held = HeldLock(paths.store)
    try:
        assert not _run(instance, _sensor(instance).run_requests[0]).success
    finally:
        held.release()
    retry = _sensor(instance).run_requests
    assert [r.tags[ATTEMPT_TAG] for r in retry] == ["2"]
    assert _run(instance, retry[0]).success
    assert sorted(open_store(paths.store).leads()["name"]) == ["李娜", "王芳"]
    assert _sensor(instance).run_requests == [] and not list(paths.inbox.iterdir())


def test_a_killed_run_is_marked_failed_and_retried(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    """`datafactory run-inbox` killed mid-import (kill -9) leaves a run STARTED forever; the sensor sees its
    process is gone, marks the run failed and tries the file again under a new run key."""
    paths = Paths.from_env().ensure()
    open_store(paths.store).counts()
    write_xlsx(paths.inbox / "killed.xlsx", ROWS)
    held = HeldLock(paths.store)
    try:
        worker = subprocess.Popen([CLI, "run-inbox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "DATAFACTORY_HOME": str(datafactory_home),
                                       "DAGSTER_HOME": instance.root_directory,
                                       "DATAFACTORY_INBOX_SETTLE_SECONDS": "0"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the run has started and waits for the store
            runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            if runs and "datafactory/runner" in runs[0].tags:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the run-inbox run never started")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        held.release()
    assert instance.get_run_by_id(runs[0].run_id).status == dg.DagsterRunStatus.STARTED
    retry = _sensor(instance).run_requests
    assert instance.get_run_by_id(runs[0].run_id).status == dg.DagsterRunStatus.FAILURE
    assert [r.tags[ATTEMPT_TAG] for r in retry] == ["2"]
    assert _run(instance, retry[0]).success
    assert open_store(paths.store).counts()["imports"] == 1


def test_the_same_content_twice_is_imported_once_and_reported(datafactory_home: Path) -> None:
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "list.xlsx", ROWS)
    shutil.copy(paths.inbox / "list.xlsx", paths.inbox / "list (1).xlsx")
    done = _cli(datafactory_home, "run-inbox")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 file(s) imported, 1 duplicate(s), 0 rejected" in done.stdout
    copies = [p.name for p in (paths.processed / "duplicates").iterdir()]
    assert len(copies) == 1 and copies[0] in ("list.xlsx", "list (1).xlsx")
    assert f"DUPLICATE {copies[0]}" in done.stdout
    assert len([p for p in paths.processed.iterdir() if p.is_file()]) == 1
    assert open_store(paths.store).counts()["imports"] == 1
    # dropped once more later: a duplicate again, not a second import
    shutil.copy(next(p for p in paths.processed.iterdir() if p.is_file()), paths.inbox / "again.xlsx")
    done = _cli(datafactory_home, "run-inbox")
    assert "0 file(s) imported, 1 duplicate(s)" in done.stdout
    assert open_store(paths.store).counts()["imports"] == 1


def test_a_brand_new_instance_files_known_content_as_a_duplicate(datafactory_home: Path, tmp_path: Path) -> None:
    """Dagster forgot the runs (new DAGSTER_HOME); the store still knows the content: no second import."""
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "list.xlsx", ROWS)
    assert _cli(datafactory_home, "run-inbox").returncode == 0
    shutil.copy(next(p for p in paths.processed.iterdir() if p.is_file()), paths.inbox / "list.xlsx")
    done = _cli(datafactory_home, "run-inbox", DAGSTER_HOME=str(tmp_path / "new_dagster_home"))
    assert "0 file(s) imported, 1 duplicate(s)" in done.stdout, done.stdout
    assert (paths.processed / "duplicates" / "list.xlsx").exists()
    assert open_store(paths.store).counts()["imports"] == 1


def test_ignored_names_are_reported(datafactory_home: Path, instance: dg.DagsterInstance,
                                    capfd: pytest.CaptureFixture) -> None:
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "~$线索.xlsx", ROWS)
    write_xlsx(paths.inbox / "..线索.xlsx", ROWS)
    capfd.readouterr()
    context = dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()})
    result = inbox_sensor(context)
    assert result.run_requests == []
    logged = capfd.readouterr().err
    assert "~$线索.xlsx: not imported: an Excel lock file" in logged
    assert "..线索.xlsx: not imported: a hidden file" in logged
    # logged once, not on every tick
    inbox_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor,
                                         resources={"lead_store": LeadStoreResource()}))
    assert "not imported" not in capfd.readouterr().err
    status = _cli(datafactory_home, "status").stdout
    assert "ignored in the inbox   ~$线索.xlsx: an Excel lock file" in status
    assert "..线索.xlsx: a hidden file" in status
    done = _cli(datafactory_home, "run-inbox")
    assert "IGNORED ..线索.xlsx" in done.stdout and "2 ignored" in done.stdout


def test_a_rejected_file_with_a_long_name_gets_its_reason(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    paths = Paths.from_env().ensure()
    name = "展会线索" * 20 + "x" * 10 + ".xlsx"  # 255 bytes: NAME.error.txt would be 265
    assert len(name.encode()) == 255
    write_xlsx(paths.inbox / name, [["姓名", "公司"], ["赵六", "某公司"]])
    run = _run(instance, _sensor(instance).run_requests[0])
    assert not run.success
    assert (paths.rejected / name).exists()
    reasons = list(paths.rejected.glob("*.error.txt"))
    assert len(reasons) == 1 and len(reasons[0].name.encode()) <= 255
    assert reasons[0].name == fit_name(name, ".error.txt")  # the same name always gets the same short name
    text = reasons[0].read_text("utf-8")
    assert text.startswith(name) and "no contact column" in text


def test_run_inbox_prints_the_reason_not_a_stack_trace(datafactory_home: Path) -> None:
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "no_contacts.xlsx", [["姓名", "公司"], ["赵六", "某公司"]])
    (paths.inbox / "broken.xlsx").write_bytes(b"PK\x03\x04 damaged")
    done = _cli(datafactory_home, "run-inbox")
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "REJECTED no_contacts.xlsx: " in output and "no contact column" in output
    assert "REJECTED broken.xlsx: " in output and "cannot be opened as a spreadsheet" in output
    assert "0 file(s) imported, 0 duplicate(s), 2 rejected" in output
    assert "Traceback" not in output and "dagster._core" not in output and "Stack Trace" not in output


def test_an_undone_file_dropped_again_is_imported_again(datafactory_home: Path, instance: dg.DagsterInstance) -> None:
    """The store, not Dagster's memory of a successful run, says whether content is new: after undo_lead_file
    the same file dropped again is imported again, and undo_lead_file on that partition undoes the new import."""
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "list.xlsx", ROWS)
    request = _sensor(instance).run_requests[0]
    assert _run(instance, request).success
    undo = defs.resolve_job_def("undo_lead_file")
    assert undo.execute_in_process(instance=instance, partition_key=request.partition_key).success
    store = open_store(paths.store)
    assert store.leads().empty
    shutil.copy(next(p for p in paths.processed.iterdir() if p.is_file()), paths.inbox / "list.xlsx")
    again = _sensor(instance).run_requests
    assert [r.partition_key for r in again] == [request.partition_key] and again[0].run_key != request.run_key
    assert _run(instance, again[0]).success
    assert sorted(store.leads()["name"]) == ["李娜", "王芳"]
    assert not (paths.processed / "duplicates").exists()
    assert undo.execute_in_process(instance=instance, partition_key=request.partition_key).success
    assert store.leads().empty
