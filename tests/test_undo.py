"""Undo equals never having imported; restores are atomic; an undone import can come back.

Held-out data: two exports of one generated CRM (sample_data.write_crm_exports) that overlap in
people and rows, with job changes (title, company) and changed numbers between them.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from datafactory_pipelines import restore as restore_module
from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.history import verify_chain
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.restore import restore_all_as_of, undo_import
from datafactory_pipelines.sample_data import write_crm_exports
from datafactory_pipelines.store import open_store
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx
from tests.store_compare import differing_leads, lead_keys, open_conflicts_by_records
from tests.test_cli import run_cli
from tests.test_restore import FIRST, HEADER, SECOND, _by_name

pytestmark = both_backends

THIRD = [HEADER, ["李娜", "13900139000", "ln@163.com", "云帆贸易", "技术总监", "官网", "2025-09-01"],
         ["孙伟", "13600136000", "", "博瑞软件", "工程师", "官网", "2025-09-01"]]


def _import(store, path: Path) -> str:
    outcome = import_file(store, path)
    assert outcome.status == "imported", outcome.error
    relink_and_curate(store)
    return outcome.import_id or ""


@pytest.fixture(scope="module")
def crm(tmp_path_factory) -> list[Path]:
    return write_crm_exports(tmp_path_factory.mktemp("crm"), people=1500, records=4000, seed=23).files


def test_undo_equals_never_imported_on_two_crm_exports(crm: list[Path], tmp_path: Path) -> None:
    a, b = crm
    store = open_store(tmp_path / "a-then-b.duckdb")
    first = _import(store, a)
    _import(store, b)
    raised = store.conflicts()
    assert len(raised) > 50  # the exports disagree: job changes and new numbers held as conflicts

    report = undo_import(store, first, by="admin")

    assert report.conflicts_closed == len(raised)
    only_b = open_store(tmp_path / "b-only.duckdb")
    _import(only_b, b)
    differing = differing_leads(store, only_b)
    assert differing.empty, f"{len(differing)} of {len(store.leads())} leads differ:\n{differing.head()}"
    assert open_conflicts_by_records(store) == open_conflicts_by_records(only_b) == set()
    # every conflict raised between A and B closed, each with a history row saying why
    closed = store.conflicts(status=None).set_index("conflict_id").loc[raised["conflict_id"]]
    assert set(closed["status"]) == {"closed"}
    notes = store.history()
    notes = notes[(notes["field"] == "conflict") & (notes["cause"] == f"undo import {first}")]
    assert len(notes) == len(raised)
    assert notes["new_value"].str.contains(f"import {first} was undone").all()
    assert verify_chain(store.history()).ok


def test_a_value_set_by_hand_after_the_import_stays_and_is_queued(crm: list[Path], tmp_path: Path) -> None:
    a, b = crm
    store = open_store(tmp_path / "a-then-b.duckdb")
    first = _import(store, a)
    _import(store, b)
    only_b = open_store(tmp_path / "b-only.duckdb")
    _import(only_b, b)
    # a lead holding records of both exports; a person sets its title by hand after A
    links = store.links()
    files = links.groupby("lead_id")["source_file"].nunique()
    lead = files[files == 2].index[0]
    b_row = links[(links["lead_id"] == lead) & (links["source_file"] == b.name)]["source_row"].iloc[0]
    edit_leads(store, pd.DataFrame([{"lead_id": lead, "field": "title", "value": "区域合伙人"}]), by="王经理")
    by_hand = store.leads().set_index("lead_id").at[lead, "title"]

    report = undo_import(store, first, by="admin")

    assert (lead, "title") in report.contested
    keys = lead_keys(store)
    now = next(k for k, key in keys.items() if (b.name, "线索", int(b_row)) in key)
    assert store.leads().set_index("lead_id").at[now, "title"] == by_hand  # kept
    queued = store.conflicts()
    assert queued[["lead_id", "field", "kind", "current_value"]].values.tolist() == [
        [now, "title", "undo import", by_hand]]
    # apart from that hand-set value, the lead is what B alone gives
    twin = next(k for k, key in lead_keys(only_b).items() if (b.name, "线索", int(b_row)) in key)
    edit_leads(only_b, pd.DataFrame([{"lead_id": twin, "field": "title", "value": "区域合伙人"}]), by="王经理")
    assert differing_leads(store, only_b).empty


def test_restore_as_of_is_one_transaction_even_after_an_earlier_undo(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.duckdb")
    _import(store, write_xlsx(tmp_path / "1.xlsx", FIRST))
    snapshot = _by_name(store)
    time.sleep(0.05)
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    time.sleep(0.05)
    second = _import(store, write_xlsx(tmp_path / "2.xlsx", SECOND))
    third = _import(store, write_xlsx(tmp_path / "3.xlsx", THIRD))
    undo_import(store, third, by="admin")  # undone before the restore: it stays undone, no error

    report = restore_all_as_of(store, moment, by="admin")

    assert report.imports_undone == [second]
    pd.testing.assert_frame_equal(_by_name(store), snapshot)
    assert verify_chain(store.history()).ok


def test_a_restore_that_fails_half_way_changes_nothing(tmp_path: Path, monkeypatch) -> None:
    store = open_store(tmp_path / "s.duckdb")
    _import(store, write_xlsx(tmp_path / "1.xlsx", FIRST))
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    time.sleep(0.05)
    _import(store, write_xlsx(tmp_path / "2.xlsx", SECOND))
    _import(store, write_xlsx(tmp_path / "3.xlsx", THIRD))
    before = {name: store.table_snapshot([name])[name] for name in ("imports", "records", "leads", "conflicts",
                                                                     "history", "lead_overrides")}

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(restore_module, "_restore_fields", fail)  # after both imports were undone
    with pytest.raises(RuntimeError, match="disk full"):
        restore_all_as_of(store, moment, by="admin")

    for name, frame in before.items():
        pd.testing.assert_frame_equal(store.table_snapshot([name])[name], frame, obj=name)


def test_an_undone_import_comes_back_when_its_file_is_dropped_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, second = write_xlsx(tmp_path / "first.xlsx", FIRST), write_xlsx(tmp_path / "second.xlsx", SECOND)
    assert run_cli(home, "import", first).returncode == 0
    assert run_cli(home, "import", second).returncode == 0
    store = store_in(home)
    first_id = store.imports()["import_id"].iloc[0]
    assert run_cli(home, "restore", "--undo-import", first_id, "--yes").returncode == 0

    again = run_cli(home, "import", first)

    assert again.returncode == 0, again.stderr
    assert f"as {first_id}-r2" in again.stdout
    imports = store.imports().set_index("import_id")
    assert imports.at[first_id, "undone_by"] and pd.isna(imports.at[f"{first_id}-r2", "undone_at"])
    history = store.history()
    assert (history["cause"] == f"{first_id}-r2").any()  # history rows of its own
    # the store now says what importing B, then A, says
    reference = open_store(tmp_path / "b-then-a.duckdb")
    _import(reference, second)
    _import(reference, first)
    assert differing_leads(store, reference).empty
    assert open_conflicts_by_records(store) == open_conflicts_by_records(reference)
    # while it is live, the same content is a duplicate again
    assert "skipped, already imported as" in run_cli(home, "import", first).stdout


def test_undo_reads_only_the_history_of_the_leads_it_touched(tmp_path: Path, monkeypatch) -> None:
    store = open_store(tmp_path / "s.duckdb")
    first = _import(store, write_xlsx(tmp_path / "1.xlsx", FIRST))
    _import(store, write_xlsx(tmp_path / "2.xlsx", SECOND))
    _import(store, write_xlsx(tmp_path / "3.xlsx", [HEADER, ["孙伟", "13600136000", "", "博瑞软件", "工程师", "", ""]]))
    read: list[list[str]] = []
    history_of_leads = store.history_of_leads

    def spy(lead_ids: list[str]) -> pd.DataFrame:
        read.append(list(lead_ids))
        return history_of_leads(lead_ids)

    def whole_history(*args, **kwargs):
        raise AssertionError("undo read the whole history")

    monkeypatch.setattr(store, "history_of_leads", spy)
    monkeypatch.setattr(store, "history", whole_history)
    undo_import(store, first, by="admin")
    touched = set(store.leads(include_retired=True).set_index("name").loc[["王芳", "李娜"], "lead_id"])
    assert [set(ids) for ids in read] == [touched]  # not 孙伟's, not 赵敏's



WHOLE_STORE_READS = ("leads", "conflicts", "overrides", "history", "records_for_linkage", "imports", "links")


def test_undo_reads_no_whole_table_outside_the_relink(tmp_path: Path, monkeypatch) -> None:
    """What the undo reads itself (touched leads, their history, open conflicts, overrides) it reads by id;
    relinking and curating the touched leads is relink_and_curate's business, not watched here."""
    store = open_store(tmp_path / "s.duckdb")
    first = _import(store, write_xlsx(tmp_path / "1.xlsx", FIRST))
    _import(store, write_xlsx(tmp_path / "2.xlsx", SECOND))
    _import(store, write_xlsx(tmp_path / "3.xlsx", THIRD))
    li_na = store.leads().set_index("name").at["李娜", "lead_id"]
    edit_leads(store, [{"lead_id": li_na, "field": "title", "value": "总监"}], by="ops")  # set after the import
    originals = {name: getattr(store, name) for name in WHOLE_STORE_READS}
    whole_reads: list[str] = []

    def watch() -> None:
        for name in WHOLE_STORE_READS:
            def read_whole(*args, _name=name, **kwargs):
                whole_reads.append(_name)
                return originals[_name](*args, **kwargs)
            monkeypatch.setattr(store, name, read_whole)

    def relink_unwatched(*args, **kwargs):
        for name, method in originals.items():
            monkeypatch.setattr(store, name, method)
        try:
            return relink(*args, **kwargs)
        finally:
            watch()

    relink = restore_module.relink_and_curate
    monkeypatch.setattr(restore_module, "relink_and_curate", relink_unwatched)
    watch()
    report = undo_import(store, first, by="admin")
    assert whole_reads == []
    assert report.records_retired == len(FIRST) - 1
    assert (li_na, "title") in report.contested  # the hand-set title stays, queued as a conflict
    monkeypatch.undo()
    assert verify_chain(store.history()).ok
