"""From POST /events to the owner's signed webhook: latency through a real deployment, to a real receiver.

    python benchmarks/notify_latency.py [--events 20] [--interval 3] [--edits 10] [--deployment run-services]
    python benchmarks/notify_latency.py --deployment ui+serve --code /path/to/main   # the deployment before

1. A fresh data folder: --events owned leads imported (one .xlsx through the real import), notify.yaml with
   one webhook to a receiver in this process (http.server on 127.0.0.1, every Standard Webhooks signature
   checked).
2. The deployment is started as a user would, with --code on PYTHONPATH:
   - `run-services`: `datafactory run-services` (serve with the notification dispatcher, dagster-daemon,
     dagster-webserver);
   - `ui+serve`: `datafactory ui` (dagster dev: webserver and daemon, the sensors) beside `datafactory serve`.
   The leads' creation messages are waited for first (the deployment is then up, sensors included).
3. One verified mobile change per lead is POSTed at a steady rate (one every --interval seconds); the
   receiver notes when each lead's message arrives.
   With --edits M, M `datafactory lead set` commands follow (each its own process, one every --interval):
   their commit (the outbox row's time) to the owner's webhook. With --import-rows R, one `datafactory import`
   of R new owned leads: each lead's message, from the import's commit.
4. The deployment is stopped and the breakdown read from the store: received (the event's commit,
   events.received_at), applied (events.applied_at: rules run, history and outbox written in that
   transaction), delivered (the webhook at the receiver). p50, p95 and max of each stage and of the whole.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openpyxl
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from standardwebhooks import Webhook as StandardWebhook  # noqa: E402

from datafactory_pipelines.pipeline import import_file, relink_and_curate  # noqa: E402
from datafactory_pipelines.store import open_store  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"notify-latency-benchmark-secret!").decode()
HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "负责人", "登记日期"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Every webhook's arrival time (epoch seconds), by lead id, signature verified."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[float, str]]] = {}
        self.count = 0
        self.lock = threading.Lock()
        verify = StandardWebhook(SECRET)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                at = time.time()
                data = verify.verify(body, {k.lower(): v for k, v in self.headers.items()})["data"]
                with receiver.lock:
                    receiver.arrivals.setdefault(data["lead_id"], []).append((at, self.headers["webhook-id"]))
                    receiver.count += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def prepare(home: Path, n: int) -> list[tuple[str, str]]:
    """n owned leads in a fresh store: (lead_id, mobile)."""
    rows = [HEADER] + [[SURNAMES[i % 20] + GIVEN[i // 20 % len(GIVEN)] + GIVEN[(i * 7) % len(GIVEN)], f"137{i:08d}",
                        f"p{i}@qq.com", "星海科技有限公司", "销售经理", "李娜", "2025-01-01"] for i in range(n)]
    path = home / "线索.xlsx"
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    store = open_store(home / "leads.duckdb")
    import_file(store, path)
    relink_and_curate(store)
    leads = store.leads()
    path.unlink()
    return sorted(zip(leads["lead_id"], leads["mobile"], strict=True), key=lambda pair: pair[1])


def start(deployment: str, home: Path, code: Path, port: int) -> list[subprocess.Popen]:
    env = {**os.environ, "DATAFACTORY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
           "PYTHONPATH": str(code), "DATAFACTORY_INBOX_SETTLE_SECONDS": "2",
           "DATAFACTORY_TRUSTED_SOURCES": "https://app.example.com"}  # the events' source (rules trust none by default)
    env.pop("DATAFACTORY_API_TOKEN", None)
    cli = [sys.executable, "-m", "datafactory_pipelines.cli"]
    log = (home / "services.log").open("ab")
    options = {"env": env, "cwd": str(code), "stdout": log, "stderr": subprocess.STDOUT, "start_new_session": True}
    if deployment == "run-services":
        return [subprocess.Popen([*cli, "run-services", "--port", str(port), "--ui-port", str(free_port())],
                                 **options)]
    return [subprocess.Popen([*cli, "ui", "--port", str(free_port())], **options),
            subprocess.Popen([*cli, "serve", "--port", str(port)], **options)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        with _quiet():
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with _quiet():
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError)


def wait(condition, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.02)


def post(url: str, event: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"content-type": "application/cloudevents+json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202, answer.read()


def healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def edit_leads(home: Path, code: Path, lead_ids: list[str], interval: float) -> dict[str, float]:
    """`datafactory lead set LEAD title=…` for each lead, each in its own process, at a steady rate."""
    env = {**os.environ, "DATAFACTORY_HOME": str(home), "PYTHONPATH": str(code)}
    started: dict[str, float] = {}
    first = time.monotonic()
    for i, lead_id in enumerate(lead_ids):
        time.sleep(max(0.0, first + i * interval - time.monotonic()))
        started[lead_id] = time.time()
        subprocess.run([sys.executable, "-m", "datafactory_pipelines.cli", "lead", "set", lead_id,
                        f"title=采购总监{i}", "--by", "benchmark"], env=env, cwd=str(code), check=True,
                       stdout=subprocess.DEVNULL)
    return started


def import_leads(home: Path, code: Path, n: int) -> float:
    """`datafactory import` of one .xlsx of n new owned leads, in its own process; when it was started."""
    path = home.parent / f"{home.name}-import.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(HEADER)
    for i in range(n):
        workbook.active.append([SURNAMES[(i + 7) % 20] + GIVEN[(i * 3) % len(GIVEN)], f"135{i:08d}", f"n{i}@163.com",
                                "云帆贸易有限公司", "采购经理", "李娜", "2025-02-01"])
    workbook.save(path)
    env = {**os.environ, "DATAFACTORY_HOME": str(home), "PYTHONPATH": str(code)}
    started = time.time()
    subprocess.run([sys.executable, "-m", "datafactory_pipelines.cli", "import", str(path), "--by", "benchmark"],
                   env=env, cwd=str(code), check=True, stdout=subprocess.DEVNULL)
    path.unlink()
    return started


def epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=timezone.utc).timestamp()


def stats(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return f"p50 {statistics.median(ordered):6.2f} s   p95 {p95:6.2f} s   max {ordered[-1]:6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between two events")
    parser.add_argument("--deployment", choices=["run-services", "ui+serve"], default="run-services")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout the deployment runs (PYTHONPATH)")
    parser.add_argument("--out", type=Path, help="data folder (default: a temporary one, removed after)")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for the messages")
    parser.add_argument("--import-rows", type=int, default=0,
                        help="then `datafactory import` (its own process) of a file of this many new owned leads")
    parser.add_argument("--edits", type=int, default=0,
                        help="then this many `datafactory lead set` commands (other processes), one every --interval")
    args = parser.parse_args()

    home = args.out or Path(tempfile.mkdtemp(prefix="notify-latency-"))
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    receiver = Receiver()
    leads = prepare(home, args.events)
    (home / "notify.yaml").write_text(yaml.safe_dump({"webhooks": [
        {"name": "crm", "url": receiver.url, "secret": SECRET, "owners": ["*"]}]}), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"{args.deployment} from {args.code}; {len(leads)} owned leads in {home}", flush=True)
    started = time.monotonic()
    processes = start(args.deployment, home, args.code, port)
    posted: dict[str, float] = {}
    edited: dict[str, float] = {}
    try:
        wait(lambda: healthy(base), "the event server", 120)
        wait(lambda: receiver.count >= len(leads), "the leads' creation messages (the deployment is up)", args.wait)
        print(f"up: the {len(leads)} creation messages arrived {time.monotonic() - started:.1f} s after the start",
              flush=True)
        first = time.monotonic()
        for i, (lead_id, mobile) in enumerate(leads):  # a steady rate: event i is sent at first + i * interval
            time.sleep(max(0.0, first + i * args.interval - time.monotonic()))
            posted[lead_id] = time.time()
            post(f"{base}/events", {"specversion": "1.0", "id": f"bench-{i}", "source": "https://app.example.com",
                                    "type": "lead.mobile_changed", "data": {
                                        "old_mobile": mobile, "new_mobile": f"136{i:08d}",
                                        "verified": ["old_sms", "new_sms"]}})
        wait(lambda: all(len(receiver.arrivals.get(lead, [])) >= 2 for lead in posted),
             "every event's message", args.wait)
        edited = edit_leads(home, args.code, [lead for lead, _ in leads[:args.edits]], args.interval)
        wait(lambda: all(len(receiver.arrivals.get(lead, [])) >= 3 for lead in edited),
             "every edit's message", args.wait)
        if args.import_rows:
            imported_at = import_leads(home, args.code, args.import_rows)
            wait(lambda: len(receiver.arrivals) >= len(leads) + args.import_rows, "every imported lead's message",
                 args.wait)
    finally:
        stop(processes)
    store = open_store(home / "leads.duckdb")
    with store.transaction() as con:
        events = con.execute("SELECT lead_id, received_at, applied_at FROM events ORDER BY seq").fetchall()
        created = con.execute("SELECT lead_id, list(created_at ORDER BY outbox_id) FROM outbox GROUP BY lead_id"
                              ).fetchall()
    outbox_at = {lead: times[1] for lead, times in created if lead in posted}  # [creation, event, edit]
    stages: dict[str, list[float]] = {"POST -> received (committed)": [], "received -> applied (+ outbox)": [],
                                      "outbox -> delivered (at the receiver)": [], "POST -> delivered": []}
    for lead_id, received_at, applied_at in events:
        delivered = receiver.arrivals[lead_id][1][0]
        stages["POST -> received (committed)"].append(epoch(received_at) - posted[lead_id])
        stages["received -> applied (+ outbox)"].append(epoch(applied_at) - epoch(received_at))
        stages["outbox -> delivered (at the receiver)"].append(delivered - epoch(outbox_at[lead_id]))
        stages["POST -> delivered"].append(delivered - posted[lead_id])
    resent = receiver.count - sum(len({w for _, w in got}) for got in receiver.arrivals.values())
    print(f"{len(events)} events, one every {args.interval:g} s, {args.deployment}; "
          f"{receiver.count} webhooks received ({resent} re-sent with the same webhook-id)")
    for stage, values in stages.items():
        print(f"  {stage:<40} {stats(values)}")
    if args.import_rows:
        new = {lead: times[0] for lead, times in created if lead not in posted}
        print(f"`datafactory import` of {len(new)} new owned leads (its own process):")
        print(f"  {'command start -> delivered':<40} "
              f"{stats([receiver.arrivals[lead][0][0] - imported_at for lead in new])}")
        print(f"  {'commit (outbox) -> delivered':<40} "
              f"{stats([receiver.arrivals[lead][0][0] - epoch(at) for lead, at in new.items()])}")
    if edited:
        commits = {lead: times[2] for lead, times in created if lead in edited}
        print(f"{len(edited)} `datafactory lead set` (each its own process), one every {args.interval:g} s:")
        print(f"  {'command start -> delivered':<40} "
              f"{stats([receiver.arrivals[lead][2][0] - edited[lead] for lead in edited])}")
        print(f"  {'commit (outbox) -> delivered':<40} "
              f"{stats([receiver.arrivals[lead][2][0] - epoch(commits[lead]) for lead in edited])}")
    if not args.out:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
