"""Pairwise precision / recall / F1 of lead assignment on the export-shaped sample files.

    python benchmarks/score_exports.py [--out DIR] [--people 240] [--seed 11] [--family exports|layout]

Writes the files of ``datafactory_pipelines.sample_exports`` (real-shaped CRM, OA, form, ad and
trade-show exports with their truth), imports each one as an operator's drop would, links and
curates, and scores the lead of every truth row against the person it is. A rejected file's rows
and rows that joined no lead count as leads of their own.

Families: ``exports`` (``sample_exports``: containers, column roles) and ``layout``
(``sample_exports_layout``: instruction / summary / pivot sheets, merged cells, total rows, referral
lists with unknown headers, our branch columns beside the client's). Every record read from a row that
is not a person (an example, a total, a note, a summary) is counted: the target is none.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_exports import pairwise_scores, write_export_files
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--people", type=int, default=240)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="exports")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="datafactory-exports-"))
    scores = score_exports(out, args.people, args.seed, family=args.family)
    print(f"pairwise P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
          f"({scores['true_pairs']} true pairs, {scores['predicted_pairs']} predicted); "
          f"{scores['records_not_people']} records from rows that are not people, "
          f"{scores['leads_from_not_people']} of them in leads")


if __name__ == "__main__":
    main()
