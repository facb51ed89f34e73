"""What in the drop folder is a lead file ready to import."""

from __future__ import annotations

import time
from pathlib import Path

from datafactory_pipelines.ingest.readers import SUPPORTED_SUFFIXES

IGNORED_PREFIXES = ("~$", ".", "._")  # Excel lock files, hidden files, macOS resource forks
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".error.txt")


def ignored_reason(name: str) -> str:
    """Why the inbox leaves a file alone, or "" when it does not. Ignored files are reported, never imported."""
    if name.startswith("~$"):
        return "an Excel lock file (its workbook is open in Excel; close it, or delete the lock file)"
    if name.startswith("."):
        return "a hidden file (its name starts with '.'); rename it without the leading dot to import it"
    lowered = name.lower()
    if lowered.endswith(".error.txt"):
        return "a rejection reason file; it belongs in rejected/"
    if lowered.endswith((".tmp", ".part", ".crdownload")):
        return "an unfinished download or copy; it is imported once it gets its final name"
    return ""


def is_candidate(path: Path) -> bool:
    return path.is_file() and not ignored_reason(path.name)


def ignored_files(inbox: Path) -> list[tuple[str, str]]:
    """(name, reason) of every file in the inbox that will not be imported as it is named."""
    if not inbox.exists():
        return []
    return sorted((p.name, ignored_reason(p.name)) for p in inbox.iterdir() if p.is_file() and ignored_reason(p.name))


def is_settled(path: Path, settle_seconds: float, now: float | None = None) -> bool:
    """A file still being copied in keeps changing; wait until it has been quiet a moment."""
    return (now or time.time()) - path.stat().st_mtime >= settle_seconds


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def inbox_files(inbox: Path, settle_seconds: float = 2.0) -> list[Path]:
    if not inbox.exists():
        return []
    return sorted(p for p in inbox.iterdir() if is_candidate(p) and is_settled(p, settle_seconds))
