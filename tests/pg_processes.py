"""`datafactory` processes on a PostgreSQL lead store: started, killed with SIGKILL, and what they left behind.

Helpers for the fault trials and the concurrency tests (tests/test_postgres_faults.py,
test_postgres_concurrency.py, test_read_contract.py, test_postgres_roles.py). Every store is its own database
on the session's real PostgreSQL (the `pg_admin_url` fixture); the tests read its tables with psycopg.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]


def new_database(admin_url: str, name: str, owner: str | None = None) -> str:
    """A fresh database on the test server; its URL (as the admin, or as `owner` when given)."""
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
    base = admin_url.rsplit("/", 1)[0]
    if owner:
        base = base.replace("postgres@", f"{owner}@", 1)
    return f"{base}/{name}"


@dataclass
class Home:
    """A DATAFACTORY_HOME whose lead store is the PostgreSQL database at `url`."""

    path: Path
    url: str
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {**os.environ, "DATAFACTORY_HOME": str(self.path), "DATAFACTORY_DB_URL": self.url,
               "DATAFACTORY_INBOX_SETTLE_SECONDS": "0", "DAGSTER_HOME": str(self.path / "dagster_home"),
               "PYTHONPATH": str(REPO), **self.extra}
        env.pop("DATAFACTORY_TEST_PG_ADMIN", None)
        return env

    def start(self, *args: str) -> subprocess.Popen:
        """`datafactory ARGS` in its own process group (killed whole, workers and all)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([sys.executable, "-m", "datafactory_pipelines.cli", *args], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        process = self.start(*args)
        out, err = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def kill_after(process: subprocess.Popen, delay: float) -> bool:
    """SIGKILL the process group after `delay` seconds; False if the command ended first."""
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return True
    process.communicate()
    return False


def sessions(url: str) -> set[int]:
    """The backend pids connected to the store's database now (other than this query's)."""
    name = url.rsplit("/", 1)[1]
    return {pid for (pid,) in rows(url, "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                        "pg_backend_pid()", [name])}


def wait_until_sessions_end(url: str, before: set[int], timeout: float = 300) -> None:
    """Wait until every session opened since `before` (the killed client's) is gone: its backends have
    noticed the client died and rolled back what it had not committed (a backend mid-statement notices
    only when the statement ends)."""
    deadline = time.monotonic() + timeout
    while True:
        left = sessions(url) - before
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(left)} session(s) of the killed process still open after {timeout}s")
        time.sleep(0.05)


def rows(url: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(sql, params).fetchall()


def scalar(url: str, sql: str, params: list | None = None):  # noqa: ANN201 - whatever the query gives
    return rows(url, sql, params)[0][0]


def history_verified(url: str) -> int:
    """The hash chain walked as `datafactory verify-history` walks it; the number of rows."""
    from datafactory_pipelines.history import verify_chain
    from datafactory_pipelines.store import open_store

    store = open_store(url, side_dir=Path(os.environ.get("TMPDIR", "/tmp")) / "pg-faults-side")
    check = verify_chain(store.history())
    store.close()
    assert check.ok, f"history chain broken at seq {check.first_bad_seq}: {check.reason}"
    return check.rows


def table_counts(url: str) -> dict[str, int]:
    """Every store table's row count (the whole store, for 'none of it' and 'all of it')."""
    from datafactory_pipelines.store.schema import TABLE_NAMES

    with psycopg.connect(url, autocommit=True) as con, con.transaction():
        con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLE_NAMES}


def history_head(url: str) -> tuple[int, str]:
    found = rows(url, "SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1")
    return found[0] if found else (0, "")


def store_digest(url: str) -> dict[str, str]:
    """Every store table's rows, hashed in a fixed order: two equal digests are the same store."""
    from datafactory_pipelines.store.schema import TABLE_NAMES

    with psycopg.connect(url, autocommit=True) as con, con.transaction():
        con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return {t: con.execute(f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                               f" FROM {t} AS t").fetchone()[0] for t in TABLE_NAMES}
