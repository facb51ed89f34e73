"""A single-cell zip bomb against the reader, under an address-space cap.

    python benchmarks/zip_bomb.py [--cell-mb 2048] [--cap-gb 6]

Builds a valid .xlsx whose one shared string is --cell-mb MB of one letter (a few MB on disk), then
reads it with `read_file` in a child process limited to --cap-gb GB of address space, and prints how
the read ended (refused with a reason, read, or killed), its wall time and the child's peak RSS.
Before the zip check (ingest/safety.py) the 2 GB bomb ended in a Rust out-of-memory abort.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile import write_cell_bomb  # noqa: E402

CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from datafactory_pipelines.ingest import IngestError, read_file
try:
    print("read", read_file(sys.argv[1]).rows_read, "rows")
except IngestError as err:
    print("refused:", err.reason)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cell-mb", type=int, default=2048)
    parser.add_argument("--cap-gb", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bomb = write_cell_bomb(Path(folder) / "bomb.xlsx", args.cell_mb << 20)
        print(f"bomb: one cell of {args.cell_mb:,} MB, {bomb.stat().st_size / (1 << 20):.1f} MB on disk")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD.format(cap=int(args.cap_gb * (1 << 30))), str(bomb)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ending = done.stdout.strip() or f"killed (exit {done.returncode}): {done.stderr.strip().splitlines()[:1]}"
    print(f"{ending}\nwall {wall:.1f} s, peak RSS {peak:,.0f} MB (cap {args.cap_gb} GB)")


if __name__ == "__main__":
    main()
