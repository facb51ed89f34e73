"""The whole suite in two processes side by side: the tests that need PostgreSQL, and the rest.

    python -m tests.run [pytest options]

Most of a PostgreSQL test's time is spent waiting on the server and on `datafactory` subprocesses, so the two
halves overlap well on two cores (one `pytest -q` runs them one after the other). Each half is a plain pytest
run (`-m postgres` / `-m "not postgres"`); the exit code is the worse of the two.
"""

from __future__ import annotations

import subprocess
import sys


def main(args: list[str]) -> int:
    halves = {"postgres": ["-m", "postgres"], "the rest": ["-m", "not postgres"]}
    running = {name: subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                       *marks, *args]) for name, marks in halves.items()}
    codes = {name: process.wait() for name, process in running.items()}
    for name, code in codes.items():
        print(f"tests/run.py: {name}: {'passed' if code == 0 else f'exit {code}'}", flush=True)
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
