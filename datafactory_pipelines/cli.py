"""The `datafactory` command: the same code path as the Dagster assets, from a terminal.

Each command imports what it uses when it runs (pandas, the linkage engine, the readers, Dagster …):
`datafactory --help`, `lead show` and `lead set` start in a fraction of a second, whatever else ships.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from datafactory_pipelines.cli_events import add_event_commands
from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.cli_notify import add_notify_parser
from datafactory_pipelines.cli_restore import add_restore_commands
from datafactory_pipelines.cli_review import add_review_parser
from datafactory_pipelines.cli_services import add_services_command
from datafactory_pipelines.cli_users import add_users_parser
from datafactory_pipelines.config import Paths
from datafactory_pipelines.dagster_config import dagster_yaml, use_psycopg2, write_dagster_yaml
from datafactory_pipelines.fields import EXPORT_COLUMNS, FIELDS

LEAD_EXPORT_COLUMNS = EXPORT_COLUMNS
DAGSTER_YAML = dagster_yaml({})  # the SQLite one; kept for callers of the old constant (see dagster_config.py)


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_import(args: argparse.Namespace, paths: Paths) -> int:
    """Import files; `--map COLUMN=ROLE` pins roles for their source first (see ingest/mappings.py)."""
    from datafactory_pipelines.cli_reading import pin_columns
    from datafactory_pipelines.store import open_store

    files = [Path(f) for f in args.files]
    if args.dry_run:  # look before you import: read and describe, open no store, pin nothing, move nothing
        from datafactory_pipelines.cli_reading import say_preview

        return say_preview(paths, files, args.map)
    store = open_store(paths.store)
    if args.map:
        pin_columns(paths, files, args.map, args.source)
    # the whole change (save, link, curate, history) runs alone; a second writer waits, saying so
    with store.exclusive(f"import {', '.join(p.name for p in files[:3])}{' …' if len(files) > 3 else ''}"):
        code = _import_files(store, files, args.by)
    global _exit_at_once
    _exit_at_once = True  # saved, linked, committed and every connection closed (see `run`)
    return code


def _import_files(store, files: list[Path], by: str) -> int:
    from datafactory_pipelines.cli_reading import say_column_report
    from datafactory_pipelines.pipeline import import_files, import_workers, peak_rss_gb, relink_and_curate

    rejected = 0
    imported: list[str] = []
    rows = 0
    begun = last = time.perf_counter()
    workers = import_workers(len(files))
    if workers:
        _say(f"reading {len(files)} files in {workers} worker processes; saving each as it is ready …")
    for i, outcome in enumerate(import_files(store, files, imported_by=by, workers=workers), start=1):
        now = time.perf_counter()
        took, last = now - last, now
        path = outcome.path
        if outcome.status == "imported":
            imported.append(outcome.import_id or "")
            rows += outcome.rows_read
            _say(f"[{i}/{len(files)}] {path.name}: imported {outcome.rows_read} rows as {outcome.import_id} "
                 f"({outcome.rows_unreachable} unreachable) in {took:.1f}s; {rows} rows so far "
                 f"({now - begun:.0f}s, {rows / max(now - begun, 1e-9):,.0f} rows/s)")
            for reason, n in sorted(outcome.unreachable_reasons.items(), key=lambda kv: -kv[1])[:5]:
                _say(f"      {n:>6}  {reason}")
            say_column_report(store, outcome.import_id or "")
        elif outcome.status == "duplicate":
            _say(f"[{i}/{len(files)}] {path.name}: skipped, {outcome.error}")
        else:
            rejected += 1
            _say(f"[{i}/{len(files)}] {path.name}: REJECTED: {outcome.error}")
    _say(f"linking {rows} new rows and updating the leads they touch …")
    # no cause given: each lead's history names the imports of its own new records (at 100 files, the
    # joined ids were 2 KB in each of 4M history rows: most of the base import's write phase)
    result = relink_and_curate(store, actor=by, progress=lambda phase: _say(f"  … {phase}"))
    _say(f"leads: {result.active_leads} active, {result.changes.created} created, {result.changes.updated} updated, "
         f"{result.changes.merged} merged; {result.duplicates_found} duplicate records folded in "
         f"({result.path} path: {result.reason}; {sum(result.timings.values()):.1f}s)")
    _say("  phases: " + ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in result.timings.items())
         + f"; import {time.perf_counter() - begun:.0f}s in all, peak memory {peak_rss_gb():.2f} GB")
    return 1 if rejected else 0


def cmd_export(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.exporting import write_table
    from datafactory_pipelines.store import open_store

    store = open_store(paths.store)
    if args.what == "leads":
        table = store.leads()[LEAD_EXPORT_COLUMNS]
    elif args.what == "quarantine":
        table = store.quarantine()
    else:
        table = store.links()[["source_file", "sheet", "source_row", "lead_id", "import_id"]]
    out = write_table(table, args.out)
    _say(f"wrote {len(table)} {args.what} to {out}")
    return 0


def cmd_dedupe(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.exporting import read_table, write_table
    from datafactory_pipelines.linkage import load_config
    from datafactory_pipelines.pipeline import dedupe_frame

    started = time.perf_counter()
    table = read_table(args.input)
    _say(f"read {len(table)} records from {args.input}; standardizing and linking …")
    clusters = dedupe_frame(table, load_config(args.config) if args.config else None)
    write_table(clusters, args.out)
    _say(f"{clusters['cluster_id'].nunique()} clusters from {len(clusters)} records in "
         f"{time.perf_counter() - started:.1f}s -> {args.out}")
    return 0


def cmd_status(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.inbox import ignored_files
    from datafactory_pipelines.masking import mask_frame
    from datafactory_pipelines.store import open_store, store_label

    store = open_store(paths.store)
    counts = store.counts()
    _say(f"lead store: {store_label(paths.store)}")
    for key, value in counts.items():
        _say(f"  {key.replace('_', ' '):<22} {value}")
    ignored = ignored_files(paths.inbox)
    inbox = [p.name for p in paths.inbox.iterdir() if p.is_file()] if paths.inbox.exists() else []
    # files only: rejected/events/ holds the event lines set aside (counted by `apply-events`)
    rejected = [p.name for p in paths.rejected.glob("*") if p.is_file() and not p.name.endswith(".error.txt")]
    _say(f"  inbox                  {len(inbox) - len(ignored)} file(s) waiting")
    for name, reason in ignored:
        _say(f"  ignored in the inbox   {name}: {reason}")
    _say(f"  rejected               {len(rejected)} file(s)" + (f": {', '.join(rejected[:5])}" if rejected else ""))
    leads = store.leads()
    if len(leads):
        _say("largest curated leads (personal data masked):")
        top = mask_frame(leads.sort_values(["record_count", "lead_id"], ascending=[False, True]).head(5))
        for row in top.itertuples():
            _say(f"  {row.lead_id}  {row.name:<6} {row.mobile:<12} {row.email:<22} {row.company[:18]:<18} "
                 f"{row.record_count} records")
    imports = store.imports()
    if len(imports):
        _say(f"recent imports (all {len(imports)}: datafactory imports):")
        for line in _import_lines(imports.tail(5)):
            _say(line)
    return 0


def _import_lines(imports) -> list[str]:
    lines = []
    for row in imports.itertuples():
        undone_at = getattr(row, "undone_at", None)
        state = (f"UNDONE {undone_at:%Y-%m-%d %H:%M} by {row.undone_by}" if undone_at is not None
                 and str(undone_at) not in ("NaT", "None") else "imported")
        lines.append(f"  {row.imported_at:%Y-%m-%d %H:%M}  {row.import_id}  {state}  {row.rows_read} rows, "
                     f"{row.rows_unreachable} unreachable  ({row.file_name}, by {row.imported_by})")
    return lines


def cmd_imports(args: argparse.Namespace, paths: Paths) -> int:
    """Every import, oldest first, with its state: what `restore --undo-import ID` takes."""
    from datafactory_pipelines.store import open_store

    imports = open_store(paths.store).imports()
    if args.last:
        imports = imports.tail(args.last)
    if imports.empty:
        _say("no imports yet")
        return 0
    undone = int(imports["undone_at"].notna().sum()) if "undone_at" in imports else 0
    _say(f"{len(imports)} import(s), {undone} undone:")
    for line in _import_lines(imports):
        _say(line)
    return 0


def cmd_explain(args: argparse.Namespace, paths: Paths) -> int:
    """Why these records are one lead: each link, its weight, and what each field contributed."""
    from datafactory_pipelines.store import open_store

    store = open_store(paths.store)
    links = store.links()
    records = links[links["lead_id"] == args.lead_id]
    if records.empty:
        print(f"datafactory: no lead {args.lead_id}", file=sys.stderr)
        return 2
    _say(f"{args.lead_id}: {len(records)} record(s)")
    for row in records.itertuples():
        _say(f"  record {row.record_id}: {row.source_file} sheet {row.sheet} row {row.source_row}")
    ids = set(records["record_id"])
    shown = set()
    for record_id in sorted(ids):
        for link in store.match_links(int(record_id)).itertuples():
            key = (link.record_l, link.record_r)
            if key in shown or not {link.record_l, link.record_r} <= ids:
                continue
            shown.add(key)
            parts = ", ".join(f"{k} {v:+.1f}" for k, v in json.loads(link.contributions).items())
            _say(f"  {link.record_l} ~ {link.record_r}: weight {link.match_weight:+.1f} "
                 f"(p={link.match_probability:.4f}) = prior + {parts}")
    return 0


def cmd_conflicts(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.conflicts import conflict_groups
    from datafactory_pipelines.decisions import DecisionError, decide_group
    from datafactory_pipelines.operator_files import apply_operator_file
    from datafactory_pipelines.store import open_store
    from datafactory_pipelines.workbooks import export_conflicts

    store = open_store(paths.store)
    if args.action == "list":
        groups = conflict_groups(store.conflicts())
        if groups.empty:
            _say("no open conflicts")
        for g in groups.itertuples():
            _say(f"{g.group_id}  {g.field:<8} {g.kind:<13} source {g.source or '-'}  import {g.import_id}  "
                 f"{g.count} lead(s), oldest {g.oldest:%Y-%m-%d %H:%M}")
        return 0
    if args.action == "export":
        path, count = export_conflicts(store, args.target)
        _say(f"wrote {count} open conflict(s) to {path}")
        return 0
    if args.action == "apply":
        if not args.target:
            raise DecisionError("conflicts apply needs FILE: the filled-in decision workbook, or an edits sheet "
                                "(.xlsx or .csv with a 线索编号 column)")
        applied = apply_operator_file(store, Path(args.target), by=args.by, note=args.note)
        _say(f"applied {applied.count} {applied.kind} from {args.target}")
        return 0
    if not args.take:
        raise DecisionError("conflicts decide needs --take current|incoming|both")
    count = decide_group(store, args.target, args.take, by=args.by, note=args.note)
    _say(f"decided {count} conflict(s) in {args.target}: {args.take}")
    return 0


def cmd_lead(args: argparse.Namespace, paths: Paths) -> int:
    """Show one lead, after setting fields by hand (`set`): reads and writes that lead alone, without frames."""
    from datafactory_pipelines.decisions import DecisionError, edit_leads
    from datafactory_pipelines.store import open_store

    store = open_store(paths.store)
    if args.action == "set":
        edits = []
        for assignment in args.assignments:
            field, sep, value = assignment.partition("=")
            if not sep:
                raise DecisionError(f"expected field=value, got {assignment!r}")
            edits.append({"lead_id": args.lead_id, "field": field.strip(), "value": value})
        count = edit_leads(store, edits, by=args.by, note=args.note)
        _say(f"{args.lead_id}: {count} field(s) set by {args.by}")
    found = store.lead_rows([args.lead_id])
    if not found:
        raise DecisionError(f"no lead {args.lead_id}")
    lead = found[0]
    _say(f"{args.lead_id}  ({lead['status']}{' into ' + lead['merged_into'] if lead['merged_into'] else ''}), "
         f"{lead['record_count']} record(s), seen {lead['first_seen']} .. {lead['last_seen']}")
    for field in (f.name for f in FIELDS if f.lead and f.kind != "bookkeeping" and f.exported):
        if lead[field]:
            _say(f"  {field:<22} {lead[field]}")
    _say("source records (every value kept, with its status):")
    shown = ["mobile", "email"]
    columns = ["record_id", "source_file", "sheet", "source_row", "collected_at", "source", "name_raw", "title_raw",
               *(f"{f}_{part}" for f in shown for part in ("raw", "status"))]
    for row in store.lead_record_rows(args.lead_id, columns):
        values = "  ".join(f"{field} {row[field + '_raw']!r} ({row[field + '_status']})"
                           for field in shown if row[field + "_raw"])
        _say(f"  record {row['record_id']}: {row['source_file']} sheet {row['sheet']} row {row['source_row']}, "
             f"{row['collected_at'] or 'no date'}, {row['source'] or 'no source'}: {row['name_raw']} "
             f"{row['title_raw']}  {values}")
    overrides = store.override_rows(args.lead_id)
    if overrides:
        _say("decisions and edits:")
        for row in overrides:
            _say(f"  {row['decided_at']:%Y-%m-%d %H:%M} {row['field']} = {row['value']}  ({row['origin']} by "
                 f"{row['decided_by']}{': ' + row['note'] if row['note'] else ''})")
    return 0


def cmd_history(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.decisions import DecisionError
    from datafactory_pipelines.history import story
    from datafactory_pipelines.store import open_store

    rows = open_store(paths.store).history(args.lead_id)
    if rows.empty:
        raise DecisionError(f"no history for {args.lead_id}")
    for line in story(rows):
        _say(line)
    return 0


def cmd_verify_history(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.history import verify_chain
    from datafactory_pipelines.store import open_store

    check = verify_chain(open_store(paths.store).history())
    if check.ok:
        _say(f"history intact: {check.rows} rows, head {check.head}")
        return 0
    _say(f"history TAMPERED: row {check.first_bad_seq}: {check.reason}")
    return 1


def cmd_unmerge(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.restore import unmerge
    from datafactory_pipelines.store import open_store

    split = unmerge(open_store(paths.store), args.lead_id, by=args.by)
    _say(f"{args.lead_id}: split back out {', '.join(split)}; they will not be merged again")
    return 0


def cmd_backup(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.backup import backup
    from datafactory_pipelines.store import open_store

    folder = backup(open_store(paths.store), args.dir or paths.home / "backups")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    _say(f"backup written to {folder}: " + ", ".join(f"{k} {v['rows']}" for k, v in manifest["tables"].items())
         + f", history {manifest['history_rows']} rows (head {manifest['history_head'][:12]}…)")
    return 0


def _dagster_home(paths: Paths) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or paths.home / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    use_psycopg2(os.environ)  # DAGSTER_PG_URL=postgresql://… works here and in the Dagster processes we start
    write_dagster_yaml(home, os.environ)  # PostgreSQL when DAGSTER_PG_URL/_HOST is set, else SQLite
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_run_inbox(args: argparse.Namespace, paths: Paths) -> int:
    import dagster as dg

    from sensors.local_runner import process_inbox

    home = _dagster_home(paths)
    os.environ.setdefault("DATAFACTORY_INBOX_SETTLE_SECONDS", "0")
    with dg.DagsterInstance.get() as instance:
        report = process_inbox(instance, progress=_say)
    counts = {"imported": 0, "duplicate": 0, "applied": 0, "rejected": 0, "failed": 0}
    for run in report.runs:
        counts[run.status] += 1
        if run.status in ("rejected", "failed"):
            _say(f"  {'REJECTED' if run.status == 'rejected' else 'FAILED (tried again)'} {run.file or run.partition_key}"
                 f": {run.error}")
        elif run.status == "duplicate":
            _say(f"  DUPLICATE {run.file or run.partition_key}: same content as an earlier import; "
                 "filed under processed/duplicates")
    for name in report.duplicates:
        _say(f"  DUPLICATE {name}: same content as an earlier import; filed under processed/duplicates")
    for name, reason in report.rejected.items():
        _say(f"  REJECTED {name}: {reason}")
    for name, reason in report.ignored:
        _say(f"  IGNORED {name}: {reason}")
    duplicates = counts["duplicate"] + len(report.duplicates)
    rejected = counts["rejected"] + len(report.rejected)
    _say(f"{counts['imported']} file(s) imported, {duplicates} duplicate(s), {rejected} rejected (see {paths.rejected})"
         + (f", {counts['applied']} workbook(s) applied" if counts["applied"] else "")
         + (f", {len(report.ignored)} ignored" if report.ignored else "")
         + (f", {len(report.waiting)} waiting" if report.waiting else ""))
    failed = rejected
    cmd_status(args, paths)
    _say(f"\nOpen the Dagster UI on these runs:  {Path(sys.argv[0]).resolve()} ui   then http://127.0.0.1:3000"
         f"\n(the same as: DAGSTER_HOME={home} DATAFACTORY_HOME={paths.home} dagster dev)")
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.sample_data import write_sample_files

    sample = write_sample_files(paths.inbox, people=args.people, records=args.records, files=args.files,
                                seed=args.seed)
    _say(f"wrote {len(sample.files)} sample lead files ({args.records} rows about {args.people} people) "
         f"into {paths.inbox}")
    if args.exports:  # real-shaped exports: HTML/SpreadsheetML .xls, GBK CSV, owner and mixed columns …
        from datafactory_pipelines.sample_exports import write_export_files

        exports = write_export_files(paths.inbox, people=args.exports, seed=args.seed)
        _say(f"wrote {len(exports.files)} export-shaped files ({len(exports.truth)} rows about {args.exports} "
             f"other people) into {paths.inbox}")
    return cmd_run_inbox(args, paths)


def cmd_ui(args: argparse.Namespace, paths: Paths) -> int:
    home = _dagster_home(paths)
    os.environ["DATAFACTORY_HOME"] = str(paths.home)
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    _say(f"DAGSTER_HOME={home}; starting dagster dev on http://127.0.0.1:{args.port}")
    os.execv(dagster, [dagster, "dev", "-m", "datafactory_pipelines.definitions", "-p", str(args.port)])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datafactory", description=__doc__)
    parser.add_argument("--home", help="data folder (default $DATAFACTORY_HOME or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = add_command(sub, "import", "import lead files (.xlsx/.xls/.csv) and update the curated leads")
    p.add_argument("files", nargs="+")
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who is importing (kept with the import)")
    p.add_argument("--map", action="append", default=[], metavar="COLUMN=ROLE",
                   help="pin a column's role for the file's source (remembered in $DATAFACTORY_HOME/mappings.yaml): "
                        "e.g. --map 客户名称=name --map 负责人=owner --map 备注=extra")
    p.add_argument("--source", help="the source to pin --map for (default: the file name without dates/numbers)")
    p.add_argument("--dry-run", action="store_true",
                   help="write nothing: show for each sheet the column roles with their evidence, the first rows as "
                        "they will be read (masked), and how many rows are reachable, quarantined or skipped, and why "
                        "(--map applies to this look only)")
    p.set_defaults(func=cmd_import)

    p = add_command(sub, "export", "export curated leads, the row -> lead links, or the quarantined rows")
    p.add_argument("what", choices=["leads", "links", "quarantine"])
    p.add_argument("out", help="output file: .csv, .parquet or .xlsx")
    p.set_defaults(func=cmd_export)

    p = add_command(sub, "dedupe", "engine only: cluster a table (record_id + canonical columns, or any "
                                      "columns a --config names)")
    p.add_argument("input", help="CSV or Parquet with a record_id column")
    p.add_argument("--out", required=True, help="record_id,cluster_id as .csv or .parquet")
    p.add_argument("--config", help="linkage config YAML (default: the shipped lead model)")
    p.set_defaults(func=cmd_dedupe)

    p = add_command(sub, "conflicts", "conflicts between imports and golden records, decided in batches")
    p.add_argument("action", choices=["list", "export", "apply", "decide"],
                   help="list the open groups; export them to a workbook; apply a filled-in workbook or an "
                        "edits sheet; decide one group")
    p.add_argument("target", nargs="?", default="",
                   help="export: OUT.xlsx; apply: FILE.xlsx or edits .csv; decide: GROUP (e.g. G-1a2b3c4d)")
    p.add_argument("--take", choices=["current", "incoming", "both"],
                   help="decide: keep the lead's current value, take the incoming one, or keep both "
                        "(the other as an alternate)")
    p.add_argument("--by", default=os.environ.get("USER", "cli"),
                   help="who decides (kept with the decision; default $USER)")
    p.add_argument("--note", default="", help="why, in a few words (kept in the history)")
    p.set_defaults(func=cmd_conflicts)

    p = add_command(sub, "lead", "show one lead, or set its fields by hand")
    p.add_argument("action", choices=["show", "set"])
    p.add_argument("lead_id")
    p.add_argument("assignments", nargs="*", help="set: field=value …")
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who edits (kept with the edit)")
    p.add_argument("--note", default="", help="why, in a few words (kept in the history)")
    p.set_defaults(func=cmd_lead)

    p = add_command(sub, "history", "a lead's story: every change, who made it and why")
    p.add_argument("lead_id")
    p.set_defaults(func=cmd_history)

    p = add_command(sub, "verify-history", "walk the hash chain; name the first row that was tampered with")
    p.set_defaults(func=cmd_verify_history)

    add_restore_commands(sub)

    p = add_command(sub, "unmerge", "split the leads merged into LEAD_ID back out, with their own records")
    p.add_argument("lead_id")
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who splits (kept in the history)")
    p.set_defaults(func=cmd_unmerge)

    p = add_command(sub, "backup", "write every table as Parquet with a manifest (history in append-only chunks)")
    p.add_argument("dir", nargs="?", default=None, help="backup root (default $DATAFACTORY_HOME/backups)")
    p.set_defaults(func=cmd_backup)

    p = add_command(sub, "explain", "why a lead's records were linked: weights per field")
    p.add_argument("lead_id")
    p.set_defaults(func=cmd_explain)

    p = add_command(sub, "status", "what is in the lead store and the drop folders")
    p.set_defaults(func=cmd_status)

    p = add_command(sub, "imports", "every import with its id, state (imported or undone), rows and unreachable rows")
    p.add_argument("--last", type=int, default=0, metavar="N", help="only the N most recent imports")
    p.set_defaults(func=cmd_imports)

    p = add_command(sub, "run-inbox", "import the files waiting in the inbox through Dagster, once")
    p.set_defaults(func=cmd_run_inbox)

    p = add_command(sub, "demo", "generate sample lead files into the inbox and import them through Dagster")
    p.add_argument("--people", type=int, default=2000)
    p.add_argument("--records", type=int, default=5000)
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--exports", type=int, default=240, metavar="PEOPLE",
                   help="also write CRM/OA/form/trade-show shaped exports about this many people (0: none)")
    p.set_defaults(func=cmd_demo)

    p = add_command(sub, "ui", "open the Dagster UI (dagster dev) on this data folder")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)

    add_notify_parser(sub)
    add_review_parser(sub)
    add_event_commands(sub)  # serve, rules, link, apply-events
    add_users_parser(sub)  # the console's accounts
    add_services_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # warnings from the library (e.g. "waiting for another datafactory writer: …") reach the terminal
    logging.basicConfig(level=logging.WARNING, format="datafactory: %(message)s", stream=sys.stderr)
    paths = Paths.from_env(args.home)
    if not getattr(args, "dry_run", False):  # a dry run creates no folder either
        paths = paths.ensure()
    os.environ["DATAFACTORY_HOME"] = str(paths.home)
    from datafactory_pipelines.store.writer_lock import StoreBusyError

    try:
        return args.func(args, paths)
    except (ValueError, FileNotFoundError, KeyError, StoreBusyError) as exc:
        print(f"datafactory: {exc}", file=sys.stderr)
        return 2


# Set by a command whose work is all on disk when it returns (every store connection closed, no thread,
# nothing buffered but the terminal): the console script then leaves at once instead of tearing down.
_exit_at_once = False


def run() -> None:
    """The `datafactory` console script: `main`, then exit. After an import, without the interpreter's
    teardown: freeing a million-record import's frames and modules one by one took ~0.2 s of its wall time."""
    # `datafactory conflicts list | head` ends quietly, as other CLIs do. Here, not in `main`: a process that
    # calls `main` (the tests) would otherwise die of the signal when a socket of its own closes early
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    code = main()
    if _exit_at_once:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
