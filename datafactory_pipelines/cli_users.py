"""`datafactory users add|list|remove`: the console's accounts (datafactory_pipelines/console/users.py)."""

from __future__ import annotations

import argparse
import getpass
import sys

from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.config import Paths


def _say(text: str) -> None:
    print(text, flush=True)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:  # for scripts: the first line of stdin (never an argument: ps would show it)
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ; nothing was saved")
    return first


def cmd_users(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.console.users import UserBook

    book = UserBook(paths.home)
    if args.action == "list":
        for user in book.list():
            _say(f"{user.name}  {user.role}")
        return 0
    if not args.name:
        raise ValueError(f"users {args.action} needs NAME")
    if args.action == "remove":
        if not book.remove(args.name):
            raise ValueError(f"no user {args.name}")
        _say(f"removed {args.name} (signed-in sessions end when the server restarts)")
        return 0
    if not args.role:
        raise ValueError("users add needs --role viewer|operator|admin")
    user = book.add(args.name, args.role, _password(args), replace=args.replace)
    _say(f"{user.name} may now sign in to the console as {user.role} ({book.path})")
    return 0


def add_users_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "users", "console accounts: add NAME --role viewer|operator|admin, list, remove NAME",
                    description="Accounts of the operators' console. Passwords are asked for (twice) and kept "
                                "only as Argon2id hashes in $DATAFACTORY_HOME/console_users.json.")
    p.add_argument("action", choices=["add", "list", "remove"], help="add an account, list them, or remove one")
    p.add_argument("name", nargs="?", default="", help="the account's name (what the history says it did)")
    p.add_argument("--role", choices=["viewer", "operator", "admin"],
                   help="viewer: reads, phones and emails masked; operator: edits, decides, imports; "
                        "admin: also undoes imports and restores")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin instead of asking (for scripts)")
    p.add_argument("--replace", action="store_true", help="set a new password and role for an existing user")
    p.set_defaults(func=cmd_users)
