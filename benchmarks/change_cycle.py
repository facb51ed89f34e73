"""One file imported into a big store and undone again, N times: what each costs, in wall time and in CPU.

    python benchmarks/change_cycle.py HOME FILE [--rounds N] [--db-url URL] [--server-pid PID]

HOME is a datafactory home whose store already holds a big base (e.g. the work folder `benchmarks/scale.py
--work DIR` leaves: DIR/home), FILE one more lead file. Each round runs the real `datafactory import FILE`
and then `datafactory restore --undo-import ID --yes`, each in its own process, and prints per step: wall
time, the command's own CPU (user + sys, from wait4) and, with `--server-pid` (the PostgreSQL postmaster's
pid: `head -1 PGDATA/postmaster.pid`), the server's CPU over the step (its processes' user + sys from /proc,
exited backends through the postmaster's children times). On a shared machine CPU moves far less with the
load than wall time does, so two versions of the code can be compared on one store, round by round.

An undo leaves the store as if the import never happened, so every round starts from the same leads (the
history and the tables' dead rows grow by one round's worth each time).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu(postmaster: int) -> float:
    """CPU seconds of a PostgreSQL server: its live processes, and its exited backends (reaped by the
    postmaster, so in its children's times)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
            if pid == postmaster:
                total += (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime
    return total


def step(args: list[str], env: dict, postmaster: int | None) -> dict:
    command = [str(Path(sys.executable).with_name("datafactory")), *args]
    before = server_cpu(postmaster) if postmaster else 0.0
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{out[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "server": (server_cpu(postmaster) - before) if postmaster else None, "out": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("file", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db-url", help="the store's PostgreSQL URL (else the home's DuckDB file)")
    parser.add_argument("--server-pid", type=int, help="the PostgreSQL postmaster's pid, to count its CPU")
    args = parser.parse_args()
    env = {**os.environ, "DATAFACTORY_HOME": str(args.home)}
    env.pop("DATAFACTORY_DB_URL", None)
    if args.db_url:
        env["DATAFACTORY_DB_URL"] = args.db_url
    print("| round | step | wall | own CPU | server CPU | phases |")
    print("|---|---|---|---|---|---|")
    for round_ in range(1, args.rounds + 1):
        imported = step(["import", str(args.file), "--by", "bench"], env, args.server_pid)
        found = re.findall(r"imported \d+ rows as (\S+)", imported["out"])
        if not found:
            raise SystemExit(f"no import id in the output:\n{imported['out'][-2000:]}")
        undone = step(["restore", "--undo-import", found[-1], "--by", "bench", "--yes"], env, args.server_pid)
        for name, result in (("import", imported), ("undo", undone)):
            phases = re.findall(r"phases: ([^\n]*)", result["out"])
            server = "" if result["server"] is None else f"{result['server']:.1f} s"
            print(f"| {round_} | {name} | {result['wall']:.1f} s | {result['cpu']:.1f} s | {server} | "
                  f"{phases[-1] if phases else ''} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
