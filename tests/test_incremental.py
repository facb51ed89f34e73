"""Incremental linking: stable lead ids, bridges merge leads, and agreement with a full relink."""

from pathlib import Path

import pandas as pd

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "微信", "公司", "登记日期"]


def _partition(store) -> set[frozenset[int]]:
    links = store.links().dropna(subset=["lead_id"])
    return {frozenset(group) for _, group in links.groupby("lead_id")["record_id"]}


def test_incremental_equals_full_relink_and_keeps_ids(tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=1500, records=4000, files=4, seed=5)
    store = open_store(tmp_path / "inc.duckdb")
    seen: dict[int, str] = {}
    for path in sample.files:
        import_file(store, path)
        relink_and_curate(store)  # incremental after the first file
        links = store.links().dropna(subset=["lead_id"])
        current = dict(zip(links["record_id"], links["lead_id"], strict=True))
        leads = store.leads(include_retired=True).set_index("lead_id")
        # no lead id disappears: it is still active, or merged into an active lead
        for lead in set(seen.values()):
            assert leads.loc[lead, "status"] == "active" or leads.loc[leads.loc[lead, "merged_into"], "status"] == "active"
        # a record keeps its lead (or the lead it was merged into), except where new evidence split a lead
        kept = [current.get(r) == lead or leads.loc[lead, "merged_into"] == current.get(r) for r, lead in seen.items()]
        assert sum(kept) >= 0.99 * len(kept)
        reachable = store.records_for_linkage().set_index("record_id")["reachable"]
        assert all(not reachable[r] for r in seen if r not in current)  # only contactless records drop out
        seen = current
    incremental = _partition(store)
    relink_and_curate(store, full=True)  # the nightly full relink, same model
    assert _partition(store) == incremental
    assert store.link_model() is not None


