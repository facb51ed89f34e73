"""Incremental linking: stable lead ids, bridges merge leads, and agreement with a full relink."""

from pathlib import Path

import pandas as pd

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store
from tests.conftest import write_xlsx

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
