"""The dagster.yaml datafactory writes into DAGSTER_HOME: one function, every writer calls it.

Without PostgreSQL settings Dagster keeps its runs, event logs and schedules in SQLite under DAGSTER_HOME.
With `DAGSTER_PG_URL` (or DAGSTER_PG_HOST, _USER, _DB and optionally _PASSWORD, _PORT) they go to
PostgreSQL through dagster-postgres, and the QueuedRunCoordinator lets DATAFACTORY_MAX_RUNS runs (default 4)
go at once. While the lead store is a DuckDB file (a single writer), runs tagged `datafactory/lead_store` go
one at a time; with the lead store on PostgreSQL (DATAFACTORY_DB_URL) that limit is not written: those runs
overlap, and take turns only on the store's writer lock for the part of a change that writes.

The file names the environment variables (`{env: …}`), never their values: no password is written to disk,
and Dagster reads the variables in every process that loads the instance (daemon, webserver, run workers).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from pathlib import Path

logger = logging.getLogger(__name__)

MARKER = "# Written by datafactory."
DEFAULT_MAX_RUNS = 4
PSYCOPG2_SCHEME = "postgresql+psycopg2"
# the postgres_db form of dagster-postgres: (config key, variable, required)
PG_PARTS = (("username", "DAGSTER_PG_USER", True), ("password", "DAGSTER_PG_PASSWORD", False),
            ("hostname", "DAGSTER_PG_HOST", True), ("db_name", "DAGSTER_PG_DB", True),
            ("port", "DAGSTER_PG_PORT", False))

_LEAD_STORE_LIMIT = """\
concurrency:
  runs:
{max_runs}    tag_concurrency_limits:
      - key: "datafactory/lead_store"
        limit: 1
telemetry:
  enabled: false
"""
_NO_LEAD_STORE_LIMIT = """\
concurrency:
  runs:
{max_runs}telemetry:
  enabled: false
"""


def lead_store_on_postgres(env: Mapping[str, str]) -> bool:
    return env.get("DATAFACTORY_DB_URL", "").startswith(("postgresql://", "postgres://"))


class DagsterConfigError(ValueError):
    """The PostgreSQL variables are set but incomplete or wrong; the message names the variables."""


def uses_postgres(env: Mapping[str, str]) -> bool:
    return bool(env.get("DAGSTER_PG_URL") or env.get("DAGSTER_PG_HOST"))


def max_runs(env: Mapping[str, str]) -> int:
    text = env.get("DATAFACTORY_MAX_RUNS", "").strip()
    if not text:
        return DEFAULT_MAX_RUNS
    if not text.isdigit() or int(text) < 1:
        raise DagsterConfigError(f"DATAFACTORY_MAX_RUNS must be a whole number of at least 1, not {text!r}")
    return int(text)


def _storage(env: Mapping[str, str]) -> str:
    if env.get("DAGSTER_PG_URL"):
        return "storage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"
    missing = [var for _, var, required in PG_PARTS if required and not env.get(var)]
    if missing:
        raise DagsterConfigError(f"DAGSTER_PG_HOST is set but not {', '.join(missing)}: set them too, "
                                 "or set DAGSTER_PG_URL=postgresql://user:password@host:port/database instead")
    if env.get("DAGSTER_PG_PORT") and not env["DAGSTER_PG_PORT"].strip().isdigit():
        raise DagsterConfigError(f"DAGSTER_PG_PORT must be a port number, not {env['DAGSTER_PG_PORT']!r}")
    lines = "".join(f"      {key}:\n        env: {var}\n" for key, var, required in PG_PARTS
                    if required or env.get(var))
    return f"storage:\n  postgres:\n    postgres_db:\n{lines}      scheme: {PSYCOPG2_SCHEME}\n"


def dagster_pg_url(url: str) -> str:
    """The URL with the psycopg2 driver named: SQLAlchemy 2.1 opens a bare postgresql:// with psycopg 3,
    which dagster-postgres 0.29 does not work with (its `NOTIFY run_events, %(id)s` is refused)."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return PSYCOPG2_SCHEME + "://" + url[len(bare):]
    return url


def use_psycopg2(environ: MutableMapping[str, str]) -> None:
    """Name the driver in DAGSTER_PG_URL for this process and the Dagster processes it starts."""
    if environ.get("DAGSTER_PG_URL"):
        environ["DAGSTER_PG_URL"] = dagster_pg_url(environ["DAGSTER_PG_URL"])


def dagster_yaml(env: Mapping[str, str]) -> str:
    """The dagster.yaml for these environment variables (see the module's docstring)."""
    if not uses_postgres(env):
        # byte for byte what datafactory wrote before PostgreSQL: existing homes are not rewritten
        return (f"{MARKER} Runs that write the lead store (tag datafactory/lead_store) go one at a\n"
                "# time: a DuckDB file has a single writer.\n" + _LEAD_STORE_LIMIT.format(max_runs=""))
    runs = max_runs(env)
    if lead_store_on_postgres(env):
        why = (". The lead store is on\n# PostgreSQL too: its runs overlap and take turns on the store's writer "
               "lock only to write.\n")
        limit = _NO_LEAD_STORE_LIMIT
    else:
        why = (", but runs that write the lead\n# store (tag datafactory/lead_store) go one at a time: a DuckDB "
               "file has a single writer.\n")
        limit = _LEAD_STORE_LIMIT
    return (f"{MARKER} Dagster's runs, event logs and schedules are in PostgreSQL (dagster-postgres);\n"
            f"# the run queue lets {runs} runs go at once (DATAFACTORY_MAX_RUNS){why}"
            + _storage(env)
            + "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n"
            + limit.format(max_runs=f"    max_concurrent_runs: {runs}\n"))


def write_dagster_yaml(home: Path, env: Mapping[str, str]) -> Path:
    """Write home/dagster.yaml unless it already says the same; leave a hand-written one alone, warning."""
    config = home / "dagster.yaml"
    wanted = dagster_yaml(env)
    if config.exists():
        current = config.read_text(encoding="utf-8")
        if current == wanted:
            return config
        if not current.startswith(MARKER):
            logger.warning("%s was not written by datafactory: left as it is (Dagster storage %s asked for). "
                           "Delete it to let datafactory write its own.", config,
                           "PostgreSQL" if uses_postgres(env) else "SQLite")
            return config
        logger.info("rewriting %s: Dagster storage is now %s", config,
                    "PostgreSQL" if uses_postgres(env) else "SQLite")
    config.write_text(wanted, encoding="utf-8")
    return config
