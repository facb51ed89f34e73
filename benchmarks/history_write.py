"""The history part of a full pass's write phase, alone: every lead of a finished store written as new.

    python benchmarks/history_write.py STORE [--leads N] [--work DIR] [--verify]

Reads the leads of STORE (read-only; e.g. a finished 1M-record base, 400k leads) and writes them with
`store.apply_lead_changes` into an empty store in DIR, as the base import's full pass does: every lead new,
each with the cause of one import, so every set tracked field becomes a hash-chained history row (about
10 per lead) with its outbox. Prints the seconds of the history (field changes, row texts, SHA-256 chain,
insert, outbox), of the leads' own insert and of the commit, the CPU seconds of this process's main thread
and the process's peak RSS and RSS growth while the history was written. `--verify` walks the chain after.

The history is sequential (each hash needs the one before), so the main thread's CPU is its floor; DuckDB
inserts a slice while the next one is hashed. Benchmark figures, not tests.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from datafactory_pipelines.history import verify_chain
from datafactory_pipelines.store import open_store
from datafactory_pipelines.store.base import LeadChanges
from datafactory_pipelines.store.parts.history_writers import HistoryWriters
from datafactory_pipelines.store.schema import LEAD_COLUMNS


def _rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, help="a finished lead store (read only)")
    parser.add_argument("--leads", type=int, default=0, help="only the first N leads (default: all)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the new store (default: a temp dir)")
    parser.add_argument("--verify", action="store_true", help="verify the written chain afterwards")
    args = parser.parse_args()

    source = duckdb.connect(str(args.store), read_only=True)
    limit = f"LIMIT {int(args.leads)}" if args.leads else ""
    leads = source.execute(f"SELECT * FROM leads ORDER BY lead_id {limit}").df().reindex(columns=LEAD_COLUMNS)
    source.close()
    imports = [f"leads_{n:03d}-{n * 7919 % 10**10:010d}" for n in range(100)]
    causes = pd.Series([imports[n % len(imports)] for n in range(len(leads))], index=leads["lead_id"])

    work = args.work or Path(tempfile.mkdtemp(prefix="history-write-"))
    shutil.rmtree(work / "store", ignore_errors=True)
    store = open_store(work / "store" / "leads.duckdb")
    no_links = pd.DataFrame({"record_id": pd.Series([], dtype="int64"), "lead_id": pd.Series([], dtype=object)})
    changes = LeadChanges(record_leads=no_links, upserts=leads, action="import", actor="bench",
                          cause=",".join(imports), lead_causes=causes)

    seconds: dict[str, float] = {}
    growth: list[float] = []
    write_history = HistoryWriters._append_lead_history

    def timed_history(self, con, *rest, **named) -> None:  # noqa: ANN001
        started, rss = time.perf_counter(), _rss_gb()
        write_history(self, con, *rest, **named)
        seconds["history"] = time.perf_counter() - started
        growth.append(_rss_gb() - rss)

    HistoryWriters._append_lead_history = timed_history
    cpu, started = time.thread_time(), time.perf_counter()
    with store.exclusive("history benchmark", atomic=True):
        store.apply_lead_changes(changes)
        applied = time.perf_counter()
    done = time.perf_counter()
    cpu = time.thread_time() - cpu
    HistoryWriters._append_lead_history = write_history
    rows = len(store.history_after(0)) if args.verify else None
    print(f"{len(leads)} leads" + (f", {rows} history rows" if rows is not None else ""))
    print(f"history (changes, chain, insert, outbox) {seconds['history']:.2f}s; leads and the rest "
          f"{applied - started - seconds['history']:.2f}s; commit {done - applied:.2f}s; "
          f"main thread CPU {cpu:.2f}s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB; "
          f"RSS growth while the history was written {growth[0]:.2f} GB")
    if args.verify:
        check = verify_chain(store.history())
        print(f"chain: {'ok' if check.ok else f'breaks at row {check.first_bad_seq}: {check.reason}'} "
              f"({check.rows} rows)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
