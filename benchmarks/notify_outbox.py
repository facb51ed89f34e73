"""What owner notifications cost: the outbox hook on imports and edits, and webhook delivery throughput.

    python benchmarks/notify_outbox.py [--leads 50000] [--edits 1000] [--out /tmp/notify-bench]

1. The same generated list (N people, each with a 负责人) is imported into two fresh stores, once with the
   owner column and once without; the time spent inside the outbox hook is measured where the store
   calls it (one message per new owned lead, written in the curate transaction).
2. One `edit_leads` call changes two fields on each of --edits owned leads: one message per lead.
3. `deliver_due` posts those messages to a real local webhook receiver (http.server on 127.0.0.1),
   signed; deliveries per second on one thread.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datafactory_pipelines.decisions import edit_leads  # noqa: E402
from datafactory_pipelines.notify.config import load_notify_config  # noqa: E402
from datafactory_pipelines.notify.delivery import deliver_due  # noqa: E402
from datafactory_pipelines.pipeline import import_file, relink_and_curate  # noqa: E402
from datafactory_pipelines.store import open_store  # noqa: E402
from datafactory_pipelines.store.change_object import outbox as store_outbox  # noqa: E402

HOOK_SECONDS = [0.0]


def _timed_hook(hook):
    def timed(*args):
        started = time.perf_counter()
        try:
            return hook(*args)
        finally:
            HOOK_SECONDS[0] += time.perf_counter() - started
    return timed


# measure the hook where the store calls it: every history append ends in it (store/change_object/history_table.py)
store_outbox.append_outbox_for_seqs = _timed_hook(store_outbox.append_outbox_for_seqs)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
# salespeople by name: an owner column must hold people's names ("销售07" is not one; the column would stay extra)
OWNERS = [SURNAMES[i] + GIVEN[(3 * i) % len(GIVEN)] + GIVEN[(7 * i + 1) % len(GIVEN)] for i in range(20)]


def lead_list(n: int, with_owner: bool, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = [SURNAMES[a] + GIVEN[b] + GIVEN[c] for a, b, c in zip(
        rng.integers(0, len(SURNAMES), n), rng.integers(0, len(GIVEN), n), rng.integers(0, len(GIVEN), n),
        strict=True)]
    frame = pd.DataFrame({
        "姓名": names,
        "手机": [str(13000000000 + 7919 * i) for i in range(n)],
        "邮箱": [f"user{i}@example.com" for i in range(n)],
        "公司": [f"公司{i % 5000}" for i in range(n)],
        "职位": rng.choice(["销售经理", "工程师", "采购经理", "总监"], n),
        "登记日期": "2026-01-05",
    })
    if with_owner:
        frame["负责人"] = rng.choice(OWNERS, n)
    return frame


def timed_import(folder: Path, frame: pd.DataFrame) -> tuple[float, object]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "线索.csv"
    frame.to_csv(path, index=False)
    store = open_store(folder / "leads.duckdb")
    started = time.perf_counter()
    outcome = import_file(store, path)
    assert outcome.status == "imported", outcome.error
    relink_and_curate(store)
    return time.perf_counter() - started, store


def receiver() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--edits", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/notify-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)

    plain_s, _ = timed_import(args.out / "plain", lead_list(args.leads, with_owner=False))
    HOOK_SECONDS[0] = 0.0
    owned_s, store = timed_import(args.out / "owned", lead_list(args.leads, with_owner=True))
    import_hook = HOOK_SECONDS[0]
    with store.transaction() as con:
        messages = con.execute("SELECT count(*) FROM outbox").fetchall()[0][0]
    print(f"import + link + curate of {args.leads:,} new leads: {plain_s:.2f} s without owners, "
          f"{owned_s:.2f} s with owners ({messages:,} outbox messages; the outbox hook took {import_hook:.2f} s)")

    leads = store.leads()["lead_id"].head(args.edits)
    edits = pd.DataFrame({"lead_id": np.repeat(leads.to_numpy(), 2), "field": ["title", "company"] * len(leads),
                          "value": ["区域总监", "新公司"] * len(leads)})
    started = time.perf_counter()
    HOOK_SECONDS[0] = 0.0
    edit_leads(store, edits, by="bench")
    edit_s = time.perf_counter() - started
    with store.transaction() as con:
        after = con.execute("SELECT count(*) FROM outbox").fetchall()[0][0]
    print(f"edit of 2 fields on {len(leads):,} owned leads in one call: {edit_s:.2f} s, "
          f"{after - messages:,} messages (one per lead; the outbox hook took {HOOK_SECONDS[0]:.3f} s)")

    server = receiver()
    home = args.out / "owned"
    (home / "notify.yaml").write_text(yaml.safe_dump({"webhooks": [{
        "name": "bench", "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
        "secret": "whsec_" + base64.b64encode(b"benchmark-secret-benchmark-secret").decode()}]}), encoding="utf-8")
    config = load_notify_config(home)
    with store.transaction() as con:  # deliver only the edit messages: mark the import's as routed
        con.execute("UPDATE outbox SET routed_at = now() WHERE outbox_id <= ?", [messages])
    started = time.perf_counter()
    report = deliver_due(store, config, limit=args.edits)
    deliver_s = time.perf_counter() - started
    server.shutdown()
    print(f"deliver {report.delivered:,} signed webhooks to a local receiver: {deliver_s:.2f} s "
          f"({report.delivered / deliver_s:,.0f}/s, one thread, results written 100 at a time)")
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
