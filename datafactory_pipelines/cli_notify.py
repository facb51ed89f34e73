"""`datafactory notify …`: deliver the outbox once, show the queue, re-queue, re-enable an endpoint."""

from __future__ import annotations

import argparse

from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.config import Paths


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_notify(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.notify.config import load_notify_config
    from datafactory_pipelines.notify.delivery import deliver_due, enable_endpoint, queue_status, requeue
    from datafactory_pipelines.store import open_store

    store = open_store(paths.store)
    if args.action == "deliver":
        config = load_notify_config(paths.home)
        if not config.has_channels:
            _say(f"no webhooks or mail configured in {config.source}; messages wait in the outbox")
        failed = False
        for attempt_pass in range(1, args.passes + 1):
            report = deliver_due(store, config, limit=args.limit)
            _say(f"pass {attempt_pass}: routed {report.routed} new message(s) ({report.unrouted} for owners no "
                 f"endpoint serves); attempted {report.attempted}: delivered {report.delivered}, failed "
                 f"{report.failed} (will retry), dead {report.dead}")
            for endpoint in report.endpoints_disabled:
                _say(f"endpoint {endpoint} answered 410 Gone and is disabled (datafactory notify enable NAME)")
            failed = failed or bool(report.failed or report.dead)
            if report.attempted < args.limit:
                break  # nothing more was due
        else:
            _say(f"stopped after {args.passes} pass(es) of at most {args.limit} attempts: more deliveries may be "
                 "due; run `notify deliver` again or raise --limit / --passes (`notify status` shows the queue)")
        return 1 if failed else 0
    if args.action == "status":
        status = queue_status(store)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(status.by_status.items())) or "none"
        _say(f"outbox: {status.messages} message(s), {status.unrouted} not yet routed; deliveries: {counts}")
        if status.next_due is not None:
            _say(f"next attempt due at {status.next_due:%Y-%m-%d %H:%M:%S} UTC")
        for title, frame in (("failing (will retry)", status.failing), ("dead letters", status.dead)):
            if len(frame):
                _say(f"{title}:")
                for row in frame.itertuples(index=False):
                    when = f", next {row.next_attempt_at:%H:%M:%S}" if title.startswith("failing") else ""
                    _say(f"  #{row.outbox_id} {row.message_id} {row.lead_id} ({row.owner}) → {row.endpoint}: "
                         f"{row.attempts} attempt(s), last {row.last_error or row.last_status}{when}")
        for row in status.disabled.itertuples(index=False):
            _say(f"disabled endpoint {row.endpoint} since {row.disabled_at:%Y-%m-%d %H:%M:%S}: {row.reason}")
        return 0
    if args.action == "retry":
        if not args.target:
            raise ValueError("notify retry needs an outbox id, a message id (msg_…) or all-dead")
        count = requeue(store, args.target)
        _say(f"re-queued {count} delivery(ies) of {args.target}; they go with the next `notify deliver`")
        return 0
    if args.action == "enable":
        if not args.target:
            raise ValueError("notify enable needs an endpoint name (as in notify.yaml)")
        found = enable_endpoint(store, args.target)
        _say(f"endpoint {args.target} enabled" if found else f"endpoint {args.target} was not disabled")
        return 0
    raise ValueError(f"unknown notify action {args.action}")


def add_notify_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "notify", "owner notifications: deliver the outbox, status, retry, enable an endpoint")
    p.add_argument("action", choices=["deliver", "status", "retry", "enable"])
    p.add_argument("target", nargs="?", default="", help="retry: outbox id, msg_… or all-dead; enable: endpoint")
    p.add_argument("--limit", type=int, default=500, help="deliver: at most this many attempts in one pass "
                   "(another pass follows while a pass uses them all)")
    p.add_argument("--passes", type=int, default=20, help="deliver: at most this many passes (default 20); "
                   "the command says so when it stops with deliveries still due")
    p.set_defaults(func=cmd_notify)
