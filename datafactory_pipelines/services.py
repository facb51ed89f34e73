"""`datafactory run-services`: the unattended deployment in one command, supervised.

Starts, as child processes with one environment (DATAFACTORY_HOME, DAGSTER_HOME with its dagster.yaml
written by datafactory, PYTHONPATH as given):
- `serve`: `datafactory serve --dispatch` (POST /events, tracking links, and the notification dispatcher);
- `daemon`: `dagster-daemon run -m datafactory_pipelines.definitions` (sensors, schedules, the run queue);
- `webserver`: `dagster-webserver -m datafactory_pipelines.definitions` (the Dagster UI).
A child that ends (crashed, killed) is started again after a back-off (1 s, doubling to 30 s while it
keeps dying within a minute of its start). SIGTERM or SIGINT stops every child (SIGTERM, then SIGKILL
after STOP_SECONDS) and then the supervisor. Each child's pid is written to
$DATAFACTORY_HOME/services/<name>.pid and its output appended to $DATAFACTORY_HOME/services/<name>.log.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SERVICES = ("serve", "daemon", "webserver")
DEFINITIONS_MODULE = "datafactory_pipelines.definitions"
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a child that lived this long starts again after the first back-off
STOP_SECONDS = 20.0


def _tool(name: str) -> str:
    """A console script of this Python's environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def service_commands(host: str, port: int, ui_host: str, ui_port: int) -> dict[str, list[str]]:
    return {
        "serve": [sys.executable, "-m", "datafactory_pipelines.cli", "serve", "--dispatch",
                  "--host", host, "--port", str(port)],
        "daemon": [_tool("dagster-daemon"), "run", "-m", DEFINITIONS_MODULE],
        "webserver": [_tool("dagster-webserver"), "-m", DEFINITIONS_MODULE, "-h", ui_host, "-p", str(ui_port)],
    }


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    restart_at: float = 0.0
    starts: int = 0
    exits: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(self, commands: dict[str, list[str]], env: dict[str, str], folder: Path,
                 say: Callable[[str], None] = print) -> None:
        self.children = [Child(name, command) for name, command in commands.items()]
        self.env = env
        self.folder = folder
        self.say = say
        self.stopping = threading.Event()
        folder.mkdir(parents=True, exist_ok=True)

    def _start(self, child: Child) -> None:
        with (self.folder / f"{child.name}.log").open("ab") as out:
            child.process = subprocess.Popen(child.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        child.started_at = time.monotonic()
        child.starts += 1
        (self.folder / f"{child.name}.pid").write_text(str(child.process.pid), encoding="utf-8")
        self.say(f"{child.name}: started (pid {child.process.pid}): {' '.join(child.command)}")

    def run(self, poll_seconds: float = 0.2) -> int:
        for child in self.children:
            self._start(child)
        while not self.stopping.is_set():
            now = time.monotonic()
            for child in self.children:
                if child.process is not None:
                    code = child.process.poll()
                    if code is None:
                        continue
                    child.exits.append(code)
                    lived = now - child.started_at
                    child.backoff = FIRST_BACKOFF_SECONDS if lived >= STABLE_SECONDS else child.backoff
                    child.restart_at = now + child.backoff
                    self.say(f"{child.name}: ended with code {code} after {lived:.1f} s; "
                             f"starting again in {child.backoff:.0f} s")
                    child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
                    child.process = None
                elif now >= child.restart_at:
                    self._start(child)
            self.stopping.wait(poll_seconds)
        self._stop_all()
        return 0

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:  # each child's own group: dagster's code servers stop with it
            with _quietly():
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with _quietly():
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            self.say(f"{child.name}: stopped")
            with _quietly():
                (self.folder / f"{child.name}.pid").unlink()


class _quietly:
    """Signals to a process that has just ended are not an error."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, (ProcessLookupError, FileNotFoundError, PermissionError))


def services_env(home: Path, dagster_home: Path) -> dict[str, str]:
    """The one environment of every child: the data folder, Dagster's folder (its dagster.yaml is there)."""
    env = dict(os.environ)
    env["DATAFACTORY_HOME"] = str(home)
    env["DAGSTER_HOME"] = str(dagster_home)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
