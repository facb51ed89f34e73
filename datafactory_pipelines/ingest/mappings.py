"""Column mappings an operator pins for a source, kept in $DATAFACTORY_HOME/mappings.yaml.

    sources:
      CRM客户导出:                 # the source: the file name without dates, numbers and copies
        客户名称: name
        单位名称: company
        负责人: owner

A pinned column wins over what header and content say; the next file from the same source (e.g.
"CRM客户导出_20261203.xlsx") gets the same mapping.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from datafactory_pipelines import CANONICAL_FIELDS

FILE_NAME = "mappings.yaml"
ROLES = (*CANONICAL_FIELDS, "owner", "referrer", "contact", "extra")
_DATES_AND_COPIES = re.compile(r"[\s_\-.()（）]*(?:\d{4}[-_.年]?\d{1,2}[-_.月]?\d{1,2}日?|\d+|副本|copy)[\s_\-.()（）]*",
                               re.IGNORECASE)


def source_key(file_name: str) -> str:
    """'CRM客户导出_2026-12-03 (2).xlsx' -> 'CRM客户导出': files from one source share it."""
    stem = Path(file_name).stem
    return _DATES_AND_COPIES.sub("", stem).strip(" _-.") or stem


def mappings_path(home: str | Path) -> Path:
    return Path(home) / FILE_NAME


def load_mappings(home: str | Path | None) -> dict[str, dict[str, str]]:
    if home is None:
        return {}
    path = mappings_path(home)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    sources = data.get("sources") or {}
    if not isinstance(sources, dict):
        raise ValueError(f"{path}: 'sources' must map a source name to columns")
    out: dict[str, dict[str, str]] = {}
    for source, columns in sources.items():
        for header, role in (columns or {}).items():
            if role not in ROLES:
                raise ValueError(f"{path}: source {source!r}, column {header!r}: unknown role {role!r} "
                                 f"(one of {', '.join(ROLES)})")
        out[str(source)] = {str(h): str(r) for h, r in (columns or {}).items()}
    return out


def pinned_for(file_name: str, mappings: dict[str, dict[str, str]]) -> dict[str, str]:
    return mappings.get(source_key(file_name), {})


def pin_mapping(home: str | Path, source: str, columns: dict[str, str]) -> Path:
    """Remember `columns` (header -> role) for `source`, merged into what is already pinned."""
    for header, role in columns.items():
        if role not in ROLES:
            raise ValueError(f"column {header!r}: unknown role {role!r} (one of {', '.join(ROLES)})")
    path = mappings_path(home)
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
    sources = data.setdefault("sources", {})
    sources.setdefault(source, {}).update(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
