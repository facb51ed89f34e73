"""A throwaway PostgreSQL 15 server for the benchmarks, with the settings they were measured with.

    python benchmarks/pg_server.py [--log-slow MS]

Starts a server in a temporary folder (tests/postgres_server.py: initdb, trust auth, 127.0.0.1 only),
prints its admin URL and its log file, and runs until interrupted (Ctrl-C or SIGTERM), then removes it.
Give the URL to `benchmarks/scale.py --db-url URL`. `--log-slow MS` logs every statement slower than MS
milliseconds with its duration (`log_min_duration_statement`), for profiling the store's SQL.

The settings (BENCHMARK_SETTINGS) are a modest dedicated server's on this 2-core machine: a few GB of
shared buffers and sort memory, checkpoints spaced out for bulk loads, no JIT (it adds 100s of ms to the
change path's short queries for nothing), SSD page costs, a busier background writer. Durability is
PostgreSQL's default (fsync and synchronous commit on), as DuckDB's store is durable. docs/production.md has
the production ones.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.postgres_server import postgres_server  # noqa: E402

BENCHMARK_SETTINGS = {
    "shared_buffers": "2GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "temp_buffers": "256MB",
    "effective_cache_size": "8GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_compression": "on",
    "random_page_cost": "1.1",
    "jit": "off",
    # the background writer cleans a bulk load's dirty buffers, so the next change does not evict them itself
    "bgwriter_delay": "20ms",
    "bgwriter_lru_maxpages": "1000",
    "bgwriter_lru_multiplier": "4",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-slow", type=int, metavar="MS", help="log statements slower than MS milliseconds")
    args = parser.parse_args()
    settings = dict(BENCHMARK_SETTINGS)
    if args.log_slow is not None:
        settings["log_min_duration_statement"] = str(args.log_slow)
    stop = threading.Event()
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, lambda *_: stop.set())
    with postgres_server(settings) as url:
        import psycopg

        with psycopg.connect(url) as con:
            data = con.execute("SHOW data_directory").fetchone()[0]
        print(url, flush=True)
        print(f"log: {Path(data).parent / 'log'}", flush=True)
        while not stop.wait(1):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
