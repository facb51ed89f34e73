"""How fast the console finds a lead and shows its page, on a big store.

    python benchmarks/console_speed.py DATAFACTORY_HOME [--samples 30] [--build-index]

DATAFACTORY_HOME holds a lead store (leads.duckdb) made by `datafactory import` of a generated set, e.g. the
1M-record yardstick files (`datafactory import GEN_DIR/files/leads_*.csv`). For each kind of query (a name,
its pinyin, a mobile, an alternate mobile, an email, a company, a WeChat id) it takes `--samples` values from
the store's own records and times:

- `find`: the library search (`console.search.find_leads`: standardize the text, look each key up by equality);
- `page`: GET /console/search?q=… and GET /console/leads/<id> over HTTP from a `datafactory serve` started on a
  free loopback port, signed in as a throw-away operator (the whole round trip: sign-in cookie, query, HTML);
- the baseline: the same question asked as a scan, `name LIKE '%q%' OR company LIKE '%q%' OR …` over every
  lead, the search a console without keys would do.

With --build-index the search index (`leads.duckdb.search.duckdb`) is built first and its build timed (wall and
CPU); without it, the index beside the store is used as it is (the console builds one when it starts without).
Prints a Markdown table of median and 95th percentile in milliseconds. Benchmark figures, not tests.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datafactory_pipelines.console.search import find_leads  # noqa: E402
from datafactory_pipelines.console.users import UserBook  # noqa: E402
from datafactory_pipelines.store.duckdb import DuckDBLeadStore  # noqa: E402
from datafactory_pipelines.store.duckdb.held_open import HeldOpenStore  # noqa: E402
from tests.console_helpers import Client  # noqa: E402
from tests.event_helpers import free_port, request  # noqa: E402

KINDS = {  # kind -> SQL picking sample values from the records (the benchmark's own read of the file)
    "name": "SELECT name FROM records WHERE name <> '' AND lead_id IS NOT NULL",
    "pinyin": "SELECT name_pinyin FROM records WHERE name_pinyin <> '' AND lead_id IS NOT NULL",
    "mobile": "SELECT mobile FROM records WHERE mobile <> '' AND lead_id IS NOT NULL",
    "alternate mobile": "SELECT split_part(mobile_alternates, ';', 1) FROM leads WHERE mobile_alternates <> ''",
    "email": "SELECT email FROM records WHERE email <> '' AND lead_id IS NOT NULL",
    "company": "SELECT company FROM records WHERE company <> '' AND lead_id IS NOT NULL",
    "wechat": "SELECT wechat FROM records WHERE wechat <> '' AND lead_id IS NOT NULL",
}
SCAN = ("SELECT lead_id, name, mobile, email, company FROM leads WHERE name LIKE ? OR company LIKE ? OR mobile LIKE ? "
        "OR mobile_alternates LIKE ? OR email LIKE ? OR wechat LIKE ? LIMIT 50")


def _ms(times: list[float]) -> str:
    if not times:
        return "-"
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"{statistics.median(ordered) * 1000:.0f} / {p95 * 1000:.0f}"


def samples(store_path: Path, n: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    con = duckdb.connect(str(store_path), read_only=True)
    try:
        picked = {}
        for kind, sql in KINDS.items():
            values = [r[0] for r in con.execute(f"{sql} USING SAMPLE 2000 ROWS").fetchall() if r[0]]
            picked[kind] = rng.sample(values, min(n, len(values)))
        counts = con.execute("SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM leads)").fetchall()[0]
    finally:
        con.close()
    print(f"store {store_path}: {counts[0]:,} records, {counts[1]:,} leads")
    return picked


def time_scan(store: HeldOpenStore, values: list[str]) -> list[float]:
    con = store._connect()  # noqa: SLF001 - the same open database the console's reads use
    try:
        times = []
        for value in values:
            started = time.perf_counter()
            con.execute(SCAN, [f"%{value}%"] * 6).fetchall()
            times.append(time.perf_counter() - started)
        return times
    finally:
        con.close()


def serve(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATAFACTORY_HOME": str(home)}
    env.pop("DATAFACTORY_API_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "datafactory_pipelines.cli", "serve", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if request("GET", f"{base}/health").status == 200:
                return process, base
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--build-index", action="store_true", help="build the search index first, and time it")
    args = parser.parse_args()
    store_path = args.home / "leads.duckdb"
    if args.build_index:
        wall, cpu = time.perf_counter(), time.process_time()
        built = DuckDBLeadStore(store_path).build_search_index()
        print(f"search index built: {built['keys']:,} keys in {time.perf_counter() - wall:.1f} s "
              f"({time.process_time() - cpu:.1f} s CPU), {(args.home / 'leads.duckdb.search.duckdb').stat().st_size / 1e6:.0f} MB")
    picked = samples(store_path, args.samples, args.seed)
    store = HeldOpenStore(store_path)  # as the console opens it
    library: dict[str, tuple[int, list[float], list[str], list[float]]] = {}
    for kind, values in picked.items():
        find_times, found, lead_ids = [], 0, []
        for value in values:
            started = time.perf_counter()
            results = find_leads(store, value)
            find_times.append(time.perf_counter() - started)
            found += bool(results)
            if results:
                lead_ids.append(results[0]["lead_id"])
        library[kind] = (found, find_times, lead_ids, time_scan(store, values))
    store.release()
    time.sleep(1)
    book = UserBook(args.home)  # a throw-away account, removed at the end
    book.add("bench-operator", "operator", "bench password 123", replace=True)
    rows = []
    try:
        process, base = serve(args.home)
        client = Client(base)
        client.sign_in("bench-operator", "bench password 123")
        for kind, values in picked.items():
            found, find_times, lead_ids, scan = library[kind]
            search_times, page_times = [], []
            for value in values:
                started = time.perf_counter()
                page = client.get("/console/search?" + urllib.parse.urlencode({"q": value}))
                search_times.append(time.perf_counter() - started)
                assert page.status == 200, page.status
            for lead_id in lead_ids:
                started = time.perf_counter()
                assert client.get(f"/console/leads/{lead_id}").status == 200
                page_times.append(time.perf_counter() - started)
            rows.append((kind, len(values), found, _ms(find_times), _ms(search_times), _ms(page_times), _ms(scan)))
        process.terminate()
        process.wait(timeout=30)
    finally:
        book.remove("bench-operator")
    print("\n| query | n | found | find (library) ms p50 / p95 | search page (HTTP) ms | lead page (HTTP) ms "
          "| baseline: LIKE scan ms |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
