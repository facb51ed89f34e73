"""Small inline SVG bar charts (no script, no external file): one group of bars per day."""

from __future__ import annotations

from datetime import date, timedelta

from markupsafe import Markup, escape

COLOURS = ("#2f6fb0", "#d9822b", "#3a9a5b", "#a33")


def daily_bars(rows: list[dict], series: list[tuple[str, str]], days: int, today: date,
               width: int = 520, height: int = 140) -> Markup:
    """rows: dicts with `day` and one count per series key; series: (key, label). The last `days` days."""
    by_day = {str(r["day"]): r for r in rows}
    span = [today - timedelta(days=days - 1 - i) for i in range(days)]
    values = [[int(by_day.get(str(d), {}).get(key) or 0) for d in span] for key, _ in series]
    top = max([1, *(v for vs in values for v in vs)])
    plot_h, left = height - 34, 34
    slot = (width - left) / days
    bar = max(1.0, (slot - 2) / len(series))
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{plot_h}" x2="{width}" y2="{plot_h}" stroke="#999"/>',
             f'<text x="{left - 4}" y="10" font-size="10" text-anchor="end">{top}</text>',
             f'<text x="{left - 4}" y="{plot_h}" font-size="10" text-anchor="end">0</text>']
    for i, day in enumerate(span):
        for s, vs in enumerate(values):
            h = vs[i] / top * (plot_h - 12)
            x = left + i * slot + 1 + s * bar
            parts.append(f'<rect x="{x:.1f}" y="{plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{COLOURS[s % len(COLOURS)]}"><title>{day:%m-%d} '
                         f'{escape(series[s][1])}: {vs[i]}</title></rect>')
        if i % max(1, days // 7) == 0:
            parts.append(f'<text x="{left + i * slot:.1f}" y="{plot_h + 12}" font-size="9">{day:%m-%d}</text>')
    for s, (_, label) in enumerate(series):
        x = left + s * 110
        parts.append(f'<rect x="{x}" y="{height - 10}" width="8" height="8" fill="{COLOURS[s % len(COLOURS)]}"/>'
                     f'<text x="{x + 11}" y="{height - 2}" font-size="10">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