def test_bridge_record_merges_two_leads_and_records_it(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bridge.duckdb")
    import_file(store, write_xlsx(tmp_path / "1.xlsx", [
        HEADER, ["赵敏", "13500135000", "", "", "", "2025-01-01"],
        ["赵敏", "", "zm@163.com", "", "", "2025-01-02"],
    ]))
    relink_and_curate(store)
    before = store.leads()
    assert len(before) == 2  # nothing ties the mobile to the email yet
    import_file(store, write_xlsx(tmp_path / "2.xlsx", [HEADER, ["赵敏", "13500135000", "zm@163.com", "", "",
                                                                "2025-03-01"]]))
    outcome = relink_and_curate(store)
    after = store.leads(include_retired=True).set_index("lead_id")
    survivor = min(before["lead_id"])
    retired = max(before["lead_id"])
    assert after.loc[retired, "status"] == "merged" and after.loc[retired, "merged_into"] == survivor
    assert outcome.merges == {retired: survivor}
    assert after.loc[survivor, "record_count"] == 3


def test_small_store_uses_the_shipped_model(tmp_path: Path) -> None:
    store = open_store(tmp_path / "small.duckdb")
    import_file(store, write_xlsx(tmp_path / "s.xlsx", [HEADER, ["张伟", "13800138000", "", "", "", ""],
                                                        ["張偉", "+86 138 0013 8000", "", "", "", ""]]))
    outcome = relink_and_curate(store)
    assert outcome.link.model.trained_on.get("source") == "sample"
    assert len(store.leads()) == 1
    assert pd.notna(store.link_model())


def _lead_contents(store) -> pd.DataFrame:
    leads = store.leads(include_retired=True).set_index("lead_id")
    return leads.drop(columns=["created_at", "updated_at"]).sort_index()


def test_small_changes_are_linked_in_their_neighbourhood_and_equal_a_full_pass(tmp_path: Path) -> None:
    """Namesakes, colleagues on one switchboard and people seen in several files: a base linked in one
    pass, then imports of a few hundred records and an undo, each linked and curated where it touches.
    A full relink with the same model afterwards finds nothing to change."""
    sample = write_sample_files(tmp_path / "files", people=1500, records=6000, files=24, seed=11)
    store = open_store(tmp_path / "small_changes.duckdb")
    for path in sample.files[:16]:
        import_file(store, path)
    first = relink_and_curate(store)
    assert first.path == "full" and first.reason == "no model yet"
    for path in sample.files[16:]:
        import_file(store, path)
        change = relink_and_curate(store)
        assert change.path == "incremental", change.reason
        assert 0 < change.records_linked < len(store.records_for_linkage())  # the neighbourhood, not the base
    assert store.link_queue().empty
    store.retire_import(store.imports()["import_id"].iloc[18], by="test")  # an undo
    after_undo = relink_and_curate(store)
    assert after_undo.path == "incremental"
    assert after_undo.changes.updated + after_undo.changes.merged > 0 or (
        store.leads(include_retired=True)["status"] == "retired").any()
    incremental_partition, incremental_leads = _partition(store), _lead_contents(store)
    incremental_shared = store.shared_contacts().sort_values(["kind", "value"], ignore_index=True)
    assert (incremental_shared["kind"] == "landline").any()  # the switchboards

    nightly = relink_and_curate(store, full=True)
    assert nightly.path == "full"
    assert _partition(store) == incremental_partition
    assert (nightly.changes.created, nightly.changes.updated, nightly.changes.merged) == (0, 0, 0)
    pd.testing.assert_frame_equal(_lead_contents(store), incremental_leads)
    pd.testing.assert_frame_equal(store.shared_contacts().sort_values(["kind", "value"], ignore_index=True),
                                  incremental_shared)


def _assert_counters_match_a_recount(store) -> None:
    kept, kept_names = store.value_counters()
    counted, counted_names = store.recounted_values()
    assert len(kept) and len(kept_names)
    pd.testing.assert_frame_equal(kept, counted, check_dtype=False)
    pd.testing.assert_frame_equal(kept_names, counted_names, check_dtype=False)


def test_value_counters_kept_on_write_equal_a_recount(tmp_path: Path) -> None:
    """The counters the change path reads (records and surnames per linking value) are kept on every
    write: imports, an import undone, an import undone before it was linked, an unmerge, a full pass.
    After each they equal the counts taken from scratch over the stored link values."""
    from datafactory_pipelines.restore import undo_import

    sample = write_sample_files(tmp_path / "files", people=1500, records=4000, files=10, seed=11)
    store = open_store(tmp_path / "counters.duckdb")
    for path in sample.files[:6]:
        import_file(store, path)
    assert relink_and_curate(store).path == "full"
    _assert_counters_match_a_recount(store)
    assert store.value_counters()[0]["n_names"].max() > 2  # switchboards: many surnames on one landline

    for path in sample.files[6:8]:
        import_file(store, path)
        _assert_counters_match_a_recount(store)  # counted in the save's transaction, before any linking
        assert relink_and_curate(store).path == "incremental"
    _assert_counters_match_a_recount(store)

    undone = import_file(store, sample.files[8])
    assert relink_and_curate(store).path == "incremental"
    undo_import(store, undone.import_id or "", by="test")
    _assert_counters_match_a_recount(store)

    # saved and undone before it was linked: the relink sees it come and go in one queue
    never_linked = import_file(store, sample.files[9])
    store.retire_import(never_linked.import_id or "", by="test")
    _assert_counters_match_a_recount(store)
    assert relink_and_curate(store).path == "incremental"
    assert store.link_queue().empty

    merge_then_unmerge(store, tmp_path)
    _assert_counters_match_a_recount(store)

    incremental_partition = _partition(store)
    kept = store.value_counters()
    relink_and_curate(store, full=True)
    assert _partition(store) == incremental_partition
    for before, after in zip(kept, store.value_counters(), strict=True):  # the rebuild finds them as kept
        pd.testing.assert_frame_equal(before, after, check_dtype=False)


def merge_then_unmerge(store, folder: Path) -> str:
    """Two records of one person become two leads, a third record merges them, an operator unmerges
    them again: the store then keeps the two leads' records apart. Returns the surviving lead id."""
    from datafactory_pipelines.restore import unmerge

    import_file(store, write_xlsx(folder / "a.xlsx", [HEADER, ["赵敏", "13500135000", "", "", "", "2025-01-01"],
                                                      ["赵敏", "", "zm@163.com", "", "", "2025-01-02"]]))
    relink_and_curate(store)
    import_file(store, write_xlsx(folder / "b.xlsx", [HEADER, ["赵敏", "13500135000", "zm@163.com", "", "",
                                                               "2025-03-01"]]))
    (_, survivor), = relink_and_curate(store).merges.items()
    unmerge(store, survivor, by="test")
    return survivor


def test_leads_a_change_retires_keep_their_provenance(tmp_path: Path) -> None:
    """The change path reads its leads without their provenance; a lead it merges away or retires (its
    records undone) keeps the provenance it had."""
    from datafactory_pipelines.restore import undo_import

    sample = write_sample_files(tmp_path / "files", people=300, records=800, files=1, seed=7)
    store = store_in(tmp_path)
    import_file(store, sample.files[0])
    relink_and_curate(store)
    import_file(store, write_xlsx(tmp_path / "a.xlsx", [HEADER, ["赵敏", "13500135000", "", "", "", "2025-01-01"],
                                                        ["赵敏", "", "zm@163.com", "", "", "2025-01-02"]]))
    relink_and_curate(store)
    before = store.leads(include_retired=True).set_index("lead_id")["provenance"]
    import_file(store, write_xlsx(tmp_path / "b.xlsx", [HEADER, ["赵敏", "13500135000", "zm@163.com", "", "",
                                                                 "2025-03-01"]]))
    outcome = relink_and_curate(store)
    assert outcome.path == "incremental"
    (merged, _), = outcome.merges.items()
    after = store.leads(include_retired=True).set_index("lead_id")
    assert after.loc[merged, "status"] == "merged"
    assert before[merged] and after.loc[merged, "provenance"] == before[merged]

    alone = import_file(store, write_xlsx(tmp_path / "c.xlsx", [HEADER, ["孙悟空", "13900139000", "swk@163.com", "",
                                                                        "", "2025-04-01"]]))
    relink_and_curate(store)
    lead = store.import_records(alone.import_id or "")["lead_id"].iloc[0]
    provenance = store.leads().set_index("lead_id").loc[lead, "provenance"]
    undo_import(store, alone.import_id or "", by="test")
    row = store.leads(include_retired=True).set_index("lead_id").loc[lead]
    assert row["status"] == "retired"
    assert provenance and row["provenance"] == provenance


def test_a_store_linked_with_older_link_values_is_linked_again_in_one_full_pass(tmp_path: Path, monkeypatch) -> None:
    """Links decided with an older format of the link values or their weights (term frequencies rounded
    up, format 2) are decided again once, in a full pass, so incremental results equal a full pass."""
    from datafactory_pipelines import pipeline

    sample = write_sample_files(tmp_path / "files", people=800, records=3000, files=12, seed=3)
    store = open_store(tmp_path / "old.duckdb")
    with monkeypatch.context() as old_code:
        old_code.setattr(pipeline, "LINK_VALUES_FORMAT", 2)
        for path in sample.files[:10]:
            import_file(store, path)
        assert relink_and_curate(store).path == "full"
    import_file(store, sample.files[10])
    again = relink_and_curate(store)
    assert (again.path, again.reason) == ("full", "the store's link values are from another linkage config "
                                                  "(or an older version)")
    import_file(store, sample.files[11])
    assert relink_and_curate(store).path == "incremental"
