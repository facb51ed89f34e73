"""Metadata helpers: previews a person can read, with personal data masked."""

import dagster as dg
import pandas as pd

from datafactory_pipelines.masking import mask_frame


def preview(frame: pd.DataFrame, columns: list[str], rows: int = 10) -> dg.MarkdownMetadataValue:
    shown = [c for c in columns if c in frame.columns]
    return dg.MetadataValue.md(mask_frame(frame[shown].head(rows)).to_markdown(index=False))


def counts_table(counts: dict[str, int], key: str, value: str = "rows") -> dg.MarkdownMetadataValue:
    if not counts:
        return dg.MetadataValue.md("_none_")
    frame = pd.DataFrame({key: list(counts), value: list(counts.values())})
    return dg.MetadataValue.md(frame.to_markdown(index=False))


def bar_chart(labels: list[str], counts: list[int], label: str, value: str = "count",
              width: int = 30) -> dg.MarkdownMetadataValue:
    """A horizontal bar chart in Markdown, which the Dagster UI renders where it shows metadata."""
    if not counts:
        return dg.MetadataValue.md("_none_")
    top = max(max(counts), 1)
    rows = [f"| {name} | {n:,} | {'█' * max(1 if n else 0, round(width * n / top))} |"
            for name, n in zip(labels, counts, strict=True)]
    return dg.MetadataValue.md("\n".join([f"| {label} | {value} | |", "|---|---:|---|", *rows]))
