"""What a change costs, measured as an operator meets it: the real `datafactory` command in a subprocess.

    python benchmarks/scale.py GEN_DIR [--work DIR] [--db-url postgresql://ADMIN_URL]

GEN_DIR is a generated lead set split into CSV files (the yardstick's
`gen_leads.py --files K --file-format csv` output: GEN_DIR/files/leads_NNN.csv). All files but the
last are the base; the last one is the change. Steps, each one `datafactory` call, wall time and
peak RSS of that process (os.wait4):

1. `import` of the base files into an empty store (one call);
2. `import` of the last file;
3. `lead set` of one field on a lead that file touched;
4. `restore --undo-import` of that file;
5. the same file dropped in the inbox of that (undone) store: the inbox sensor evaluated once against a real
   on-disk Dagster instance (DAGSTER_HOME in the work folder), then the `import_lead_file` run it requests
   executed by the `dagster` CLI in its own process; the figure is the run's start to success from the
   instance's run stats (the process's wall time, with Python and the code location loading, beside it),
   and the phase timings the run logged are printed under the table.

With `--db-url` (a PostgreSQL server's admin URL, e.g. from `benchmarks/pg_server.py`) the store is a fresh
database made on that server for the run (dropped after it unless `--work` is given), and every step runs with
DATAFACTORY_DB_URL pointing at it.

Prints a Markdown table. Benchmark figures, not tests: run one at a time on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import yaml

from datafactory_pipelines.dagster_config import use_psycopg2, write_dagster_yaml

TARGETS = {"import base": "≤ 60 s, ≤ 4 GB", "import 1 file": "≤ 5 s, ≤ 1.5 GB", "lead set": "≤ 1 s",
           "undo import": "≤ 10 s", "inbox sensor tick": "", "dagster run (start to success)": "≤ 15 s"}
HERE = Path(__file__).resolve().parent


def datafactory() -> list[str]:
    script = Path(sys.executable).with_name("datafactory")
    return [str(script)] if script.exists() else [sys.executable, "-m", "datafactory_pipelines.cli"]


def run(step: str, args: list[str], log: Path, command: list[str] | None = None, env: dict | None = None) -> dict:
    """Run one datafactory command (or `command`); its wall time and peak RSS (the child's own, from wait4)."""
    command = command or datafactory()
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {Path(command[-1]).name} {' '.join(args[:6])}{' …' if len(args) > 6 else ''}\n")
        out.flush()
        child = subprocess.Popen([*command, *args], stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8").rsplit("\n$ ", 1)[-1]
    path = re.findall(r"\((incremental|full|bulk) path: ([^;]*);", text)
    return {"step": step, "seconds": wall, "peak_gb": usage.ru_maxrss / 1024 / 1024, "exit": code,
            "path": f"{path[-1][0]} ({path[-1][1]})" if path else ""}


def dagster_step(work: Path, home: Path, change: Path, log: Path) -> tuple[list[dict], list[str]]:
    """The change file dropped in the inbox, one sensor tick, and the run it asks for, on a real instance."""
    dagster_home = work / "dagster_home"
    shutil.rmtree(dagster_home, ignore_errors=True)
    dagster_home.mkdir(parents=True)
    use_psycopg2(os.environ)
    write_dagster_yaml(dagster_home, os.environ)  # PostgreSQL when DAGSTER_PG_URL is set
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DATAFACTORY_HOME": str(home),
           "DATAFACTORY_INBOX_SETTLE_SECONDS": "0", "DAGSTER_DISABLE_TELEMETRY": "1"}
    shutil.copy(change, home / "inbox" / change.name)
    helper = [sys.executable, str(HERE / "scale_dagster.py")]
    request_file = work / "run_request.json"
    tick = run("inbox sensor tick", ["sensor", str(request_file)], log, command=helper, env=env)
    if tick["exit"] != 0:
        return [tick], []
    request = json.loads(request_file.read_text(encoding="utf-8"))["requests"][0]
    config = work / "run_config.yaml"
    config.write_text(yaml.safe_dump(request["run_config"], allow_unicode=True), encoding="utf-8")
    mark = uuid.uuid4().hex
    dagster = str(Path(sys.executable).with_name("dagster"))
    execute = run("dagster run (start to success)",
                  ["job", "execute", "-m", "datafactory_pipelines.definitions", "-j", request["job"], "-c", str(config),
                   "--tags", json.dumps({**request["tags"], "datafactory/benchmark": mark})],
                  log, command=[dagster], env=env)
    stats = json.loads(subprocess.run([*helper, "stats", mark], capture_output=True, text=True, env=env,
                                      check=False).stdout or '{"status": "missing"}')
    if stats.get("start") and stats.get("end"):
        execute["path"] = f"run {stats['status']}; the `dagster job execute` process took {execute['seconds']:.1f} s"
        execute["seconds"] = stats["end"] - stats["start"]
    else:
        execute["exit"] = execute["exit"] or 1
        execute["path"] = f"run {stats.get('status')}"
    return [tick, execute], stats.get("phase_log", [])


def fresh_database(admin_url: str) -> str:
    """A new, empty database on the server of `admin_url` (a postgresql:// URL); its URL."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"datafactory_scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


#: what the steps after the imports need from the store: its size, the last import, a lead it touched
LAST_IMPORT = ("SELECT import_id, rows_read FROM imports ORDER BY imported_at DESC LIMIT 1",
               "SELECT lead_id FROM records WHERE import_id = {p} AND lead_id IS NOT NULL ORDER BY record_id LIMIT 1")


def store_facts(home: Path, db_url: str | None) -> tuple[int, str, int, str]:
    if db_url:
        import psycopg

        con = psycopg.connect(db_url)
        mark = "%s"
    else:
        con = duckdb.connect(str(home / "leads.duckdb"), read_only=True)
        mark = "?"
    try:
        records = con.execute("SELECT count(*) FROM records").fetchall()[0][0]
        import_id, rows = con.execute(LAST_IMPORT[0]).fetchall()[0]
        lead = con.execute(LAST_IMPORT[1].format(p=mark), [import_id]).fetchall()[0][0]
    finally:
        con.close()
    return records, import_id, rows, lead


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gen_dir", type=Path)
    parser.add_argument("--work", type=Path, help="where the store goes (default: a temporary folder, removed)")
    parser.add_argument("--db-url", help="a PostgreSQL admin URL: the store goes into a fresh database there")
    args = parser.parse_args(argv)
    files = sorted(p for p in (args.gen_dir / "files").glob("leads_*.csv") if not p.name.endswith(".rows.csv"))
    if len(files) < 2:
        parser.error(f"{args.gen_dir}/files holds {len(files)} lead files; need a base and one more")
    work = args.work or Path(tempfile.mkdtemp(prefix="datafactory-scale-"))
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log = work / "scale.log"
    log.write_text("", encoding="utf-8")
    base, change = files[:-1], files[-1]
    env_home = ["--home", str(home)]
    db_url = fresh_database(args.db_url) if args.db_url else None
    if db_url:
        os.environ["DATAFACTORY_DB_URL"] = db_url  # every datafactory call (and the Dagster run) uses it
    results = [run("import base", [*env_home, "import", *map(str, base), "--by", "bench"], log)]
    results.append(run("import 1 file", [*env_home, "import", str(change), "--by", "bench"], log))
    records, import_id, rows, lead = store_facts(home, db_url)
    results.append(run("lead set", [*env_home, "lead", "set", lead, "title=基准测试", "--by", "bench"], log))
    results.append(run("undo import", [*env_home, "restore", "--undo-import", import_id, "--by", "bench", "--yes"],
                       log))
    dagster_rows, phase_log = dagster_step(work, home, change, log)
    results += dagster_rows

    where = f"PostgreSQL database {db_url.rsplit('/', 1)[-1]}" if db_url else "DuckDB"
    print(f"\n{where}: {len(base)} base files + 1 ({rows} rows); {records} records in the store; log: {log}\n")
    print("| step | wall | peak RSS | target | path taken |")
    print("|---|---|---|---|---|")
    for r in results:
        failed = "" if r["exit"] == 0 else f" (exit {r['exit']})"
        print(f"| {r['step']}{failed} | {r['seconds']:.1f} s | {r['peak_gb']:.2f} GB | {TARGETS[r['step']]} | "
              f"{r['path']} |")
    if phase_log:
        print("\nthe Dagster run's log:")
        for line in phase_log:
            print(f"  {line}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
        if db_url:
            drop_database(args.db_url, db_url)
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
