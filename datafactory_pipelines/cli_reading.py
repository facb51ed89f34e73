"""CLI helpers for reading files: pinning column roles and printing an import's column report."""

from __future__ import annotations

import json
from pathlib import Path

from datafactory_pipelines.config import Paths
from datafactory_pipelines.ingest.mappings import pin_mapping, source_key
from datafactory_pipelines.store import LeadStore


def parse_pins(pairs: list[str]) -> dict[str, str]:
    """['客户名称=name', '负责人=owner'] -> {'客户名称': 'name', '负责人': 'owner'}."""
    pins = {}
    for pair in pairs:
        column, sep, role = pair.partition("=")
        if not sep or not column.strip() or not role.strip():
            raise ValueError(f"--map {pair!r}: expected COLUMN=ROLE, e.g. 客户名称=name")
        pins[column.strip()] = role.strip()
    return pins


def pin_columns(paths: Paths, files: list[Path], pairs: list[str], source: str | None = None) -> None:
    pins = parse_pins(pairs)
    for key in sorted({source} if source else {source_key(f.name) for f in files}):
        written = pin_mapping(paths.home, key, pins)
        print(f"pinned for source {key!r}: " + ", ".join(f"{c} -> {r}" for c, r in pins.items())
              + f" ({written})", flush=True)


def column_report_lines(store: LeadStore, import_id: str) -> list[str]:
    """Each column with its role, confidence and a masked sample; warnings first; hidden sheets."""
    try:  # that import's row alone (a 100-file import read the whole table after every file)
        sheets = store.import_row(import_id)["sheets"]
    except ValueError:
        return []
    sheets = json.loads(sheets) if isinstance(sheets, str) else list(sheets)
    lines = []
    for sheet in sheets:
        if sheet.get("hidden"):
            lines.append(f"      sheet {sheet['name']!r}: hidden, skipped")
            continue
        if sheet.get("skipped"):
            lines.append(f"      sheet {sheet['name']!r}: skipped, {sheet['skipped']}")
            continue
        for warning in sheet.get("warnings", []):
            lines.append(f"      WARNING sheet {sheet['name']!r}: {warning}")
        for note in sheet.get("notes", []):
            lines.append(f"      note: {note}")
        for c in sheet.get("columns", []):
            evidence = str(c.get("evidence", ""))
            parts = evidence.split("; ", 2)  # header; content; the decision across columns
            why = "  (pinned by operator)" if evidence.startswith("pinned") else (
                f"  ({parts[2]})" if len(parts) == 3 else "")
            lines.append(f"      {c['column'][:18]:<18} -> {c['role']:<12} {c['confidence']:>4.0%}  {c['sample'][:40]}"
                         + why)
    return lines


def say_preview(paths: Paths, files: list[Path], pairs: list[str]) -> int:
    """`import --dry-run`: each file described as the import would read it; nothing written. Exit 1 when a
    file would be rejected."""
    from datafactory_pipelines.ingest.mappings import load_mappings, pinned_for
    from datafactory_pipelines.ingest.preview import preview_file

    pins = parse_pins(pairs)
    mappings = load_mappings(paths.home) if paths.home.exists() else {}
    rejected = 0
    for path in files:
        preview = preview_file(path, pinned={**pinned_for(path.name, mappings), **pins})
        rejected += bool(preview.error)
        for line in preview.lines():
            print(line, flush=True)
    print("dry run: nothing was imported, pinned or moved", flush=True)
    return 1 if rejected else 0


def say_column_report(store: LeadStore, import_id: str) -> None:
    for line in column_report_lines(store, import_id):
        print(line, flush=True)
