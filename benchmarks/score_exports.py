"""Pairwise precision / recall / F1 of lead assignment on the export-shaped sample files.

    python benchmarks/score_exports.py [--out DIR] [--people 240] [--seed 11] [--set exports|cells|both]

Writes the files of ``datafactory_pipelines.sample_exports`` (real-shaped CRM, OA, form, ad and
trade-show exports with their truth), imports each one as an operator's drop would, links and
curates, and scores the lead of every truth row against the person it is. A rejected file's rows
and rows that joined no lead count as leads of their own.

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
from datafactory_pipelines.store import open_store


def score_exports(out: Path, people: int = 240, seed: int = 11, verbose: bool = True) -> dict[str, float]:
    sample = write_export_files(out / "files", people=people, seed=seed)
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
    return pairwise_scores(joined, joined["lead_id"])


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
    parser.add_argument("--set", choices=["exports", "cells", "both"], default="exports")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="datafactory-exports-"))
    if args.set in ("exports", "both"):
        scores = score_exports(out, args.people, args.seed)
        print(f"pairwise P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
              f"({scores['true_pairs']} true pairs, {scores['predicted_pairs']} predicted)")
    if args.set in ("cells", "both"):
        scores = score_cell_exports(out, args.people, args.seed)
        for family, s in scores["families"].items():
            print(f"  {family:<14} P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}  "
                  f"({s['true_pairs']} true pairs)")
        print(f"cells: pairwise P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
              f"({scores['true_pairs']} true pairs, {scores['predicted_pairs']} predicted); "
              f"false reachable rows {scores['false_reachable']}")


if __name__ == "__main__":
    main()
