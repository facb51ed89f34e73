"""The texts a full pass writes for every lead and link, built column-wise, equal the per-row reference:
match contributions as json.dumps writes them, provenance as json.dumps writes it, and each lead's
cause (the imports of its new records)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from datafactory_pipelines.pipeline import (
    _lead_causes,
    accepted_links,
    contributions_json,
    import_files,
    relink_and_curate,
)
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store


def _contributions_reference(pairs: pd.DataFrame) -> list[str]:
    weights = [c for c in pairs.columns if c.startswith("w_")]
    return [json.dumps({c[2:]: round(v, 2) for c, v in zip(weights, row, strict=True) if v}, ensure_ascii=False)
            for row in pairs[weights].to_numpy(dtype=float).tolist()]


def test_contributions_are_the_json_of_each_pairs_rounded_nonzero_weights() -> None:
    pairs = pd.DataFrame({
        "w_名字": [0.0, np.nan, -0.001, 2.675, 1e20, -np.inf, 0.125, -0.0],
        "w_mobile": [0.0, 1.005, 0.0, 3.0, 0.0, 0.1, 7.0, 12.345],
        "w_email": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.inf],
    })
    assert list(contributions_json(pairs)) == _contributions_reference(pairs)
    assert list(contributions_json(pairs.iloc[:0])) == []
    assert list(contributions_json(pairs[[]])) == ["{}"] * len(pairs)  # no comparison columns


def _imported(tmp_path: Path):
    sample = write_sample_files(tmp_path / "files", people=600, records=1500, files=3, seed=5)
    store = open_store(tmp_path / "leads.duckdb")
    assert [o.status for o in import_files(store, sample.files, imported_by="t", workers=0)] == ["imported"] * 3
    return store


def test_a_full_pass_writes_the_same_texts_as_the_per_row_reference(tmp_path: Path, monkeypatch) -> None:
    import datafactory_pipelines.pipeline as pipeline

    store = _imported(tmp_path)
    seen = {}
    original = pipeline.accepted_links

    def keep(link):  # the link result of the full pass, for the reference
        seen["link"] = link
        return original(link)

    monkeypatch.setattr(pipeline, "accepted_links", keep)
    outcome = relink_and_curate(store)
    link = seen["link"]
    from datafactory_pipelines.linkage.engine import accepted

    pairs = link.pairs[accepted(link.pairs, link.threshold)]  # at or above the threshold, naming the person
    assert len(pairs) > 100
    with store.transaction() as con:
        stored = con.execute("SELECT record_l, record_r, contributions FROM match_links").df()
    stored = stored.set_index(["record_l", "record_r"])["contributions"]
    expected = pd.Series(_contributions_reference(pairs), index=pd.MultiIndex.from_arrays(
        [pairs["id_l"].astype("int64"), pairs["id_r"].astype("int64")], names=["record_l", "record_r"]))
    assert stored.sort_index().to_dict() == expected.sort_index().to_dict()
    assert any("," in text for text in expected)  # pairs agreeing on several fields

    # provenance: every lead's text is the json.dumps of its per-field record facts, in field order
    leads = store.leads()
    records = store.records_for_linkage().set_index("record_id")
    checked = 0
    for text in leads["provenance"]:
        parsed = json.loads(text)
        assert json.dumps(parsed, ensure_ascii=False) == text
        for entry in parsed.values():
            row = records.loc[entry["record"]]
            assert (entry["file"], entry["row"], entry["source"]) == (row["source_file"], row["source_row"],
                                                                      row["source"] or "")
            checked += 1
    assert checked > len(leads)
    assert outcome.changes.lead_causes is not None and len(outcome.changes.lead_causes) == len(leads)


def test_lead_causes_join_each_leads_sorted_imports() -> None:
    fresh = pd.DataFrame({"record_id": [1, 2, 3, 4, 5, 6], "import_id": ["b", "a", "b", "c", "a", "a"]})
    record_leads = pd.DataFrame({"record_id": [1, 2, 3, 4, 5, 6], "lead_id": ["L2", "L2", "L2", None, "L1", "L3"]})
    causes = _lead_causes(fresh, record_leads)
    assert causes.to_dict() == {"L1": "a", "L2": "a,b", "L3": "a"}
    assert list(causes.index) == ["L1", "L2", "L3"] and causes.index.name == "lead_id"
    assert _lead_causes(fresh.iloc[:0], record_leads).empty


def test_accepted_links_keep_the_pairs_at_or_above_the_threshold() -> None:
    from datafactory_pipelines.linkage.engine import LinkResult, default_model

    pairs = pd.DataFrame({"id_l": [1, 2, 3], "id_r": [2, 3, 4], "match_weight": [9.0, 1.0, 12.0],
                          "match_probability": [0.995, 0.5, 0.99], "w_name": [4.0, 1.0, 0.0],
                          "w_mobile": [5.0, 0.0, 12.0]})
    link = LinkResult(clusters=pd.DataFrame(), pairs=pairs, model=default_model())
    link.threshold = 0.99
    links = accepted_links(link)
    assert links[["record_l", "record_r"]].to_numpy().tolist() == [[1, 2], [3, 4]]
    assert list(links["contributions"]) == ['{"name": 4.0, "mobile": 5.0}', '{"mobile": 12.0}']
    # a pair above the threshold that names nobody (a surname and a company alone) is not a link
    link.pairs = pairs.assign(identified=[True, True, False])
    assert accepted_links(link)[["record_l", "record_r"]].to_numpy().tolist() == [[1, 2]]


def _provenance_reference(golden: pd.DataFrame, facts: pd.DataFrame, fields: list[str]) -> list[str]:
    from datafactory_pipelines.survivorship import survivorship_rules

    rules = survivorship_rules()["fields"]
    out = []
    for _, lead in golden.iterrows():
        chosen = {}
        for field in fields:
            record = lead[field + "__record"]
            if pd.isna(record):
                continue
            fact = facts.loc[int(record)]
            at = fact["collected_at"] if isinstance(fact["collected_at"], str) and fact["collected_at"] else \
                str(fact["import_time"])[:10]
            chosen[field] = {"record": int(record), "file": fact["source_file"], "row": int(fact["source_row"]),
                             "source": fact["source"] or "", "at": at, "rule": rules.get(field, "latest")}
        out.append(json.dumps(chosen, ensure_ascii=False) if chosen else "")
    return out


def test_provenance_is_the_json_of_each_chosen_records_facts() -> None:
    from datafactory_pipelines.survivorship import provenance_array

    def provenance(golden: pd.DataFrame, facts: pd.DataFrame, fields: list[str]) -> list[str]:
        return provenance_array(golden, facts, fields).to_pylist()

    fields = ["name", "mobile", "company", "title"]
    facts = pd.DataFrame({
        "record_id": [1, 2, 3, 4, 5],
        "import_time": pd.to_datetime(["2025-03-01 10:00", "2025-04-02 11:00", "2025-05-03 12:00",
                                       "2025-06-04 13:00", "2025-07-05 14:00"]),
        "import_id": ["a", "a", "b", "b", "c"],
        "source": ["展会", None, "", np.nan, '引号"和\\斜杠'],
        "source_file": ["旧.xlsx", "旧.xlsx", "new.csv", "new.csv", "c.xlsx"],
        "source_row": [2, 3, 2, 3, 9],
        "collected_at": ["2025-01-05", None, "", "2024-12-31", None],
    }).set_index("record_id")
    golden = pd.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4"],
        "name__record": [1, 3, np.nan, 5], "mobile__record": [2, 3, np.nan, 4],
        "company__record": [1, 4, np.nan, np.nan], "title__record": [np.nan, 2, np.nan, 5],
    })
    got = provenance(golden, facts, fields)
    assert got == _provenance_reference(golden, facts, fields)
    assert got[2] == ""  # nothing chosen
    assert json.loads(got[1])["mobile"]["at"] == "2025-05-03"  # undated: the import's day
    assert provenance(golden.iloc[:0], facts, fields) == []
