"""Backup, then a verified restore into an empty store: how long each takes, and what the checks cost.

    python benchmarks/backup_restore.py [--people 20000 --records 50000]

Builds a store from sample files (import + link), backs it up, restores it into a new store, and prints the
seconds of each phase. `check` (every file read once, hashed, parsed; the chain walked; the leads compared
with the history) is part of `restore`; it is also timed alone when the code has it. Run it on main for the
baseline (main's restore checks hashes and the chain only).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from datafactory_pipelines.backup import backup, restore_backup
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        files = write_sample_files(base / "inbox", people=args.people, records=args.records, files=2, seed=5).files
        store = open_store(base / "store.duckdb")
        for path in files:
            import_file(store, path)
        relink_and_curate(store)
        counts = store.counts()
        started = time.perf_counter()
        folder = backup(store, base / "backups")
        made = time.perf_counter() - started
        try:
            from datafactory_pipelines.backup import check_backup
            started = time.perf_counter()
            check_backup(folder, open_store(base / "check.duckdb"))
            checked = f"{time.perf_counter() - started:.2f}"
        except ImportError:
            checked = "n/a"
        started = time.perf_counter()
        restore_backup(folder, open_store(base / "restored.duckdb"))
        restored = time.perf_counter() - started
        print(f"records {counts['records']}, active leads {counts['active_leads']}, history {len(store.history())}: "
              f"backup {made:.2f}s, check alone {checked}s, restore (check + load) {restored:.2f}s")


if __name__ == "__main__":
    main()
