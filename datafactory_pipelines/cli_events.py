"""`datafactory serve`, `rules …`, `link make`, `apply-events`: events, rules and tracking links from a terminal."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.config import Paths

# Each command imports what it uses when it runs (the rules compile a CEL grammar): see cli.py.


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_serve(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.api_keys import keys_path
    from datafactory_pipelines.server import serve
    from datafactory_pipelines.store import store_label

    token = "set" if os.environ.get("DATAFACTORY_API_TOKEN") else "NOT set"
    keys = keys_path(paths.home)
    scheme = "https" if args.ssl_certfile else "http"
    dispatch = args.dispatch or os.environ.get("DATAFACTORY_DISPATCH", "") == "1"
    _say(f"datafactory events on {scheme}://{args.host}:{args.port}  (store {store_label(paths.store)}; admin token {token}; "
         f"API keys {keys}" + ("; notification dispatcher on" if dispatch else "")
         + f"); console on {scheme}://{args.host}:{args.port}/console")
    serve(str(paths.store), args.host, args.port, log_level=args.log_level, keys_file=keys,
          ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile, behind_proxy=args.behind_proxy,
          dispatch_home=paths.home if dispatch else None)
    return 0


def cmd_rules(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.events.apply import dry_run
    from datafactory_pipelines.events.feed import parse_event_lines
    from datafactory_pipelines.events.json_guard import parse_limited
    from datafactory_pipelines.events.types import EventError, validate_event
    from datafactory_pipelines.rules import RuleError, check_rule_files, load_rules, load_valid_rules
    from datafactory_pipelines.store import open_store

    if args.action == "check":
        problems = check_rule_files(paths.home)
        for problem in problems:
            _say(f"ERROR {problem}")
        if problems:
            return 1
        rules = load_rules(paths.home)
        _say(f"{len(rules.rules)} rule(s) in {len(rules.files)} file(s): all valid")
        return 0
    if args.action == "list":
        rules, problems = load_valid_rules(paths.home)
        for rule in rules.rules:
            _say(f"{rule.name}  on {', '.join(rule.on)}  when {rule.when.text}")
            _say(f"    {' → '.join(a.kind for a in rule.actions)}   ({rule.origin})")
            if rule.description:
                _say(f"    {rule.description}")
        if rules.trusted_sources:
            _say(f"trusted sources: {', '.join(rules.trusted_sources)}")
        for problem in problems:
            _say(f"ERROR {problem}")
        if problems:
            _say("the files with errors are left out above; events are not applied until `rules check` passes")
        return 1 if problems else 0
    rules = load_rules(paths.home)
    if not args.event_file:
        raise RuleError("rules test needs EVENT.json (one event, a JSON array, or JSON Lines)")
    path = Path(args.event_file)
    text = path.read_text(encoding="utf-8-sig")
    try:
        parsed = parse_limited(text)  # depth checked first: a deep file is refused, never a RecursionError
        raw = parsed if isinstance(parsed, list) else [parsed]
        checked = [validate_event(e, i) for i, e in enumerate(raw, start=1)]
        errors = [c.describe() for c in checked if isinstance(c, EventError)]
        events = [c for c in checked if not isinstance(c, EventError)]
    except ValueError:  # JSON Lines (or a file too deep: then each line is judged on its own)
        events, bad = parse_event_lines(text.splitlines(), path.name)
        errors = [reason for _, reason in bad]
    for error in errors:
        _say(f"INVALID {error}")
    plain = [{"id": e.event_id, "source": e.source, "type": e.type, "subject": e.subject, "time": e.time,
              "data": e.data} for e in events]
    for event, plan in zip(plain, dry_run(open_store(paths.store), rules, plain), strict=True):
        _say(f"event {event['id']} ({event['type']} from {event['source']}): {plan.status}"
             + (f" lead {plan.lead_id}" if plan.lead_id else "") + (f" — {plan.error}" if plan.error else ""))
        for rule in plan.fired:
            _say(f"  rule {rule} fires")
        for change in plan.changes:
            _say(f"    {change.lead_id} {change.field}: {change.old or '—'} → {change.new or '—'}  [{change.rule}]")
        for conflict in plan.conflicts:
            _say(f"    conflict queued: {conflict['field']} {conflict['current_value']} vs "
                 f"{conflict['incoming_value']}  [{conflict['rule']}]")
        for flag in plan.flags:
            _say(f"    {flag['channel']} {flag['value']} marked {flag['status']}  [{flag['rule']}]")
        for held in plan.held:
            _say(f"    {held['field']} not replaced ({held['outcome']}): {held['reason']}")
        for note in plan.notes:
            _say(f"    notify: {note['message']}  [{note['rule']}]")
    _say("(dry run: nothing was changed)")
    return 1 if errors else 0


def cmd_link(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.links import make_link
    from datafactory_pipelines.store import open_store

    link = make_link(open_store(paths.store), args.channel, args.to, lead_id=args.lead, utm_source=args.utm_source,
                     utm_medium=args.utm_medium, utm_campaign=args.utm_campaign, base_url=args.base_url,
                     created_by=args.by)
    _say(link.url)
    return 0


def cmd_apply_events(args: argparse.Namespace, paths: Paths) -> int:
    import dagster as dg

    from datafactory_pipelines.cli import _dagster_home
    from datafactory_pipelines.events.feed import event_counts
    from datafactory_pipelines.store import open_store
    from sensors.events import process_event_feed

    _dagster_home(paths)
    os.environ.setdefault("DATAFACTORY_INBOX_SETTLE_SECONDS", "0")
    with dg.DagsterInstance.get() as instance:
        runs = process_event_feed(instance, progress=_say)
    failed = [r for r in runs if not r.success]
    for run in runs:
        if run.success:
            meta = run.asset_materializations_for_node("lead_events")[0].metadata
            _say(f"  events {meta['first_seq'].value}..{meta['last_seq'].value}: {meta['events'].value} applied, "
                 f"{meta['field_changes'].value} field change(s), {meta['conflicts_queued'].value} conflict(s)")
    counts = event_counts(open_store(paths.store))
    if len(counts):
        _say("event table:")
        for row in counts.itertuples():
            _say(f"  {row.type:<24} {row.status:<10} {row.n}")
    _say(f"{len(runs) - len(failed)} batch(es) applied, {len(failed)} failed")
    return 1 if failed else 0


def add_event_commands(sub: argparse._SubParsersAction) -> None:
    from datafactory_pipelines.cli_keys import add_keys_parser

    add_keys_parser(sub)
    user = os.environ.get("USER", "cli")
    p = add_command(sub, "serve", "event ingress (POST /events) and tracking links (/t/<code>) over HTTP",
                    description="Serve POST /events (CloudEvents from other systems, stored idempotently on source "
                                "+ id) and GET/HEAD /t/<code> (tracking links) on one port. Callers present "
                                "DATAFACTORY_API_TOKEN (the admin key, any source) or a key from `datafactory "
                                "keys add` (only its sources); with neither configured it listens on loopback only. "
                                "Also the operators' console under /console (see docs/console.md).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787)")
    p.add_argument("--log-level", default="warning", help="uvicorn's log level (default warning)")
    p.add_argument("--ssl-certfile", help="TLS certificate (PEM): needed to serve the console beyond 127.0.0.1")
    p.add_argument("--ssl-keyfile", help="TLS private key (PEM), with --ssl-certfile")
    p.add_argument("--behind-proxy", action="store_true",
                   help="a TLS-terminating reverse proxy forwards to this server: allow a non-loopback --host "
                        "without TLS here, mark cookies Secure and trust its X-Forwarded-* headers")
    p.add_argument("--dispatch", action="store_true",
                   help="also apply stored events and deliver notifications at once (the notification "
                        "dispatcher; DATAFACTORY_DISPATCH=1 does the same): see docs/notifications-deployment.md")
    p.set_defaults(func=cmd_serve)

    p = add_command(sub, "rules", "list the rules, check every rule file, or dry-run events through them")
    actions = p.add_subparsers(dest="action", required=True, metavar="{list,check,test}")
    add_command(actions, "list", "the rules in force (shipped, then $DATAFACTORY_HOME/rules/*.yaml), and the "
                                 "problems of any file left out")
    add_command(actions, "check", "check every rule file and name every problem with its file and line")
    q = add_command(actions, "test", "dry-run events through the rules: what would change, nothing is written")
    q.add_argument("event_file", help="EVENT.json: one event, a JSON array, or JSON Lines")
    p.set_defaults(func=cmd_rules, event_file=None)

    p = add_command(sub, "link", "make a signed tracking link to an allowed target")
    actions = p.add_subparsers(dest="action", required=True, metavar="{make}")
    q = add_command(actions, "make", "make a signed tracking link (/t/<code>) to an allowed target and print it")
    q.add_argument("--channel", required=True, help="where the link is published (the source a click records)")
    q.add_argument("--to", required=True, help="target URL; its host must be on DATAFACTORY_LINK_HOSTS")
    q.add_argument("--lead", help="the lead this link is for (a click then touches that lead)")
    q.add_argument("--utm-source", default="", help="utm_source added to the target (e.g. wechat)")
    q.add_argument("--utm-medium", default="", help="utm_medium added to the target (e.g. social)")
    q.add_argument("--utm-campaign", default="", help="utm_campaign added to the target (e.g. expo2026)")
    q.add_argument("--base-url", help="public base of the server (default $DATAFACTORY_PUBLIC_URL or "
                                      "http://127.0.0.1:8787)")
    q.add_argument("--by", default=user, help="who made the link (kept with it; default $USER)")
    p.set_defaults(func=cmd_link)

    p = add_command(sub, "apply-events", "apply the waiting events through the rules, via Dagster, once",
                    description="Apply every received event through the rules, in batches, as the Dagster job "
                                "apply_lead_events (the runs show in the Dagster UI); print what each batch changed.")
    p.set_defaults(func=cmd_apply_events)
