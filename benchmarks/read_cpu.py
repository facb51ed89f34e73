"""CPU seconds to read and standardize 10k-row CSV files, code trees side by side (user + sys of the process).

    python benchmarks/read_cpu.py GEN_DIR TREE [TREE …] [--rounds 2] [--files 24] [--cold]

Each round runs every TREE (a checkout, put first on PYTHONPATH) in a process of its own over the same files
(GEN_DIR/files/leads_NNN.csv from the 70th on), trees alternated, and prints per tree the median CPU per file
of `read_file` and `standardize_import` and the change against the first tree. A shared machine inflates CPU
seconds less than wall time, but still: compare trees measured back to back. `--cold` forgets, before each
file, what the process learned from the files before (the company entities a bulk import's worker keeps),
as a single-file import meets it.

For a figure no other load moves, count instructions instead (valgrind; see benchmarks/README.md).
Benchmark figures, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, sys, time
from datafactory_pipelines.ingest import read_file
from datafactory_pipelines.pipeline import standardize_import
try:
    from datafactory_pipelines.standardize import company_entity
except ImportError:  # trees before the golden company
    company_entity = None
cold, files = sys.argv[1] == "cold", sys.argv[2:]
standardize_import(read_file(files[0], pinned={}))  # imports and first-use caches out of the figures
out = []
for f in files[1:]:
    if cold and hasattr(company_entity, "_KNOWN"):
        company_entity._KNOWN.clear()
    started = time.process_time()
    raw = read_file(f, pinned={})
    read = time.process_time()
    standardize_import(raw)
    out.append((read - started, time.process_time() - read))
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gen_dir", type=Path)
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    files = sorted(p for p in (args.gen_dir / "files").glob("leads_*.csv") if not p.name.endswith(".rows.csv"))
    files = [str(f) for f in files[69:70 + args.files]]  # the first one warms up
    times: dict[Path, list[tuple[float, float]]] = {t: [] for t in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            # -P: not the working directory first on the path (run from a checkout, it would win over TREE)
            done = subprocess.run([sys.executable, "-P", "-c", CHILD, "cold" if args.cold else "warm", *files], env=env,
                                  capture_output=True, text=True, check=True)
            times[tree] += json.loads(done.stdout)
    first = None
    for tree, pairs in times.items():
        total = statistics.median(r + s for r, s in pairs)
        first = first or total
        print(f"{tree}: read {statistics.median(r for r, _ in pairs) * 1000:.0f} ms, standardize "
              f"{statistics.median(s for _, s in pairs) * 1000:.0f} ms, both {total * 1000:.0f} ms per file "
              f"(median of {len(pairs)}; min {min(r + s for r, s in pairs) * 1000:.0f} ms), {total / first - 1:+.1%}")


if __name__ == "__main__":
    main()
