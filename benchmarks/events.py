"""Event ingress and rule application speed (not a test).

    python benchmarks/events.py                       # POST speed, then 10,000 events onto 1,000,000 leads
    python benchmarks/events.py --leads 200000        # a smaller synthesized base
    python benchmarks/events.py --import-dir GEN_DIR/files   # a base imported through the real import
                                                             # path (gen_leads --files: *.xlsx)

1. POST /events to `datafactory serve` (its own process, loopback, bearer token) with keep-alive
   HTTP clients, one and several at once: events/s in batches of 100, and one event per request.
   Every answer comes after the events' commit to the store (DuckDB fsyncs its WAL), so one client
   waits for each commit; concurrent requests share commits.
2. Applying 10,000 stored events (mixed types, found by mobile, email or lead id) through the shipped
   rules, in the event feed's batches of 5,000, onto the base: seconds.

The synthesized base writes `leads` rows directly (distinct mobiles and emails, a history row per lead):
applying events reads and writes only leads, history, overrides, conflicts and events, never records.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datafactory_pipelines.events.apply import apply_events  # noqa: E402
from datafactory_pipelines.events.feed import store_events  # noqa: E402
from datafactory_pipelines.events.types import validate_event  # noqa: E402
from datafactory_pipelines.fields import LEAD_COLUMNS  # noqa: E402
from datafactory_pipelines.rules import load_rules  # noqa: E402
from datafactory_pipelines.store import open_store  # noqa: E402
from sensors.events import BATCH_EVENTS  # noqa: E402

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthesize_leads(store_path: Path, n: int) -> None:
    """n active leads with distinct mobiles (13x…) and emails, written straight into the leads table."""
    open_store(store_path)  # the tables
    con = duckdb.connect(str(store_path))
    values = {c: "NULL" for c in LEAD_COLUMNS}
    values.update({
        "lead_id": "'L' || lpad((i + 1)::VARCHAR, 8, '0')",
        "name": "'客户' || i::VARCHAR",
        "mobile": "(13000000000 + i * 7)::VARCHAR",
        "mobile_alternates": "''", "email_alternates": "''",
        "email": "'c' || i::VARCHAR || '@example.com'",
        "company": "'公司' || (i % 5000)::VARCHAR",
        "title": "'经理'", "source": "'展会2026'", "first_source": "'展会2026'", "latest_source": "'展会2026'",
        "record_count": "1", "status": "'active'", "merged_into": "''",
        "created_at": "'2026-11-01T00:00:00'", "updated_at": "'2026-11-01T00:00:00'",
    })
    select = ", ".join(f"{values[c]} AS {c}" for c in LEAD_COLUMNS)
    con.execute(f"INSERT INTO leads SELECT {select} FROM range({n}) t(i)")
    con.close()


def import_base(store_path: Path, folder: Path) -> None:
    from datafactory_pipelines.pipeline import import_file, relink_and_curate

    store = open_store(store_path)
    files = sorted(folder.glob("*.xlsx"))  # gen_leads writes leads_NNN.xlsx (and .rows.csv beside them)
    for path in files:
        print(f"  importing {path.name} …", flush=True)
        import_file(store, path)
    relink_and_curate(store)


def start_server(home: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "DATAFACTORY_HOME": str(home), "DATAFACTORY_API_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "datafactory_pipelines.cli", "serve", "--port", str(port)],
                               env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def mobile_event(i: int, mobile: str, verified: bool) -> dict:
    return {"specversion": "1.0", "id": f"bench-{i}", "source": "https://app.example.com",
            "type": "lead.mobile_changed", "time": "2026-11-27T08:00:00Z",
            "data": {"old_mobile": mobile, "new_mobile": str(15000000000 + i),
                     "verified": ["old_sms", "new_sms"] if verified else ["new_sms"]}}


def post_speed(port: int, mobiles: list[str], total: int, per_request: int, offset: int, clients: int = 1) -> float:
    """events/s for `total` events posted `per_request` at a time by `clients` keep-alive connections."""
    headers = {"Authorization": f"Bearer {TOKEN}",
               "Content-Type": "application/cloudevents-batch+json" if per_request > 1 else
               "application/cloudevents+json"}
    bodies = []
    for start in range(0, total, per_request):
        batch = [mobile_event(offset + i, mobiles[(offset + i) % len(mobiles)], i % 5 != 0)
                 for i in range(start, min(start + per_request, total))]
        bodies.append(json.dumps(batch if per_request > 1 else batch[0]).encode())
    failures: list[str] = []
    latencies: list[float] = []

    def send(share: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in share:
            sent = time.perf_counter()
            conn.request("POST", "/events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            latencies.append(time.perf_counter() - sent)
            if response.status != 202:
                failures.append(f"{response.status}: {payload[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=send, args=(bodies[k::clients],)) for k in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    if failures:
        raise RuntimeError(failures[0])
    latencies.sort()
    print(f"    latency per request: median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p90 {latencies[len(latencies) * 9 // 10] * 1000:.1f} ms", flush=True)
    return total / took


def mixed_events(n: int, leads: list[tuple[str, str, str]], seed: int = 7) -> list[dict]:
    """n events over random leads: mobile changes (verified or not), profile updates, bounces, owners,
    clicks; found by mobile, email or lead id; 1% name nobody."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        lead_id, mobile, email = leads[rng.randrange(len(leads))]
        kind = rng.random()
        base = {"specversion": "1.0", "id": f"apply-{i}", "source": "https://app.example.com"}
        if rng.random() < 0.01:
            mobile, email, lead_id = str(19900000000 + i), f"nobody{i}@example.net", "L99999999"
        if kind < 0.4:
            e = {**base, "type": "lead.mobile_changed", "data": {
                "old_mobile": mobile, "new_mobile": str(15100000000 + i),
                "verified": ["old_sms", "new_sms"] if kind < 0.3 else []}}
        elif kind < 0.6:
            e = {**base, "type": "lead.profile_updated", "data": {
                "email": email, "title": rng.choice(["CTO", "采购经理", "总经理"]), "address": f"上海市浦东新区{i}号"}}
        elif kind < 0.7:
            e = {**base, "source": "mailer", "type": "lead.contact_bounced",
                 "data": {"channel": "email", "value": email, "reason": "mailbox does not exist"}}
        elif kind < 0.8:
            e = {**base, "type": "lead.owner_assigned", "subject": lead_id, "data": {"owner": f"销售{i % 40}"}}
        else:
            e = {**base, "source": "datafactory/links", "type": "link.clicked", "subject": lead_id,
                 "data": {"code": f"c{i}", "channel": rng.choice(["wechat", "douyin", "email"]),
                          "clicked_at": "2026-11-27T08:00:00Z"}}
        events.append(e)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000, help="synthesized base size (leads)")
    parser.add_argument("--import-dir", type=Path, help="import this gen_leads folder instead of synthesizing")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients for the second figure")
    parser.add_argument("--work", type=Path, default=Path("/tmp/events-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    home = args.work / "home"
    home.mkdir(parents=True)
    store_path = home / "leads.duckdb"
    started = time.perf_counter()
    if args.import_dir:
        import_base(store_path, args.import_dir)
    else:
        synthesize_leads(store_path, args.leads)
    store = open_store(store_path)
    counts = store.counts()
    print(f"base: {counts['active_leads']:,} active leads, {counts['records']:,} records "
          f"(built in {time.perf_counter() - started:.0f}s)", flush=True)
    sample = store._query("SELECT lead_id, mobile, email FROM leads WHERE status = 'active' AND mobile <> '' "
                          "AND email <> '' USING SAMPLE 20000 ROWS")
    leads = list(sample.itertuples(index=False, name=None))

    process, port = start_server(home)
    try:
        mobiles = [m for _, m, _ in leads]
        post_speed(port, mobiles, 500, 100, 10_000_000)  # warm up
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
        for clients in (1, args.clients):
            rate = post_speed(port, mobiles, 20_000, 100, clients * 1_000_000, clients)
            print(f"POST /events, batches of 100, {clients} client(s): {rate:,.0f} events/s (20,000 events)",
                  flush=True)
        for clients in (1, args.clients):
            rate = post_speed(port, mobiles, 3_000, 1, 100_000 + clients * 1_000_000, clients)
            print(f"POST /events, one event per request, {clients} client(s): {rate:,.0f} events/s "
                  "(3,000 requests)", flush=True)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    # the posted events are applied too (as the sensor would); only the 10,000 mixed ones are timed below
    store._query("SELECT 1")
    with store.exclusive("benchmark: set posted events aside", atomic=True), store._transaction() as con:
        con.execute("UPDATE events SET status = 'benchmark-posted' WHERE status = 'received'")

    events = [validate_event(e, i) for i, e in enumerate(mixed_events(args.events, leads))]
    store_events(store, events, via="benchmark")
    rules = load_rules(home)
    window = store._query("SELECT min(seq) AS a, max(seq) AS b FROM events WHERE status = 'received'").iloc[0]
    started = time.perf_counter()
    outcome: dict[str, int] = {}
    for first in range(int(window["a"]), int(window["b"]) + 1, BATCH_EVENTS):
        report = apply_events(store, rules, first, first + BATCH_EVENTS - 1)
        for status, n in report.by_status.items():
            outcome[status] = outcome.get(status, 0) + n
    took = time.perf_counter() - started
    print(f"applying {args.events:,} events to {counts['active_leads']:,} leads "
          f"(batches of {BATCH_EVENTS:,}): {took:.1f}s  {outcome}", flush=True)


if __name__ == "__main__":
    main()
