"""Two writers at once lose nothing: the change-level lock makes them take turns, whole."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store
from tests.store_compare import differing_leads, open_conflicts_by_records
from tests.test_cli import CLI, run_cli


def _start_import(home: Path, path: Path) -> subprocess.Popen:
    env = {**os.environ, "DATAFACTORY_HOME": str(home)}
    return subprocess.Popen([CLI, "import", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def test_two_import_processes_at_once_equal_the_sequential_imports(tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=700, records=1800, files=2, seed=11)
    home = tmp_path / "together"
    first, second = (_start_import(home, path) for path in sample.files)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    for process, (_out, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err and "Error" not in err, err
    assert any("waiting for another datafactory writer: import" in err for _, err in outputs)

    together = open_store(home / "leads.duckdb")
    order = together.imports().sort_values("imported_at")["file_name"].tolist()
    sequential_home = tmp_path / "one-after-the-other"
    for name in order:
        done = run_cli(sequential_home, "import", str(tmp_path / "files" / name))
        assert done.returncode == 0, done.stderr
    sequential = open_store(sequential_home / "leads.duckdb")

    assert together.counts() == sequential.counts()
    assert differing_leads(together, sequential).empty
    assert open_conflicts_by_records(together) == open_conflicts_by_records(sequential)
    assert len(together.conflicts(status=None)) == together.conflicts(status=None)["conflict_id"].nunique()
    assert len(together.history()) == len(sequential.history())


def test_a_writer_waits_for_the_lock_and_says_so(tmp_path: Path, caplog) -> None:
    store = open_store(tmp_path / "leads.duckdb")
    other = open_store(tmp_path / "leads.duckdb")  # a second handle shares the process's lock
    events: list[str] = []

    def second_writer() -> None:
        with other.exclusive("second change"):
            events.append("second")

    with store.exclusive("first change"), store.exclusive("nested: re-entrant"):
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(0.3)
        events.append("first done")
    thread.join(timeout=10)
    assert events == ["first done", "second"]
    assert "waiting for another datafactory writer (in this process): second change" in caplog.text


def test_an_atomic_change_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    from datafactory_pipelines.pipeline import import_file
    from tests.conftest import write_xlsx

    store = open_store(tmp_path / "leads.duckdb")
    path = write_xlsx(tmp_path / "a.xlsx", [["姓名", "手机"], ["王芳", "13700137000"]])
    try:
        with store.exclusive("doomed", atomic=True):
            assert import_file(store, path).status == "imported"
            assert store.counts()["records"] == 1  # the change sees its own writes
            raise RuntimeError("power cut")
    except RuntimeError:
        pass
    assert store.counts()["records"] == 0 and store.imports().empty
