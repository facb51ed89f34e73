"""Soak test of `datafactory serve` (not a unit test): mixed good and hostile requests, bounded, on 127.0.0.1.

    python benchmarks/soak_serve.py --minutes 10          # the figure in docs/trust-events.md
    python benchmarks/soak_serve.py --minutes 0.3         # what tests/test_soak_serve.py runs (CI, < 30 s)

The server runs in its own process (as in production) with an admin token and one API key (`crm`, allowed
the source https://crm.example.com only). Two client threads, each with its own keep-alive connection, send
for the given time or until --max-requests, whichever comes first:
  - good events (owner_assigned with an owner unique to the event: each, once applied, is one history row),
    one per request or in batches of 5, with the key or the admin token;
  - replays of good events already sent (must be `duplicate`, never stored twice);
  - hostile requests: every kind of tests/hostile.py's corpus that fits in a request (the 2 MiB ones are
    declared and refused from the header), an event from a source the key may not use (403), a batch mixing
    a good event with a 1,000-deep one (the good one stored, the other 400), a wrong key (401).
Meanwhile an applier applies the stored events through the shipped rules every few seconds, as the feed
sensor's runs would, negotiating the store with the server. At the end: every good event stored once and
applied exactly once (one history row naming it), nothing hostile stored, no 5xx, and the server's RSS
(sampled every few seconds from /proc) flat: the last fifth's median within 20% + 16 MiB of the second fifth's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datafactory_pipelines.api_keys import add_key  # noqa: E402
from datafactory_pipelines.events.apply import apply_events  # noqa: E402
from datafactory_pipelines.pipeline import import_file, relink_and_curate  # noqa: E402
from datafactory_pipelines.rules import load_rules  # noqa: E402
from datafactory_pipelines.server import MAX_BODY_BYTES  # noqa: E402
from datafactory_pipelines.store import open_store  # noqa: E402
from tests.conftest import write_xlsx  # noqa: E402
from tests.hostile import hostile_event_lines  # noqa: E402

TOKEN = "soak-admin-token"
CRM = "https://crm.example.com"
MOBILES = [f"1380013{i:04d}" for i in range(20)]


@dataclass
class Tally:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    good_ids: set[str] = field(default_factory=set)  # accepted good events
    wrong: list[str] = field(default_factory=list)  # answers that were not what the request deserved
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _event(event_id: str, source: str, owner: str, mobile: str) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": "lead.owner_assigned",
            "time": "2026-12-07T16:16:00+08:00", "data": {"mobile": mobile, "owner": owner}}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Client:
    def __init__(self, name: str, port: int, key: str, tally: Tally, hostile: dict[str, bytes]) -> None:
        self.name, self.port, self.key, self.tally, self.hostile = name, port, key, tally, hostile
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.n = 0
        self.sent_good: list[dict] = []

    def _post(self, body: bytes, token: str, content_type: str = "application/cloudevents-batch+json",
              declared: int | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                if declared is not None:  # above the limit: the server answers from the header alone
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                    conn.putrequest("POST", "/events")
                    for k, v in {**headers, "Content-Length": str(declared)}.items():
                        conn.putheader(k, v)
                    conn.endheaders()
                    answer = conn.getresponse()
                    status, payload = answer.status, answer.read()
                    conn.close()
                else:
                    self.conn.request("POST", "/events", body=body, headers=headers)
                    answer = self.conn.getresponse()
                    status, payload = answer.status, answer.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        with self.tally.lock:
            self.tally.latencies.append(time.perf_counter() - started)
            self.tally.statuses[status] += 1
            self.tally.sent += 1
        try:
            return status, json.loads(payload)
        except json.JSONDecodeError:
            return status, {}

    def _expect(self, kind: str, ok: bool, detail: str) -> None:
        with self.tally.lock:
            self.tally.kinds[kind] += 1
            if not ok:
                self.tally.wrong.append(f"{kind}: {detail[:300]}")

    def good(self, batch: int) -> None:
        events = []
        for _ in range(batch):
            self.n += 1
            eid = f"{self.name}-{self.n}"
            events.append(_event(eid, CRM, f"销售 {self.name} {self.n}", MOBILES[self.n % len(MOBILES)]))
        token = self.key if self.n % 2 else TOKEN
        status, body = self._post(json.dumps(events, ensure_ascii=False).encode(), token)
        accepted = [r["id"] for r in body.get("results", []) if r.get("status") == "accepted"]
        self._expect("good", status == 202 and len(accepted) == batch, f"{status} {body}")
        with self.tally.lock:
            self.tally.good_ids.update(accepted)
        self.sent_good += events

    def replay(self) -> None:
        if not self.sent_good:
            return self.good(1)
        again = self.sent_good[self.n * 7 % len(self.sent_good)]
        status, body = self._post(json.dumps([again], ensure_ascii=False).encode(), TOKEN)
        ok = status == 202 and body.get("results", [{}])[0].get("status") == "duplicate"
        self._expect("replay", ok, f"{status} {body}")
        return None

    def hostile_request(self, kind: str) -> None:
        line = self.hostile[kind]
        if len(line) > MAX_BODY_BYTES:
            status, body = self._post(b"", TOKEN, declared=len(line))
        else:
            status, body = self._post(line, TOKEN, content_type="application/cloudevents+json")
        self._expect("hostile", status in (400, 413) and not body.get("accepted"), f"{kind}: {status} {body}")

    def forged_source(self) -> None:
        self.n += 1
        forged = _event(f"{self.name}-forged-{self.n}", "https://attacker.invalid", "Mallory", MOBILES[0])
        status, _ = self._post(json.dumps([forged]).encode(), self.key)
        self._expect("forged source", status == 403, str(status))

    def deep_beside_good(self) -> None:
        self.n += 1
        eid = f"{self.name}-{self.n}"
        good = json.dumps(_event(eid, CRM, f"销售 {self.name} {self.n}", MOBILES[self.n % len(MOBILES)]),
                          ensure_ascii=False)
        body = f'[{good}, {{"id": "deep", "data": {"[" * 1000}{"]" * 1000}}}]'.encode()
        status, answer = self._post(body, TOKEN)
        results = answer.get("results", [])
        ok = status == 400 and [r.get("status") for r in results] == ["accepted", "rejected"]
        self._expect("deep beside good", ok, f"{status} {answer}")
        if ok:
            with self.tally.lock:
                self.tally.good_ids.add(eid)
            self.sent_good.append(json.loads(good))

    def wrong_key(self) -> None:
        status, _ = self._post(b"[]", "dfk_not-a-key")
        self._expect("wrong key", status == 401, str(status))


def _applier(store_path: Path, home: Path, stop: threading.Event, applied: list[int]) -> None:
    rules = load_rules(home)
    while not stop.wait(3.0):
        report = apply_events(open_store(store_path), rules)
        applied.append(report.events)


def run_soak(minutes: float, max_requests: int, home: Path, log=print) -> dict:  # noqa: ANN001
    home.mkdir(parents=True, exist_ok=True)
    store = open_store(home / "leads.duckdb")
    rows = [["姓名", "手机", "公司"]] + [[f"客户{i}", m, f"公司{i}"] for i, m in enumerate(MOBILES)]
    import_file(store, write_xlsx(home / "leads.xlsx", rows))
    relink_and_curate(store)
    keys_file = home / "api_keys.json"
    key = add_key(keys_file, "crm", [CRM], ["events:write"], by="soak")
    port = _free_port()
    env = {**os.environ, "DATAFACTORY_HOME": str(home), "DATAFACTORY_API_TOKEN": TOKEN,
           "DATAFACTORY_API_KEYS": str(keys_file), "PYTHONPATH": str(ROOT)}
    server_log = (home / "serve.log").open("wb")  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen([sys.executable, "-m", "datafactory_pipelines.cli", "serve", "--port", str(port)],
                              env=env, stdout=server_log, stderr=subprocess.STDOUT, cwd=ROOT)
    tally = Tally()
    rss: list[tuple[float, int]] = []
    applied: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (home / "serve.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"server did not start: {log_text}") from None
                time.sleep(0.1)
        hostile = hostile_event_lines()
        kinds = list(hostile)
        started = time.monotonic()
        end = started + minutes * 60
        stop = threading.Event()

        def client_loop(name: str) -> None:
            client = Client(name, port, key, tally, hostile)
            step = 0
            while time.monotonic() < end and tally.sent < max_requests and not stop.is_set():
                step += 1
                pick = step % 10
                if pick in (0, 1, 2, 3):
                    client.good(1 if pick < 2 else 5)
                elif pick == 4:
                    client.replay()
                elif pick in (5, 6):
                    client.hostile_request(kinds[(step // 10 + (name == "b")) % len(kinds)])
                elif pick == 7:
                    client.forged_source()
                elif pick == 8:
                    client.deep_beside_good()
                else:
                    client.wrong_key()

        applier = threading.Thread(target=_applier, args=(home / "leads.duckdb", home, stop, applied), daemon=True)
        clients = [threading.Thread(target=client_loop, args=(n,)) for n in ("a", "b")]
        applier.start()
        for c in clients:
            c.start()
        next_log = started
        while any(c.is_alive() for c in clients):
            rss.append((time.monotonic() - started, _rss_kib(server.pid)))
            if time.monotonic() >= next_log:
                log(f"{time.monotonic() - started:6.0f} s  requests {tally.sent:>7}  good events {len(tally.good_ids):>7}"
                    f"  server RSS {rss[-1][1] / 1024:6.1f} MiB  statuses {dict(tally.statuses)}")
                next_log += 60
            time.sleep(min(5.0, max(0.5, minutes * 60 / 200)))
        for c in clients:
            c.join()
        stop.set()
        applier.join()
        rss.append((time.monotonic() - started, _rss_kib(server.pid)))
        elapsed = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
    store = open_store(home / "leads.duckdb")
    final = apply_events(store, load_rules(home))  # what the last interval left
    events = store._query("SELECT event_id, source, status FROM events")
    causes = store._query("SELECT cause FROM history WHERE action = 'event' AND field = 'owner'")["cause"]
    history_per_event = Counter(re.match(r"event (\S+) from", c).group(1) for c in causes)
    stored_ids = Counter(events["event_id"])
    problems = list(tally.wrong)
    lost = tally.good_ids - set(stored_ids)
    if lost:
        problems.append(f"{len(lost)} accepted good events not in the store, e.g. {sorted(lost)[:3]}")
    extra = set(stored_ids) - tally.good_ids
    if extra:
        problems.append(f"{len(extra)} events stored that were not accepted good ones, e.g. {sorted(extra)[:3]}")
    twice = [i for i, n in stored_ids.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} events stored more than once")
    not_once = [i for i in tally.good_ids if history_per_event.get(i) != 1]
    if not_once:
        problems.append(f"{len(not_once)} good events not applied exactly once, e.g. "
                        f"{[(i, history_per_event.get(i)) for i in sorted(not_once)[:3]]}")
    if (events["status"] == "received").any():
        problems.append(f"{int((events['status'] == 'received').sum())} events still waiting")
    server_errors = sum(n for s, n in tally.statuses.items() if s >= 500)
    if server_errors:
        problems.append(f"{server_errors} answers were 5xx")
    values = [kib for _, kib in rss]
    fifth = max(1, len(values) // 5)
    early = statistics.median(values[fifth:2 * fifth] or values[:1])
    late = statistics.median(values[-fifth:])
    if late > early * 1.2 + 16 * 1024:
        problems.append(f"server RSS grew: {early / 1024:.1f} MiB -> {late / 1024:.1f} MiB")
    latencies = sorted(tally.latencies)
    result = {
        "seconds": round(elapsed, 1), "requests": tally.sent, "requests_per_s": round(tally.sent / elapsed, 1),
        "by_kind": dict(tally.kinds), "statuses": dict(tally.statuses), "good_events": len(tally.good_ids),
        "events_stored": int(len(events)), "applied_by_interval_runs": sum(applied) + final.events,
        "apply_runs": len(applied) + 1,
        "rss_mib": {"first": round(values[0] / 1024, 1), "second_fifth_median": round(early / 1024, 1),
                    "last_fifth_median": round(late / 1024, 1), "max": round(max(values) / 1024, 1),
                    "samples": len(values)},
        "latency_ms": {"p50": round(1000 * latencies[len(latencies) // 2], 1),
                       "p99": round(1000 * latencies[int(len(latencies) * 0.99)], 1)},
        "problems": problems,
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--home", type=Path, help="a folder to keep (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as temporary:
        result = run_soak(args.minutes, args.max_requests, args.home or Path(temporary) / "home")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
