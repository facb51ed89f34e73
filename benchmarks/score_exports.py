"""Pairwise precision / recall / F1 of lead assignment on the export-shaped sample files.

    python benchmarks/score_exports.py [--out DIR] [--people 240] [--seed 11] [--set exports|cells|golden|both]
                                       [--family exports|layout]

Writes the files of ``datafactory_pipelines.sample_exports`` (real-shaped CRM, OA, form, ad and
trade-show exports with their truth), imports each one as an operator's drop would, links and
curates, and scores the lead of every truth row against the person it is. A rejected file's rows
and rows that joined no lead count as leads of their own. Then the same for the golden-record family
(``sample_exports_golden``: one company written many ways, people who move), with how often the golden
company, mobile and email equal each person's latest real value where their rows allow it (alone:
`--set golden`).

Families: ``exports`` (``sample_exports``: containers, column roles) and ``layout``
(``sample_exports_layout``: instruction / summary / pivot sheets, merged cells, total rows, referral
lists with unknown headers, our branch columns beside the client's). Every record read from a row that
is not a person (an example, a total, a note, a summary) is counted: the target is none.

`--set cells` scores the families of ``datafactory_pipelines.sample_exports_cells`` instead (contacts in
other cells, codes, Traditional Chinese, our own hotline, no header, several people a row, …): the
same scores, per family (pairs touching that file's rows), and the rows reachable although the truth
says they carry no contact of the person ("false reachable": must be 0).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from datafactory_pipelines.pipeline import import_file, prepare_file, relink_and_curate
from datafactory_pipelines.sample_exports import pairwise_scores, write_export_files
from datafactory_pipelines.sample_exports_cells import write_cell_files
from datafactory_pipelines.sample_exports_golden import (
    EXACT_KEYS,
    exact_key_labels,
    golden_report,
    write_golden_exports,
)
from datafactory_pipelines.sample_exports_layout import write_layout_files
from datafactory_pipelines.store import open_store

FAMILIES = {"exports": write_export_files, "layout": write_layout_files}


def score_exports(out: Path, people: int = 240, seed: int = 11, verbose: bool = True,
                  family: str = "exports") -> dict[str, float]:
    sample = FAMILIES[family](out / "files", people=people, seed=seed)
    store_path = out / "leads.duckdb"
    store_path.unlink(missing_ok=True)
    store = open_store(store_path)
    for path in sample.files:
        outcome = import_file(store, path)
        if verbose:
            print(f"{path.name}: {outcome.status} {outcome.rows_read} rows, {outcome.rows_unreachable} unreachable"
                  + (f" ({outcome.error[:120]})" if outcome.error else ""))
    relink_and_curate(store)
    links = store.links().rename(columns={"source_file": "file"})
    joined = sample.truth.merge(links[["file", "sheet", "source_row", "lead_id"]],
                                on=["file", "sheet", "source_row"], how="left")
    scores = pairwise_scores(joined, joined["lead_id"])
    # rows read as people that are none (an example, a total, a note, a summary sheet)
    stray = links.merge(sample.truth[["file", "sheet", "source_row"]], on=["file", "sheet", "source_row"],
                        how="left", indicator=True)
    stray = stray[stray["_merge"] == "left_only"]
    scores["records_not_people"] = len(stray)
    scores["leads_from_not_people"] = int(stray["lead_id"].notna().sum())
    return scores


def score_golden_exports(out: Path, people: int = 200, seed: int = 11, verbose: bool = True) -> dict:
    """The golden-record family (sample_exports_golden): pairwise scores, and per field how often the golden
    company, mobile and email equal the person's latest real value, among people whose rows allow it."""
    sample = write_golden_exports(out / "golden_files", people=people, seed=seed)
    store_path = out / "golden.duckdb"
    store_path.unlink(missing_ok=True)
    store = open_store(store_path)
    for path in sample.files:
        outcome = import_file(store, path)
        if verbose:
            print(f"{path.name}: {outcome.status} {outcome.rows_read} rows, {outcome.rows_unreachable} unreachable")
    relink_and_curate(store)
    links = store.links().rename(columns={"source_file": "file"})
    joined = sample.truth.merge(links[["file", "sheet", "source_row", "lead_id", "record_id"]],
                                on=["file", "sheet", "source_row"], how="left")
    records = store.records_for_linkage(columns=["record_id", *EXACT_KEYS])
    exact = joined["record_id"].map(exact_key_labels(records))
    return {**pairwise_scores(joined, joined["lead_id"]), "golden": golden_report(sample.truth, links, store.leads()),
            "exact_keys": pairwise_scores(joined, exact)}


