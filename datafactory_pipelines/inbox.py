"""What in the drop folder is a lead file ready to import."""

from __future__ import annotations

import time
from pathlib import Path

from datafactory_pipelines.ingest.readers import SUPPORTED_SUFFIXES

IGNORED_PREFIXES = ("~$", ".", "._")  # Excel lock files, hidden files, macOS resource forks
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".error.txt")


def is_candidate(path: Path) -> bool:
    name = path.name
    return path.is_file() and not name.startswith(IGNORED_PREFIXES) and not name.lower().endswith(IGNORED_SUFFIXES)


def is_settled(path: Path, settle_seconds: float, now: float | None = None) -> bool:
    """A file still being copied in keeps changing; wait until it has been quiet a moment."""
    return (now or time.time()) - path.stat().st_mtime >= settle_seconds


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def inbox_files(inbox: Path, settle_seconds: float = 2.0) -> list[Path]:
    if not inbox.exists():
        return []
    return sorted(p for p in inbox.iterdir() if is_candidate(p) and is_settled(p, settle_seconds))
