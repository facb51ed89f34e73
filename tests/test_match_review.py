"""Possible matches: the middle band queued for people, decided one by one, by pattern or in Excel; every
decision kept forever, in both leads' history, never asked again, binding future linking, and learned from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from datafactory_pipelines.cli import main
from datafactory_pipelines.linkage.review import (
    Recalibration,
    describe_pattern,
    fit_recalibration,
    pattern_keys,
    pattern_levels,
    recalibrate_band,
    weight_of,
)
from datafactory_pipelines.match_review import ReviewError, decide_matches, review_queue
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from tests.backends import both_backends, copy_store, store_in
from tests.conftest import write_xlsx

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司", "职位"]
ROWS = [
    # one person in two exports: the same name, a mobile one export mistyped, the same mailbox name at two
    # providers; the model is unsure (a possible match, kept apart by the threshold)
    ["张伟", "13800138000", "zhangwei88@qq.com", "星海科技有限公司", "采购经理"],
    ["张伟", "13800138999", "zhangwei88@163.com", "", ""],
    ["刘洋", "13500135000", "", "", ""],
    ["刘阳", "13500135000", "", "", ""],
    ["李娜", "13700137000", "lina@qq.com", "云帆贸易有限公司", "总监"],
]


def _store(folder: Path):
    store = store_in(folder)
    assert import_file(store, write_xlsx(folder / "线索.xlsx", [HEADER, *ROWS])).status == "imported"
    relink_and_curate(store)
    return store


def _lead_of(store, record_id: int) -> str:
    links = store.links()
    return links.loc[links["record_id"] == record_id, "lead_id"].iloc[0]


def _zhang_pair(store) -> pd.Series:
    queue = review_queue(store)
    names = store.linkage_records_of(sorted(set(queue["id_l"]) | set(queue["id_r"])), [], columns=["record_id", "name"])
    zhang = set(names.loc[names["name"] == "张伟", "record_id"])
    pair = queue[queue["id_l"].isin(zhang) & queue["id_r"].isin(zhang)]
    assert len(pair) == 1, queue
    return pair.iloc[0]


def test_a_possible_match_waits_with_its_pattern_and_a_merge_binds_for_good(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    pair = _zhang_pair(store)
    assert 0.05 <= pair["match_probability"] < 0.5 and not pair["same_lead"]  # apart now, and asked
    assert pair["pattern_text"].startswith("name exact, email same_mailbox_name") and "mobile differs" in pair["pattern_text"]
    left, right = int(pair["id_l"]), int(pair["id_r"])
    assert _lead_of(store, left) != _lead_of(store, right)

    home = ["--home", str(tmp_path)]
    assert main([*home, "review", "list"]) == 0
    assert f"e.g. {left}~{right}" in capsys.readouterr().out
    assert main([*home, "review", "decide", f"{left}~{right}", "--merge", "--by", "李娜", "--note", "同一客户"]) == 0
    assert "1 merge, 0 apart" in capsys.readouterr().out
    lead = _lead_of(store, left)
    assert _lead_of(store, right) == lead  # one lead now
    history = store.history(lead)
    review_rows = history[history["field"] == "match_review"]
    assert len(review_rows) >= 1 and (review_rows["actor"] == "李娜").all()
    assert review_rows["new_value"].str.contains(f"same person: record {left} ~ record {right}").any()

    # never asked again, and a second answer is refused with nothing changed
    assert not ((review_queue(store)["id_l"] == left) & (review_queue(store)["id_r"] == right)).any()
    with pytest.raises(ReviewError, match="not open for review"):
        decide_matches(store, pd.DataFrame({"id_l": [left], "id_r": [right], "decision": ["apart"]}), by="王五")
    # it binds: a full relink (the nightly job) keeps them together though their score is below the threshold
    relink_and_curate(store, full=True)
    assert _lead_of(store, left) == _lead_of(store, right)
    decided = store.match_decisions()
    assert decided[["id_l", "id_r", "decision", "decided_by"]].values.tolist() == [[left, right, "merge", "李娜"]]


def test_an_apart_decision_holds_when_a_new_record_would_chain_them(tmp_path: Path) -> None:
    store = _store(tmp_path)
    pair = _zhang_pair(store)
    left, right = int(pair["id_l"]), int(pair["id_r"])
    decide_matches(store, pd.DataFrame({"id_l": [left], "id_r": [right], "decision": ["分开"]}), by="李娜")
    assert _lead_of(store, left) != _lead_of(store, right)
    # a later file has a record carrying both mobiles' owner details: it links to each of them
    later = write_xlsx(tmp_path / "later.xlsx", [HEADER, ["张伟", "13800138000", "zhangwei88@163.com", "", ""]])
    assert import_file(store, later).status == "imported"
    relink_and_curate(store)
    assert _lead_of(store, left) != _lead_of(store, right)  # the person's answer holds
    relink_and_curate(store, full=True)
    assert _lead_of(store, left) != _lead_of(store, right)


def test_the_review_workbook_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    pair = _zhang_pair(store)
    home = ["--home", str(tmp_path)]
    out = tmp_path / "可能重复.xlsx"
    assert main([*home, "review", "export", str(out)]) == 0
    workbook = openpyxl.load_workbook(out)
    sheet = workbook["可能重复"]
    header = [c.value for c in sheet[1]]
    assert header[0] == "编号" and header[-1].startswith("决定") and "A 姓名" in header and "B 手机" in header
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == f"{pair['id_l']}~{pair['id_r']}")
    assert row[header.index("A 姓名")].value == "张伟" and row[header.index("B 姓名")].value == "张伟"
    row[-1].value = "也许"
    workbook.save(out)
    assert main([*home, "review", "apply", str(out), "--by", "李娜"]) == 2
    assert f"row {row[0].row}: 决定 must be one of" in capsys.readouterr().err
    assert store.match_decisions().empty  # nothing was applied
    row[-1].value = "合并"
    workbook.save(out)
    assert main([*home, "review", "apply", str(out), "--by", "李娜"]) == 0
    assert _lead_of(store, int(pair["id_l"])) == _lead_of(store, int(pair["id_r"]))


def test_decisions_bind_the_change_path_as_they_bind_a_full_pass(tmp_path: Path) -> None:
    store = _store(tmp_path)
    pair = _zhang_pair(store)
    decide_matches(store, pd.DataFrame({"id_l": [pair["id_l"]], "id_r": [pair["id_r"]], "decision": ["merge"]}),
                   by="李娜")
    assert import_file(store, write_xlsx(tmp_path / "more.xlsx", [HEADER, ["张伟", "", "zhangwei88@qq.com", "", ""],
                                                                  ["刘阳", "13500135000", "", "", "经理"]])).status == "imported"
    relink_and_curate(store)  # the change path
    incremental = store.links().set_index("record_id")["lead_id"]
    relinked = copy_store(store, tmp_path / "copy")
    relink_and_curate(relinked, full=True)
    full = relinked.links().set_index("record_id")["lead_id"]
    assert incremental.sort_index().equals(full.sort_index())


def test_patterns_are_stable_keys_read_in_words() -> None:
    gammas = np.array([[3, -1, 0], [3, -1, 0], [1, 2, -1]], dtype=np.int8)
    keys = pattern_keys(gammas)
    assert keys[0] == keys[1] != keys[2]
    assert pattern_levels(int(keys[2]), 3) == [1, 2, -1]
    labels = [["else", "similar", "surname", "exact"], ["else", "one_digit", "exact"], ["else", "exact"]]
    assert describe_pattern(int(keys[0]), ["name", "mobile", "company"], labels) == \
        "name exact · company differs · mobile missing"


def test_labels_recalibrate_the_band_only_and_never_below_it() -> None:
    names = ["name", "mobile"]
    rng = np.random.default_rng(7)
    # twenty pairs the model put just below the threshold (name agrees, mobile missing), all the same person
    contributions = np.column_stack([rng.uniform(3, 4, 20), np.zeros(20)])
    prior = -5.0
    learned = fit_recalibration(contributions, prior, np.ones(20, dtype=bool), names)
    assert learned.merges == 20 and learned.intercept > 0.5  # answers that all said "same person" raised it
    weights = prior + contributions.sum(axis=1)
    moved = recalibrate_band(weights, contributions, prior, learned, review_from=0.05, review_to=0.95)
    assert (moved > weights).all()
    # outside the band nothing moves; inside, nothing falls below the band's floor
    outside = np.array([weight_of(0.99) + 1, weight_of(0.01) - 1])
    assert np.array_equal(recalibrate_band(outside, np.zeros((2, 2)), prior, learned, 0.05, 0.95), outside)
    apart = fit_recalibration(contributions, prior, np.zeros(20, dtype=bool), names)
    lowered = recalibrate_band(weights, contributions, prior, apart, 0.05, 0.95)
    assert (lowered < weights).all() and (lowered >= weight_of(0.05) - 1e-9).all()
    # no labels: the model as it is
    assert np.array_equal(recalibrate_band(weights, contributions, prior, Recalibration(names), 0.05, 0.95), weights)
    assert Recalibration.from_json(learned.to_json()) == learned
