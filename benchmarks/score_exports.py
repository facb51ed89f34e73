"""Pairwise precision / recall / F1 of lead assignment on the export-shaped sample files.

    python benchmarks/score_exports.py [--out DIR] [--people 240] [--seed 11]

Writes the files of ``datafactory_pipelines.sample_exports`` (real-shaped CRM, OA, form, ad and
trade-show exports with their truth), imports each one as an operator's drop would, links and
curates, and scores the lead of every truth row against the person it is. A rejected file's rows
and rows that joined no lead count as leads of their own. Then the same for the golden-record family
(``sample_exports_golden``: one company written many ways, people who move), with how often the golden
company, mobile and email equal each person's latest real value where their rows allow it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_exports import pairwise_scores, write_export_files
from datafactory_pipelines.sample_exports_golden import (
    EXACT_KEYS,
    exact_key_labels,
    golden_report,
    write_golden_exports,
)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--people", type=int, default=240)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="datafactory-exports-"))
    scores = score_exports(out, args.people, args.seed)
    print(f"pairwise P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
          f"({scores['true_pairs']} true pairs, {scores['predicted_pairs']} predicted)")
    golden = score_golden_exports(out, max(60, args.people * 5 // 6), args.seed)
    print(f"golden family: pairwise P {golden['precision']:.4f}  R {golden['recall']:.4f}  F1 {golden['f1']:.4f}  "
          f"({golden['true_pairs']} true pairs, {golden['predicted_pairs']} predicted)")
    exact = golden["exact_keys"]
    print(f"golden family, exact keys on the same standardized records: P {exact['precision']:.4f}  "
          f"R {exact['recall']:.4f}  F1 {exact['f1']:.4f}")
    for field, got in golden["golden"].items():
        print(f"golden {field:8s} equals the latest real value for {got['share']:.1%} of people whose rows allow it "
              f"({got['right']} of {got['allowed']}; {got['people']} people)")


if __name__ == "__main__":
    main()
