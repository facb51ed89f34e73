"""`datafactory keys add|list|revoke`: API keys for the systems that send events (see api_keys.py)."""

from __future__ import annotations

import argparse
import os

from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.config import Paths


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_keys(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.api_keys import ApiKeyError, add_key, keys_path, read_keys, revoke_key

    path = keys_path(paths.home)
    if args.action == "add":
        if not args.name:
            raise ApiKeyError("keys add needs NAME")
        scopes = [s for group in args.scopes for s in group.split(",") if s] or ["events:write"]
        key = add_key(path, args.name, args.source or [], scopes, by=args.by)
        _say(f"API key {args.name} for source(s) {', '.join(args.source)} ({', '.join(scopes)}):")
        _say(key)
        _say(f"Shown this once: only its SHA-256 is kept (in {path}). Send it as `Authorization: Bearer …`.")
        return 0
    if args.action == "list":
        keys = read_keys(path)
        if not keys:
            _say(f"no API keys in {path}")
        for key in keys:
            state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
            _say(f"{key.name:<20} {state:<32} sources: {', '.join(key.sources)}  scopes: {', '.join(key.scopes)}"
                 f"  (made {key.created_at} by {key.created_by}, sha256 {key.sha256[:12]}…)")
        return 0
    if not args.name:
        raise ApiKeyError("keys revoke needs NAME")
    revoke_key(path, args.name)
    _say(f"revoked API key {args.name}: the server refuses it from the next request")
    return 0


def add_keys_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "keys", "API keys per sending system: which event sources each may send",
                    description="Make, list and revoke the API keys other systems send events with. A key may "
                                "send only for the sources it names; only its SHA-256 is kept (in "
                                "$DATAFACTORY_API_KEYS, default $DATAFACTORY_HOME/api_keys.json). "
                                "DATAFACTORY_API_TOKEN stays the admin key (any source).")
    actions = p.add_subparsers(dest="action", required=True, metavar="{add,list,revoke}")
    q = add_command(actions, "add", "make a key for a sending system and print it once")
    q.add_argument("name", help="the sending system, e.g. crm or app")
    q.add_argument("--source", action="append", required=True,
                   help="a CloudEvents `source` this key may send events for (repeat for several)")
    q.add_argument("--scopes", action="append", default=[], help="what the key may do: events:write (the default)")
    q.add_argument("--by", default=os.environ.get("USER", "cli"), help="who made the key (default $USER)")
    add_command(actions, "list", "every key: name, sources, scopes, active or revoked (never the key itself)")
    q = add_command(actions, "revoke", "revoke a key: the server refuses it from the next request")
    q.add_argument("name", help="the key's name")
    p.set_defaults(func=cmd_keys, name=None, source=None)
