"""Undo cost: import generated files one after another, then undo one of them.

    python benchmarks/undo_speed.py --records 5000 [--files 4] [--out /tmp/undo-bench]

Generates sample lead files (datafactory_pipelines.sample_data), imports them in turn the way the
CLI does, then times `undo_import` of the second file and reports what it read (the touched leads'
history rows against the whole history) and changed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.restore import undo_import
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("/tmp/undo-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    sample = write_sample_files(args.out / "files", people=args.records * 2 // 5, records=args.records,
                                files=args.files)
    store = open_store(args.out / "leads.duckdb")
    ids = []
    for path in sample.files:
        started = time.perf_counter()
        outcome = import_file(store, path)
        relink_and_curate(store)
        ids.append(outcome.import_id)
        print(f"import {path.name}: {time.perf_counter() - started:.1f}s")
    history_rows = len(store.history())
    touched = store.leads_touched_by_import(ids[1])
    read = len(store.history_of_leads(touched))
    print(f"store: {store.counts()}, history {history_rows:,} rows")
    started = time.perf_counter()
    report = undo_import(store, ids[1], by="benchmark")
    seconds = time.perf_counter() - started
    print(f"undo of {ids[1]} ({report.records_retired:,} records, {len(touched):,} touched leads, "
          f"{read:,} of {history_rows:,} history rows read): {seconds:.1f}s")


if __name__ == "__main__":
    main()
