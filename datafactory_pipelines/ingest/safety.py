"""Hostile spreadsheets harm nothing: an .xlsx is a zip, checked before any reader unpacks it.

A zip bomb (a few MB on disk, gigabytes unpacked) would otherwise make the reader allocate all of it.
Before reading, the zip directory's uncompressed sizes are checked against stated limits; then every
XML part is streamed once (1 MiB at a time, so memory stays bounded whatever the file) to confirm the
directory told the truth (zipfile stops at the declared size and checks the CRC), that no cell's text is
longer than the cell limit, and that no part declares a DTD (XXE, billion laughs). Limits, in bytes,
can be changed by environment variables:

- DATAFACTORY_XLSX_MAX_PART_BYTES (default 512 MiB): any one part (a sheet, sharedStrings)
- DATAFACTORY_XLSX_MAX_TOTAL_BYTES (default 2 GiB): all parts together
- DATAFACTORY_XLSX_MAX_CELL_BYTES (default 256 KiB): the text of one cell (Excel allows 32,767
  characters; at up to 4 bytes each plus XML escapes that stays below 256 KiB)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from datafactory_pipelines.ingest.errors import IngestError

MiB = 1 << 20
DEFAULT_MAX_PART_BYTES = 512 * MiB
DEFAULT_MAX_TOTAL_BYTES = 2048 * MiB
DEFAULT_MAX_CELL_BYTES = 256 * 1024
_CHUNK = MiB
_LT = ord("<")


def _limit(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _size(n: int) -> str:
    return f"{n / MiB:,.1f} MB" if n >= MiB else f"{n:,} bytes"


def check_zip_container(path: Path) -> set[str]:
    """Raise IngestError when the .xlsx (or any zip spreadsheet) would unpack beyond the limits.

    Returns the parts that hold merged cells (<mergeCell>), seen on the way for free: the reader then
    knows whether to look for them at all."""
    max_part = _limit("DATAFACTORY_XLSX_MAX_PART_BYTES", DEFAULT_MAX_PART_BYTES)
    max_total = _limit("DATAFACTORY_XLSX_MAX_TOTAL_BYTES", DEFAULT_MAX_TOTAL_BYTES)
    max_cell = _limit("DATAFACTORY_XLSX_MAX_CELL_BYTES", DEFAULT_MAX_CELL_BYTES)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return set()  # not a readable zip: the reader says "cannot be opened as a spreadsheet"
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        for member in members:
            if member.file_size > max_part:
                raise IngestError(path.name, f"its part {member.filename} unpacks to {_size(member.file_size)} "
                                             f"(packed {_size(member.compress_size)}), above the limit of "
                                             f"{_size(max_part)} (DATAFACTORY_XLSX_MAX_PART_BYTES); refused unread")
        total = sum(m.file_size for m in members)
        if total > max_total:
            raise IngestError(path.name, f"unpacks to {_size(total)}, above the limit of {_size(max_total)} "
                                         "(DATAFACTORY_XLSX_MAX_TOTAL_BYTES); refused unread")
        merged = set()
        for member in members:
            if member.filename.lower().endswith((".xml", ".rels", ".vml")) \
                    and _scan_part(path, archive, member, max_cell):
                merged.add(member.filename)
        return merged


def _scan_part(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo, max_cell: int) -> bool:
    """Stream one XML part: the longest run of text between tags, and no DTD; bounded memory. True when
    the part lists merged cells."""
    run = 0  # length of the text run still open at the end of the previous chunk
    tail = b""
    merges = False
    try:
        with archive.open(member) as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                window = tail + chunk
                if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                    raise IngestError(path.name, f"its part {member.filename} declares a DTD (<!DOCTYPE/<!ENTITY>); "
                                                 "spreadsheets never need one, so it is refused unread")
                merges = merges or b"<mergeCell " in window
                tail = chunk[-16:]
                tags = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == _LT)
                if tags.size == 0:
                    run += len(chunk)
                else:
                    gaps = np.diff(tags) - 1
                    longest = max(run + int(tags[0]), int(gaps.max()) if gaps.size else 0)
                    run = len(chunk) - int(tags[-1]) - 1
                    if longest > max_cell:
                        _too_long(path, member, longest, max_cell)
                if run > max_cell:
                    _too_long(path, member, run, max_cell)
    except zipfile.BadZipFile as exc:  # the directory lied about the size, or the data is damaged
        raise IngestError(path.name, f"its part {member.filename} is damaged or larger than its zip directory "
                                     f"says ({exc})") from exc
    return merges


def _too_long(path: Path, member: zipfile.ZipInfo, length: int, max_cell: int) -> None:
    raise IngestError(path.name, f"its part {member.filename} holds a text of at least {_size(length)} in one "
                                 f"cell, above the limit of {_size(max_cell)} (DATAFACTORY_XLSX_MAX_CELL_BYTES); "
                                 "refused")