def score_cell_exports(out: Path, people: int = 240, seed: int = 11, verbose: bool = True) -> dict:
    sample = write_cell_files(out / "cell_files", people=people, seed=seed)
    store_path = out / "cells.duckdb"
    store_path.unlink(missing_ok=True)
    store = open_store(store_path)
    reachable = []
    for path in sample.files:
        outcome = import_file(store, path)
        if verbose:
            print(f"{path.name}: {outcome.status} {outcome.rows_read} rows, {outcome.rows_unreachable} unreachable"
                  + (f" ({outcome.error[:120]})" if outcome.error else ""))
        if outcome.status == "imported":  # which rows the import let through as reachable, in record order
            records = prepare_file(path).records
            reachable.append(records[["sheet", "source_row", "reachable"]].assign(
                file=path.name, part=records.groupby(["sheet", "source_row"]).cumcount().to_numpy()))
    relink_and_curate(store)
    links = store.links().rename(columns={"source_file": "file"}).sort_values("record_id")
    # several people in one row: the row's records in the order the row names them
    links["part"] = links.groupby(["file", "sheet", "source_row"]).cumcount()
    joined = sample.truth.merge(links[["file", "sheet", "source_row", "part", "lead_id"]],
                                on=["file", "sheet", "source_row", "part"], how="left")
    scores = pairwise_scores(joined, joined["lead_id"])
    if reachable:
        joined = joined.merge(pd.concat(reachable), on=["file", "sheet", "source_row", "part"], how="left")
    reached = joined["reachable"].fillna(False).astype(bool) if "reachable" in joined else joined["has_contact"] & False
    scores["false_reachable"] = int((~joined["has_contact"] & reached).sum())
    scores["families"] = {}
    for file_name in sample.truth["file"].unique():
        scores["families"][file_name] = _family_scores(joined, joined["file"] == file_name)
    return scores


def _family_scores(joined, in_file) -> dict[str, float]:
    """Pairs with at least one row in the family's file: how many true ones were found, how many found were true."""
    labels = joined["lead_id"].astype(object).copy()
    alone = labels.isna()
    labels[alone] = [f"__alone_{i}" for i in range(int(alone.sum()))]
    frame = pd.DataFrame({"person": joined["person_id"], "lead": labels, "in": in_file.to_numpy()})

    def touching(keys: list[str]) -> int:
        groups = frame.groupby(keys)["in"].agg(["size", "sum"])
        n, k = groups["size"], groups["sum"]
        return int((n * (n - 1) // 2 - (n - k) * (n - k - 1) // 2).sum())

    true_pairs, predicted, both = touching(["person"]), touching(["lead"]), touching(["person", "lead"])
    precision = both / predicted if predicted else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": true_pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--people", type=int, default=240)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--set", choices=["exports", "cells", "golden", "both"], default="exports")
    parser.add_argument("--family", choices=sorted(FAMILIES), default="exports",
                        help="with --set exports/both: the export families (exports) or the layout families (layout)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="datafactory-exports-"))
    if args.set in ("exports", "both"):
        scores = score_exports(out, args.people, args.seed, family=args.family)
        print(f"pairwise P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
              f"({scores['true_pairs']} true pairs, {scores['predicted_pairs']} predicted); "
              f"{scores['records_not_people']} records from rows that are not people, "
              f"{scores['leads_from_not_people']} of them in leads")
    if args.set in ("cells", "both"):
        scores = score_cell_exports(out, args.people, args.seed)
        for family, s in scores["families"].items():
            print(f"  {family:<14} P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}  "
                  f"({s['true_pairs']} true pairs)")
        print(f"cells: pairwise P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
              f"({scores['true_pairs']} true pairs, {scores['predicted_pairs']} predicted); "
              f"false reachable rows {scores['false_reachable']}")
    if args.set in ("exports", "golden", "both"):
        golden = score_golden_exports(out, max(60, args.people * 5 // 6), args.seed)
        print(f"golden family: pairwise P {golden['precision']:.4f}  R {golden['recall']:.4f}  "
              f"F1 {golden['f1']:.4f}  ({golden['true_pairs']} true pairs, {golden['predicted_pairs']} predicted)")
        exact = golden["exact_keys"]
        print(f"golden family, exact keys on the same standardized records: P {exact['precision']:.4f}  "
              f"R {exact['recall']:.4f}  F1 {exact['f1']:.4f}")
        for field, got in golden["golden"].items():
            print(f"golden {field:8s} equals the latest real value for {got['share']:.1%} of people whose rows "
                  f"allow it ({got['right']} of {got['allowed']}; {got['people']} people)")


if __name__ == "__main__":
    main()
