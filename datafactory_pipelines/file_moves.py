"""Moving dropped files after an import: rejected (with the reason beside it), archived by import id, or set
aside as a duplicate; names kept within the file system's limit."""

from __future__ import annotations

import hashlib
import logging
import shutil
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)


#: the longest file name (in bytes) most file systems allow
MAX_NAME_BYTES = 255


def fit_name(name: str, suffix: str = "", limit: int = MAX_NAME_BYTES) -> str:
    """`name + suffix`, shortened when it would pass the file system's limit: the stem is cut at a character
    boundary and given a short hash of the whole name, so the same name always gets the same short name."""
    if len((name + suffix).encode("utf-8")) <= limit:
        return name + suffix
    stem, ext = Path(name).stem, Path(name).suffix
    tag = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    room = max(0, limit - len((tag + ext + suffix).encode("utf-8")))
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore") + tag + ext + suffix


def reject_file(path: Path, rejected_dir: Path, error: str) -> Path:
    """Move a file that cannot be imported aside, with NAME.error.txt saying why (a shortened name when
    NAME.error.txt would be too long for the file system; the text names the file in full)."""
    rejected_dir.mkdir(parents=True, exist_ok=True)
    target = _free_name(rejected_dir / path.name)
    shutil.move(str(path), target)
    reason_file(target).write_text(
        f"{path.name} was not imported.\n\n{error}\n\nFix the file and drop it into the inbox again.\n",
        encoding="utf-8",
    )
    return target


def reason_file(rejected: Path) -> Path:
    """Where the reason for a rejected file is written: NAME.error.txt, shortened if need be."""
    return rejected.with_name(fit_name(rejected.name, ".error.txt"))


def archive_file(path: Path, processed_dir: Path, import_id: str) -> Path:
    """Move an imported file to processed/, named by its import id so the same name never collides."""
    processed_dir.mkdir(parents=True, exist_ok=True)
    target = processed_dir / f"{import_id}{path.suffix.lower()}"
    if target.exists():
        path.unlink()
        return target
    shutil.move(str(path), target)
    return target


def file_duplicate(path: Path, processed_dir: Path) -> Path:
    """Move a file whose content was imported before to processed/duplicates/, keeping its name."""
    folder = processed_dir / "duplicates"
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder / path.name)
    shutil.move(str(path), target)
    return target


def _free_name(target: Path) -> Path:
    if not target.exists():
        return target
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return target.with_name(fit_name(f"{target.stem}.{stamp}{target.suffix}"))
