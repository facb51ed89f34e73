"""Import a gen_leads.py output folder (made with --files K) and write files for score.py.

    python benchmarks/score_gen_leads.py GEN_DIR [--out OUT_DIR]
    python SCORE_PY GEN_DIR/truth.csv OUT_DIR/pred.csv --current GEN_DIR/current.csv --leads OUT_DIR/leads.csv

It goes through the same path as an operator's drop: each file under GEN_DIR/files is read with
its own headers, standardized, saved, then everything is linked and curated. The mapping to the
generator's record ids is `export links` joined with files/NAME.rows.csv, as the issue asks.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gen_dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="datafactory-score-"))
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "leads.duckdb"
    store_path.unlink(missing_ok=True)
    store = open_store(store_path)
    files = sorted(p for p in (args.gen_dir / "files").iterdir()
                   if p.suffix in (".xlsx", ".csv") and not p.name.endswith(".rows.csv"))
    started = time.perf_counter()
    rows = 0
    for path in files:
        outcome = import_file(store, path)
        rows += outcome.rows_read
        print(f"{path.name}: {outcome.status} {outcome.rows_read} rows, {outcome.rows_unreachable} unreachable")
    import_s = time.perf_counter() - started
    started = time.perf_counter()
    result = relink_and_curate(store)
    link_s = time.perf_counter() - started
    links = store.links()
    mapping = pd.concat([pd.read_csv(f"{p}.rows.csv").assign(source_file=p.name) for p in files])
    pred = mapping.merge(links[["source_file", "source_row", "lead_id"]], on=["source_file", "source_row"], how="left")
    pred[["record_id", "lead_id"]].to_csv(out / "pred.csv", index=False)
    store.leads().to_csv(out / "leads.csv", index=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"imported {rows} rows from {len(files)} files in {import_s:.1f}s ({rows / import_s:,.0f} rows/s); "
          f"link + curate {link_s:.1f}s; {result.active_leads} leads; peak RSS {peak:,.0f} MB")
    print(f"wrote {out / 'pred.csv'} and {out / 'leads.csv'}")


if __name__ == "__main__":
    main()
