"""Where the time of a bulk import's reading and saving goes: the first phase of the base import.

    python benchmarks/bulk_save.py GEN_DIR [--files N] [--work DIR]

Reads and saves the base files of a generated lead set (GEN_DIR/files/leads_NNN.csv, all but the last,
or the first N) into an empty store with `pipeline.import_files`, as `datafactory import` does before it
links (no linking here). Prints the wall time, the CPU seconds of this (saving) process and of the
reading worker processes, the CPU seconds the whole machine was busy meanwhile (other people's work
included), the files saved per quarter and the peak RSS of this process.

Reading and saving are CPU-bound: wall time is about (worker CPU + saving CPU) / cores on an idle machine,
so a change to either shows in its own CPU seconds even on a busy machine. Benchmark figures, not tests.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from datafactory_pipelines import pipeline
from datafactory_pipelines.store import open_store

WORKER_CPU: list[float] = []


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _MeasuredPool(ProcessPoolExecutor):
    """The import's worker pool, noting each worker's CPU seconds before it is shut down."""

    def shutdown(self, *args, **kwargs) -> None:
        for pid in list(self._processes or {}):
            with contextlib.suppress(OSError):  # a worker already gone
                WORKER_CPU.append(_process_cpu(pid))
        super().shutdown(*args, **kwargs)


def _machine_busy() -> float:
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gen_dir", type=Path)
    parser.add_argument("--files", type=int, default=None, help="the first N files (default: all but the last)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the store (default: a temporary one)")
    args = parser.parse_args()
    files = sorted(p for p in (args.gen_dir / "files").glob("leads_*.csv") if not p.name.endswith(".rows.csv"))
    files = files[:args.files] if args.files else files[:-1]
    work = args.work or Path(tempfile.mkdtemp(prefix="bulk_save_"))
    shutil.rmtree(work / "home", ignore_errors=True)
    store = open_store(work / "home" / "leads.duckdb")
    # only to read the workers' CPU time: the pool lives in import_pool since it left pipeline.py (the
    # benchmark runs older trees too, with PYTHONPATH pointing at them)
    pool_module = pipeline if hasattr(pipeline, "ProcessPoolExecutor") else importlib.import_module(
        "datafactory_pipelines.import_pool")
    pool_module.ProcessPoolExecutor = _MeasuredPool
    busy, cpu, started = _machine_busy(), time.process_time(), time.perf_counter()
    saved: list[float] = []
    with store.exclusive("bulk save benchmark"):
        for outcome in pipeline.import_files(store, files, imported_by="benchmark"):
            assert outcome.status == "imported", outcome
            saved.append(time.perf_counter() - started)
    wall = time.perf_counter() - started
    quarters = [round(saved[max(0, len(saved) * q // 4 - 1)], 1) for q in (1, 2, 3, 4)]
    print(f"{len(files)} files, {store.counts()['records']} records: {wall:.1f} s wall; "
          f"CPU s: saving process {time.process_time() - cpu:.1f}, workers {sum(WORKER_CPU):.1f}, "
          f"whole machine {_machine_busy() - busy:.1f}; saved by quarter at {quarters} s; "
          f"peak RSS {pipeline.peak_rss_gb():.2f} GB")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
