"""The store's SQL history writer writes exactly the rows the pandas reference (history.field_changes +
history.chain, the writer it replaced) makes for the same change: same order, text, seq and hash chain."""

from datetime import datetime
from pathlib import Path

import pandas as pd

from datafactory_pipelines.history import HISTORY_COLUMNS, chain, field_changes, verify_chain
from datafactory_pipelines.pipeline import import_file, import_files, relink_and_curate
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store
from datafactory_pipelines.store.schema import LEAD_COLUMNS


def _reference_rows(before: pd.DataFrame, after: pd.DataFrame, changes, first_seq: int, prev_hash: str,
                    at) -> pd.DataFrame:
    """The history rows the former pandas writer made for one apply_lead_changes."""
    diffs = field_changes(before, after)
    new_leads = ~diffs["lead_id"].isin(set(before["lead_id"]))
    action = pd.Series(changes.action, index=diffs.index).mask(new_leads, "create").mask(
        (diffs["field"] == "status") & (diffs["new_value"] == "merged"), "merge")
    cause = changes.cause if changes.lead_causes is None else \
        diffs["lead_id"].map(changes.lead_causes).fillna(changes.cause)
    return chain(diffs, first_seq, prev_hash, at, action, changes.actor, cause)


def test_sql_writer_matches_the_pandas_reference(tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "in", people=300, records=900, files=4)
    store = open_store(tmp_path / "home" / "leads.duckdb")
    calls = []
    apply = store.apply_lead_changes

    def recorded(changes) -> None:
        ids = [str(x) for x in changes.upserts["lead_id"]]
        before = pd.DataFrame(store.lead_rows(ids), columns=LEAD_COLUMNS)
        head = store.history().sort_values("seq").tail(1)
        apply(changes)
        after = pd.DataFrame(store.lead_rows(ids), columns=LEAD_COLUMNS)
        calls.append((changes, before, after, head))

    store.apply_lead_changes = recorded
    list(import_files(store, sample.files[:2], workers=1))
    relink_and_curate(store)  # no cause given: each lead's own import ids are its cause
    import_file(store, sample.files[2])
    relink_and_curate(store, actor="ops", cause="third")
    import_file(store, sample.files[3])
    relink_and_curate(store, full=True, actor="ops", cause="fourth")

    history = store.history().sort_values("seq", ignore_index=True)
    compared = []
    for changes, before, after, head in calls:
        first_seq, prev = (int(head["seq"].iloc[0]) + 1, head["hash"].iloc[0]) if len(head) else (1, "0" * 64)
        written = history[(history["seq"] >= first_seq)
                          & (history["seq"] < first_seq + len(field_changes(before, after)))]
        at = pd.Timestamp(written["changed_at"].iloc[0]).to_pydatetime() if len(written) else datetime(2026, 1, 1)
        expected = _reference_rows(before, after, changes, first_seq, prev, at)
        pd.testing.assert_frame_equal(written.reset_index(drop=True)[HISTORY_COLUMNS[2:]],
                                      expected.reset_index(drop=True)[HISTORY_COLUMNS[2:]], check_dtype=False)
        assert written["seq"].tolist() == expected["seq"].tolist()
        compared.append(written)
    compared = pd.concat(compared, ignore_index=True)
    assert len(compared) == len(history) and verify_chain(history).ok
    # the data exercised new leads, changed leads, per-lead and per-change causes
    assert {"create", "relink"} <= set(compared["action"])
    assert (compared["old_value"] != "").any() and compared["cause"].nunique() >= 3
