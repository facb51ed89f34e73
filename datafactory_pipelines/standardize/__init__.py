"""Standardizing lead values: one module per kind of value, and `standardize_frame` (frame.py) for whole files.

`standardize_frame` is loaded on first use: it brings every field's tables (pinyin, regions, …), while a
single edited value needs only its own field's module (see decisions.standardized_value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datafactory_pipelines.fields import CONTACT_COLUMNS, STANDARD_COLUMNS

if TYPE_CHECKING:
    from datafactory_pipelines.standardize.frame import standardize_frame


def __getattr__(name: str) -> Any:
    if name == "standardize_frame":
        from datafactory_pipelines.standardize.frame import standardize_frame

        return standardize_frame
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CONTACT_COLUMNS", "STANDARD_COLUMNS", "standardize_frame"]
