"""Masking personal data (phones, emails, IDs, names) before it reaches logs or run metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

from datafactory_pipelines.fields import MASK_OF, PERSONAL_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PERSONAL_COLUMNS", "mask_frame", "mask_value"]


def mask_value(column: str, value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    if not text:
        return ""
    if ";" in text:
        return ";".join(mask_value(column, v) for v in text.split(";"))
    kind = MASK_OF.get(column, "digits")
    if kind == "email" and "@" in text:
        local, domain = text.split("@", 1)
        return f"{local[:1]}***@{domain}"
    if kind == "name":
        return text[:1] + "*" * max(1, len(text) - 1)
    if kind == "address":
        return text[:6] + "…" if len(text) > 6 else text
    if len(text) >= 7:
        return f"{text[:3]}****{text[-4:]}" if len(text) >= 11 else f"{text[:2]}***{text[-2:]}"
    return text[:1] + "***"


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every personal column masked; other columns unchanged."""
    masked = frame.copy()
    for col in masked.columns:
        base = col.removesuffix("_raw")
        if base in PERSONAL_COLUMNS:
            masked[col] = [mask_value(base, v) for v in masked[col]]
    return masked
