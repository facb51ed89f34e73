"""Many files in one call: read in worker processes, saved in order, linked in one full pass."""

from pathlib import Path

import pandas as pd
import pytest

from datafactory_pipelines.linkage.engine import link_values
from datafactory_pipelines.pipeline import (
    import_file,
    import_files,
    prepare_file,
    relink_and_curate,
)
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx
from tests.dying_reader import read_or_die
from tests.store_compare import differing_leads
from tests.test_incremental import merge_then_unmerge

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "微信", "公司", "登记日期"]


def _records(store) -> pd.DataFrame:
    return store.records_for_linkage().drop(columns=["imported_at", "import_time"]).reset_index(drop=True)


def _values(store) -> pd.DataFrame:
    with store.transaction() as con:
        return con.execute("SELECT * FROM link_values ORDER BY record_id, col, value").df()


def _files(tmp_path: Path) -> list[Path]:
    sample = write_sample_files(tmp_path / "files", people=900, records=2400, files=3, seed=11)
    # a file with no contact column cannot be imported; a copy of the first file is the same content
    bad = write_xlsx(tmp_path / "files" / "no_contacts.xlsx", [["姓名", "公司"], ["张伟", "星海科技"]])
    copy = tmp_path / "files" / f"copy_of_{sample.files[0].name}"
    copy.write_bytes(sample.files[0].read_bytes())
    return [sample.files[0], bad, sample.files[1], sample.files[2], copy]


def test_files_read_in_workers_are_saved_as_one_at_a_time_would(tmp_path: Path) -> None:
    files = _files(tmp_path)
    bulk = open_store(tmp_path / "bulk.duckdb")
    outcomes = list(import_files(bulk, files, imported_by="t", workers=2))
    assert [o.status for o in outcomes] == ["imported", "rejected", "imported", "imported", "duplicate"]
    assert [o.path.name for o in outcomes] == [f.name for f in files]  # in the order given
    rejected = outcomes[1]
    assert "no_contacts.xlsx" in rejected.error and "contact" in rejected.error and rejected.import_id is None
    assert outcomes[4].error == f"already imported as {outcomes[0].import_id}"

    single = open_store(tmp_path / "single.duckdb")
    assert [import_file(single, f, imported_by="t").status for f in files] == [o.status for o in outcomes]
    pd.testing.assert_frame_equal(_records(bulk), _records(single))
    pd.testing.assert_frame_equal(_values(bulk), _values(single))
    assert bulk.counts() == single.counts()
    assert bulk.saved_link_values() not in ("", "mixed")  # every record's values from today's config

    for store in (bulk, single):
        assert relink_and_curate(store).path == "full"
    assert differing_leads(bulk, single).empty


