"""How much a person's answers about possible matches move F1: the review queue answered from the truth.

    python benchmarks/review_curve.py GEN_DIR [--steps 25 50 100] [--exports-seed 11 --exports-people 240]

GEN_DIR is a gen_leads.py output made with --files K (its files/NAME.rows.csv map rows to the truth). With
--exports-seed, the export-shaped families of datafactory_pipelines/sample_exports.py (CRM .xlsx, GBK CSV,
OA HTML .xls, SpreadsheetML …, a family the shipped model was never trained on) are imported too, and
scored with their own truth. Everything goes through the operator's path (import, link, curate); then the
queue's first suggestions (those that teach the most first) are answered as a person would, from the
truth: merge when the two records are one person, apart otherwise. Pairwise P/R/F1 over every imported
row is printed before any answer and after each step.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from datafactory_pipelines.match_review import decide_matches, review_queue
from datafactory_pipelines.pipeline import import_files, relink_and_curate
from datafactory_pipelines.store import open_store


def pairwise(truth: pd.Series, predicted: pd.Series) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of a clustering against the truth (records without a lead are
    singletons)."""
    frame = pd.DataFrame({"t": truth.to_numpy(), "p": predicted.to_numpy()})
    frame["p"] = frame["p"].where(frame["p"].notna(), "single:" + frame.index.astype(str))

    def pairs(counts: pd.Series) -> int:
        return int((counts * (counts - 1) // 2).sum())

    both = pairs(frame.groupby(["t", "p"]).size())
    true_pairs, predicted_pairs = pairs(frame.groupby("t").size()), pairs(frame.groupby("p").size())
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _truth_of_gen(gen_dir: Path, files: list[Path]) -> pd.DataFrame:
    """source_file, source_row, person for the generator's files."""
    truth = pd.read_csv(gen_dir / "truth.csv", usecols=["record_id", "person_id"])
    rows = pd.concat([pd.read_csv(f"{p}.rows.csv").assign(source_file=p.name) for p in files])
    merged = rows.merge(truth, on="record_id")
    return pd.DataFrame({"source_file": merged["source_file"], "source_row": merged["source_row"],
                         "person": "g" + merged["person_id"].astype(str)})


def _truth_of_exports(folder: Path, people: int, seed: int) -> tuple[list[Path], pd.DataFrame]:
    from datafactory_pipelines.sample_exports import write_export_files

    exports = write_export_files(folder, people=people, seed=seed)
    truth = exports.truth.rename(columns={"file": "source_file"})
    return list(exports.files), pd.DataFrame({"source_file": truth["source_file"], "sheet": truth["sheet"],
                                              "source_row": truth["source_row"],
                                              "person": "x" + truth["person_id"].astype(str)})


def _joined(store, truths: list[pd.DataFrame]) -> pd.DataFrame:
    """Each truth joined to the store's rows on the keys it has (the generator's files have one sheet)."""
    links = store.links()[["source_file", "sheet", "source_row", "lead_id", "record_id"]]
    parts = []
    for truth in truths:
        keys = [c for c in ("source_file", "sheet", "source_row") if c in truth.columns]
        parts.append(truth[[*keys, "person"]].merge(links, on=keys, how="left"))
    return pd.concat(parts, ignore_index=True)


def score(store, truths: list[pd.DataFrame]) -> tuple[float, float, float]:
    scored = _joined(store, truths)
    return pairwise(scored["person"], scored["lead_id"])


def person_of_records(store, truths: list[pd.DataFrame]) -> dict[int, str]:
    joined = _joined(store, truths).dropna(subset=["record_id"])
    return dict(zip(joined["record_id"].astype("int64"), joined["person"], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gen_dir", type=Path, nargs="?")
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--exports-seed", type=int)
    parser.add_argument("--exports-people", type=int, default=240)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="datafactory-review-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "leads.duckdb").unlink(missing_ok=True)
    store = open_store(work / "leads.duckdb")
    files: list[Path] = []
    truths = []
    if args.gen_dir:
        gen_files = sorted(p for p in (args.gen_dir / "files").iterdir()
                           if p.suffix in (".xlsx", ".csv") and not p.name.endswith(".rows.csv"))
        files += gen_files
        truths.append(_truth_of_gen(args.gen_dir, gen_files))
    if args.exports_seed is not None:
        (work / "exports").mkdir(exist_ok=True)
        export_files, export_truth = _truth_of_exports(work / "exports", args.exports_people, args.exports_seed)
        files += export_files
        truths.append(export_truth)
    if not files:
        parser.error("give GEN_DIR, --exports-seed, or both")
    truth = truths
    started = time.perf_counter()
    for outcome in import_files(store, files):
        if outcome.status != "imported":
            print(f"{outcome.path.name}: {outcome.status} {outcome.error}")
    relink_and_curate(store)
    print(f"imported and linked {sum(len(t) for t in truths)} rows from {len(files)} files in {time.perf_counter() - started:.1f}s")
    person = person_of_records(store, truth)
    print("| answers | open pairs | P | R | F1 | merges / apart so far | answers that overturned the model | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    answered, merges = 0, 0
    p, r, f1 = score(store, truth)
    print(f"| 0 | {store.match_review_count()} | {p:.4f} | {r:.4f} | {f1:.4f} | 0 / 0 | | |")
    overturned = 0
    for step in args.steps:
        queue = review_queue(store)
        take = queue.head(max(step - answered, 0))
        if take.empty:
            print(f"| {step} | 0 | (the queue is empty) | | | | | |")
            break
        changing = int(((take["same_lead"].astype(bool)) != (
            [person.get(int(a)) is not None and person.get(int(a)) == person.get(int(b))
             for a, b in zip(take["id_l"], take["id_r"], strict=True)])).sum())
        decisions = pd.DataFrame({
            "id_l": take["id_l"], "id_r": take["id_r"],
            "decision": ["merge" if person.get(int(a)) is not None and person.get(int(a)) == person.get(int(b))
                         else "apart" for a, b in zip(take["id_l"], take["id_r"], strict=True)]})
        started = time.perf_counter()
        decide_matches(store, decisions, by="review_curve", note="answered from the truth")
        seconds = time.perf_counter() - started
        answered += len(decisions)
        merges += int((decisions["decision"] == "merge").sum())
        overturned += changing
        p, r, f1 = score(store, truth)
        print(f"| {answered} | {store.match_review_count()} | {p:.4f} | {r:.4f} | {f1:.4f} | "
              f"{merges} / {answered - merges} | {overturned} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
