"""`datafactory restore` and `datafactory restore-backup`: shown first, done only when confirmed.

Each prints what it will do (a restore is run and rolled back to find out: restore_preview), then asks
`go ahead? [y/N]` on a terminal. `--yes` goes ahead without asking; `--dry-run` only shows. Without a
terminal (CI, cron, a pipe) and without `--yes` it refuses: a restore is never confirmed by default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.config import Paths


class NotConfirmed(ValueError):
    """A restore that needs a yes it did not get."""


def _say(text: str) -> None:
    print(text, flush=True)


def confirmed(lines: list[str], args: argparse.Namespace) -> bool:
    """Show the plan; True when it is to be done now."""
    for line in lines:
        _say(line)
    if args.dry_run:
        _say("dry run: nothing was written")
        return False
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise NotConfirmed("not done: no terminal to ask for confirmation; run again with --yes to go ahead "
                           "(or --dry-run to only see the plan)")
    answer = input("go ahead? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        _say("not done")
        return False
    return True


def _add_confirm_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="go ahead without asking")
    parser.add_argument("--dry-run", action="store_true", help="show what it would do; write nothing")


def cmd_restore(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.decisions import DecisionError
    from datafactory_pipelines.restore import (
        restore_all_as_of,
        restore_lead_as_of,
        undo_import,
        undo_restore,
        utc_naive,
    )
    from datafactory_pipelines.restore_preview import preview
    from datafactory_pipelines.store import open_store

    store = open_store(paths.store)
    run: Callable
    if args.list:
        for row in store.restores().itertuples():
            state = f"taken back {row.undone_at:%Y-%m-%d %H:%M} by {row.undone_by}" if row.undone_by else "in force"
            _say(f"{row.restore_id}  {row.kind} {row.target}  by {row.done_by} at {row.done_at:%Y-%m-%d %H:%M}  "
                 f"{state}")
        return 0
    if args.undo_restore:
        what = f"take back restore {args.undo_restore}"
        def run() -> object:
            return undo_restore(store, args.undo_restore, by=args.by)
    elif args.undo_import:
        what = f"undo import {args.undo_import}"
        def run() -> object:
            return undo_import(store, args.undo_import, by=args.by)
    elif args.as_of:
        try:
            moment = utc_naive(args.as_of)
        except (ValueError, TypeError) as err:
            raise DecisionError(f"--as-of {args.as_of!r:.60}: not a time ({err})") from None
        if args.lead:
            what = f"restore {args.lead} as of {moment:%Y-%m-%d %H:%M:%S} UTC"
            def run() -> object:
                return restore_lead_as_of(store, args.lead, moment, by=args.by)
        else:
            what = f"restore everything as of {moment:%Y-%m-%d %H:%M:%S} UTC"
            def run() -> object:
                return restore_all_as_of(store, moment, by=args.by)
    else:
        raise DecisionError("restore needs --undo-import IMPORT_ID, --as-of TIME or --undo-restore RESTORE_ID")

    if not args.yes or args.dry_run:  # with --yes it is done at once, and its report says what it did
        plan = preview(store, what, run)
        if not confirmed(plan.lines(), args):
            return 0
    report = run()
    if args.undo_restore:
        _say(f"done: {what}: {len(report.imports_undone)} import(s) live again, {-report.records_retired} "
             "record(s) back in linkage; the field values it set gave way")
        return 0
    _say(f"done: {what}: {len(report.imports_undone)} import(s) undone, {report.records_retired} record(s) "
         f"taken out, {len(report.leads_retired)} lead(s) retired, {report.fields_restored} field(s) restored, "
         f"{report.conflicts_closed} conflict(s) closed")
    _say(f"restore id {report.restore_id} (take it back: datafactory restore --undo-restore {report.restore_id})")
    for lead, name in report.contested:
        _say(f"  {lead} {name}: changed again after that import; kept, and queued as a conflict")
    return 0


def cmd_restore_backup(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.backup import BackupError, check_backup, find_backup, restore_backup
    from datafactory_pipelines.store import open_store, store_label

    store = open_store(paths.store)
    try:
        choice = find_backup(args.dir)
        if args.list:
            for folder in [choice.folder, *choice.others]:
                _say(str(folder))
            return 0
        verified = check_backup(choice.folder, store)
    except BackupError as err:
        print(f"datafactory: backup refused: {err}", file=sys.stderr)
        return 1
    lines = verified.summary()
    if choice.others:
        lines.append(f"  the newest of {len(choice.others) + 1} backups under {args.dir}; others: "
                     + ", ".join(p.name for p in choice.others[:5]) + (" …" if len(choice.others) > 5 else "")
                     + " (name one to restore it instead)")
    lines.append(f"  into {store_label(paths.store)} (it must be empty)")
    if verified.target_holds_data:
        for line in lines:
            _say(line)
        raise ValueError(f"{store_label(paths.store)} is not empty; restore a backup into a new store")
    if not confirmed(lines, args):
        return 0
    try:
        result = restore_backup(choice.folder, store, verified)
    except BackupError as err:
        print(f"datafactory: backup refused: {err}", file=sys.stderr)
        return 1
    _say(f"restored into {store_label(paths.store)}: " + ", ".join(f"{k} {v}" for k, v in result["tables"].items())
         + f"; every file, row count and the history chain verified (head {result['history_head'][:12]}…)")
    return 0


def add_restore_commands(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "restore", "undo an import, or bring one lead or everything back to a time",
                    description="Undo an import (its records taken out, the leads it created retired, what it "
                                "changed put back), or bring one lead or every lead back to their values at a "
                                "time. Written as new history; nothing old is rewritten. What it will do is "
                                "shown first (the restore is run and rolled back); it asks before doing it, or "
                                "takes --yes; --dry-run only shows.")
    p.add_argument("--undo-import", metavar="IMPORT_ID")
    p.add_argument("--as-of", metavar="TIME", help="e.g. '2026-11-25 14:00' (UTC), or with a zone: "
                                                   "'2026-11-25T22:00+08:00'")
    p.add_argument("--lead", metavar="LEAD_ID")
    p.add_argument("--undo-restore", metavar="RESTORE_ID", help="take a restore back, as if it never happened")
    p.add_argument("--list", action="store_true", help="every restore with its id, newest last")
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who restores (kept in the history)")
    _add_confirm_flags(p)
    p.set_defaults(func=cmd_restore)

    p = add_command(sub, "restore-backup", "rebuild an empty store from a backup, verified in full first",
                    description="Rebuild an empty store from a backup. Every table, file, row count, the history "
                                "chain and (with DATAFACTORY_BACKUP_KEY set) the manifest's signature are checked "
                                "before one row is written; what will be restored is shown first.")
    p.add_argument("dir", help="a backup folder (ROOT/<timestamp>), or the ROOT `backup` wrote: its newest")
    p.add_argument("--list", action="store_true", help="list the backups under ROOT, newest first")
    _add_confirm_flags(p)
    p.set_defaults(func=cmd_restore_backup)