def test_a_full_pass_keeps_the_saved_link_values_and_counts_them(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    assert all(o.status == "imported" for o in import_files(store, _files(tmp_path)[::2][:2], workers=2))
    saved = _values(store)
    outcome = relink_and_curate(store)
    assert outcome.path == "full" and outcome.reason == "no model yet"
    pd.testing.assert_frame_equal(_values(store), saved)  # kept as saved
    counted, recounted = store.value_counters(), store.recounted_values()
    for kept, fresh in zip(counted, recounted, strict=True):
        pd.testing.assert_frame_equal(kept.reset_index(drop=True), fresh.reset_index(drop=True), check_dtype=False)
    relink_and_curate(store, full=True)  # the nightly pass computes them again: the same values
    pd.testing.assert_frame_equal(_values(store), saved)


def test_a_file_saved_without_link_values_makes_the_next_full_pass_compute_them(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    first, _, second, *_ = _files(tmp_path)
    import_file(store, first)
    prepared = prepare_file(second)
    store.save_import(prepared.meta(), prepared.records)  # an older writer: no link values
    assert store.saved_link_values() == "mixed"
    missing = set(store.import_records(prepared.import_id)["record_id"]) - set(_values(store)["record_id"])
    assert missing
    relink_and_curate(store)
    computed = link_values(store.records_for_linkage())
    computed = computed.sort_values(["record_id", "col", "value"], ignore_index=True)
    pd.testing.assert_frame_equal(_values(store)[computed.columns], computed, check_dtype=False)


def _pairs_by_hand(store, leads: set[str] | None = None) -> set[tuple[int, int]]:
    """Every active record of lead_a against every one of lead_b, per split (both leads among `leads`)."""
    records = store.records_for_linkage()
    by_lead = records.groupby("lead_id")["record_id"].apply(list)
    return {(int(left), int(right)) for a, b in zip(*store.lead_splits()[["lead_a", "lead_b"]].T.to_numpy(), strict=True)
            if leads is None or {a, b} <= leads
            for left in by_lead.get(a, []) for right in by_lead.get(b, [])}


def test_kept_apart_pairs_are_the_split_leads_records(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    merge_then_unmerge(store, tmp_path)
    pairs = store.kept_apart_pairs()
    expected = _pairs_by_hand(store)
    assert len(expected) > 0
    assert set(zip(pairs["id_l"], pairs["id_r"], strict=True)) == expected
    # the neighbourhood asks with its lead ids: the splits whose two leads are both in it
    split = store.lead_splits().iloc[0]
    other = store.leads()["lead_id"].iloc[0]
    for leads in ({split["lead_a"], split["lead_b"]}, {split["lead_a"], other}, {split["lead_a"], split["lead_b"], other}):
        found = store.kept_apart_pairs(sorted(leads))
        assert set(zip(found["id_l"], found["id_r"], strict=True)) == _pairs_by_hand(store, leads)
    assert store.kept_apart_pairs([split["lead_a"]]).empty
    before = {r: lead for r, lead in zip(*store.links()[["record_id", "lead_id"]].T.to_numpy(), strict=True)}
    relink_and_curate(store, full=True)  # the split holds in a full pass
    after = dict(zip(*store.links()[["record_id", "lead_id"]].T.to_numpy(), strict=True))
    assert after == before


def test_a_file_whose_save_fails_midway_leaves_the_files_before_it_saved_and_nothing_of_itself(
        tmp_path: Path, monkeypatch) -> None:
    """Per-file atomicity under bulk_writes (one connection, checkpoints deferred): the failing file's
    records, link values, import row and queue entries roll back together; the files saved before it
    stay, also for a new connection after the failure."""
    from datafactory_pipelines.store.parts.imports import Imports  # both backends' imports

    first, _, second, third, _ = _files(tmp_path)
    failing = {"now": False}
    next_seq, save = Imports._next_queue_seq, Imports.save_import

    def next_seq_or_fail(con):  # the last step of a save: its records and values are written by then
        if failing["now"]:
            raise RuntimeError("disk full (simulated)")
        return next_seq(con)

    def save_marking_the_second(self, meta, *args, **kwargs):
        failing["now"] = meta.file_name == second.name
        return save(self, meta, *args, **kwargs)

    with monkeypatch.context() as patched:  # (undone alone: the backend fixture's settings stay)
        patched.setattr(Imports, "_next_queue_seq", staticmethod(next_seq_or_fail))
        patched.setattr(Imports, "save_import", save_marking_the_second)
        store = store_in(tmp_path)
        outcomes = import_files(store, [first, second, third], imported_by="t", workers=0)
        assert next(outcomes).status == "imported"
        with pytest.raises(RuntimeError, match="simulated"):
            next(outcomes)

    reopened = store_in(tmp_path)
    imports = reopened.imports()
    assert list(imports["file_name"]) == [first.name]
    kept = reopened.import_records(imports["import_id"].iloc[0])
    assert len(kept) > 0 and reopened.counts()["records"] == len(kept)
    assert set(_values(reopened)["record_id"]) == set(kept["record_id"])
    assert len(reopened.link_queue()) == len(kept)
    # the failed file comes in whole the next time
    assert [o.status for o in import_files(reopened, [second, third], imported_by="t", workers=0)] == \
        ["imported", "imported"]
    assert list(reopened.imports()["file_name"]) == [first.name, second.name, third.name]


def test_a_file_that_kills_its_reader_process_is_rejected_and_the_others_come_in(tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=600, records=1600, files=4, seed=5)
    killer = tmp_path / "files" / "this_one_dies.xlsx"
    killer.write_bytes(sample.files[3].read_bytes())
    files = [sample.files[0], killer, sample.files[1], sample.files[2]]
    store = open_store(tmp_path / "bulk.duckdb")
    outcomes = list(import_files(store, files, imported_by="t", workers=2, reader=read_or_die))

    assert [o.path.name for o in outcomes] == [f.name for f in files]
    assert [o.status for o in outcomes] == ["imported", "rejected", "imported", "imported"]
    assert "this_one_dies.xlsx" in outcomes[1].error and "died" in outcomes[1].error
    assert outcomes[1].import_id is None
    single = open_store(tmp_path / "single.duckdb")
    for path in (sample.files[0], sample.files[1], sample.files[2]):
        import_file(single, path, imported_by="t")
    pd.testing.assert_frame_equal(_records(store), _records(single))  # the other files whole, nothing of it
    pd.testing.assert_frame_equal(_values(store), _values(single))
