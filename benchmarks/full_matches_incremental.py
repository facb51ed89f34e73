"""Does a full relink with the same model change anything the incremental path decided? At any size.

    python benchmarks/full_matches_incremental.py STORE [--work DIR]

STORE is a lead store (`leads.duckdb`, or a PostgreSQL store's URL, postgresql://…) whose last change went the
incremental way, e.g. the 1M base
imported in one call and then one more 10k-row file (`datafactory import`). The store is copied; the copy
(a PostgreSQL database: a new database made from it as
a template, dropped after; nothing may be connected to it meanwhile) gets `relink_and_curate(full=True)` (the nightly job: every record linked and curated again, the same
model, no retraining), and the two are compared: records whose lead changed, leads whose stored row
changed, leads made or retired, shared contacts, open conflicts, and the history rows the full pass wrote.
Everything zero is "incremental == full". Exit status 1 otherwise. A benchmark, not a test: at 1M the
full pass takes about 40 s and 3.5 GB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb

from datafactory_pipelines.pipeline import relink_and_curate
from datafactory_pipelines.store import is_database_url, open_store

RECORDS = "records' leads"
#: what each comparison reads: a key and a fingerprint of everything else, per row
SNAPSHOTS = {
    RECORDS: "SELECT record_id AS key, lead_id AS print FROM records WHERE retired_by IS NULL",
    "leads": "SELECT lead_id AS key, md5(CAST(l AS VARCHAR)) AS print FROM leads l",
    "shared contacts": "SELECT kind || ':' || value AS key, md5(CAST(s AS VARCHAR)) AS print FROM shared_contacts s",
    "open conflicts": "SELECT lead_id || ':' || field || ':' || kind || ':' || coalesce(incoming_value, '') AS key, "
                      "coalesce(current_value, '') AS print FROM conflicts WHERE status = 'open'",
}


def snapshot(path: Path | str) -> dict[str, dict]:
    if is_database_url(path):
        import psycopg

        con = psycopg.connect(str(path))
    else:
        con = duckdb.connect(str(path), read_only=True)
    try:
        taken = {name: dict(con.execute(sql).fetchall()) for name, sql in SNAPSHOTS.items()}
        taken["history rows"] = con.execute("SELECT count(*) FROM history").fetchall()[0][0]
        return taken
    finally:
        con.close()


def differences(before: dict[str, dict], after: dict[str, dict]) -> dict[str, int]:
    out = {}
    for name in SNAPSHOTS:
        a, b = before[name], after[name]
        out[name] = len(a.keys() ^ b.keys()) + sum(a[k] != b[k] for k in a.keys() & b.keys())
    out["history rows written by the full pass"] = after["history rows"] - before["history rows"]
    return out


@contextmanager
def copy_of(store: str, work: Path) -> Iterator[Path | str]:
    """A copy of the store for the full pass: a file copied, or a database made from it as a template."""
    if not is_database_url(store):
        copy = work / "leads.duckdb"
        shutil.copyfile(store, copy)
        yield copy
        return
    import psycopg

    source = urlsplit(store)
    name = f"{source.path.lstrip('/')}_full_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(source._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source.path.lstrip("/")}"')
    try:
        yield urlunsplit(source._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", help="a leads.duckdb file or a postgresql:// URL (left untouched)")
    parser.add_argument("--work", type=Path, help="folder for the copy (default: a temporary one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="full-vs-incremental-", dir=args.work))
    try:
        with copy_of(args.store, work) as copy:
            before = snapshot(copy)
            started = time.perf_counter()
            store = open_store(copy, side_dir=work / "side")
            outcome = relink_and_curate(store, full=True, actor="benchmark", cause="full relink check")
            seconds = time.perf_counter() - started
            if hasattr(store, "close"):  # a PostgreSQL store's pooled sessions, before its database is dropped
                store.close()
            after = snapshot(copy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = differences(before, after)
    changes = outcome.changes
    print(f"full relink of {len(before[RECORDS]):,} records, {len(before['leads']):,} leads "
          f"({outcome.path} path: {outcome.reason}) in {seconds:.1f}s")
    print(f"  leads it says it made {changes.created}, changed {changes.updated}, merged {changes.merged}")
    for name, count in found.items():
        print(f"  {name}: {count}" if name.startswith("history") else f"  {name} differing: {count}")
    return 0 if not any(found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
