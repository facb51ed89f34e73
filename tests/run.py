"""The whole suite in shards of about equal time, side by side (tests/shards.py deals the tests out).

    python -m tests.run [--shards N] [pytest options]      # N: default DATAFACTORY_TEST_SHARDS, else 3
    pytest --shard 2/3 [pytest options]                    # one shard alone, as tests/run.py runs it

Each shard is a plain pytest run that starts its own PostgreSQL when it holds PostgreSQL tests. Much of a
test's time is spent waiting on servers and `datafactory` subprocesses, so three shards overlap well on two
cores (the PostgreSQL tests used about a third of a core's time over their wall time). Each line a shard prints comes out whole, prefixed with its shard ("[2/3] "); the exit code is the
worst of the shards'. `--junitxml=PATH` gives each shard its own file, PATH with "-K" before the suffix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def shard_args(args: list[str], shard: int) -> list[str]:
    """The pytest options of one shard: a --junitxml file of its own."""
    out = []
    for arg in args:
        if arg.startswith("--junitxml="):
            path = Path(arg.split("=", 1)[1])
            arg = f"--junitxml={path.with_name(f'{path.stem}-{shard}{path.suffix}')}"
        out.append(arg)
    return out


def _relay(process: subprocess.Popen, prefix: str, lock: threading.Lock, last: list) -> None:
    """The shard's lines, prefixed, as they come; `last`: its last line (pytest's summary) and when it ended."""
    summary = ""
    for line in process.stdout:
        with lock:
            sys.stdout.write(prefix + line)
            sys.stdout.flush()
        summary = line.strip() or summary
    last[:] = [summary, time.monotonic()]


def main(argv: list[str]) -> int:
    shards = int(os.environ.get("DATAFACTORY_TEST_SHARDS", "3"))
    if argv[:1] == ["--shards"]:
        shards, argv = int(argv[1]), argv[2:]
    elif argv[:1] and argv[0].startswith("--shards="):
        shards, argv = int(argv[0].split("=", 1)[1]), argv[1:]
    lock = threading.Lock()
    began = time.monotonic()
    running = []
    for shard in range(1, shards + 1):
        process = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                    f"--shard={shard}/{shards}", *shard_args(argv, shard)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        last: list = []
        relay = threading.Thread(target=_relay, args=(process, f"[{shard}/{shards}] ", lock, last), daemon=True)
        relay.start()
        running.append((shard, process, relay, last))
    codes = {}
    for shard, process, relay, last in running:
        codes[shard] = process.wait()
        relay.join()
        summary, ended = last
        print(f"tests/run.py: shard {shard}/{shards}: {'passed' if codes[shard] == 0 else f'exit {codes[shard]}'}"
              f" ({summary}; ended {ended - began:.0f} s after the start)", flush=True)
    print(f"tests/run.py: {shards} shards in {time.monotonic() - began:.0f} s", flush=True)
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
