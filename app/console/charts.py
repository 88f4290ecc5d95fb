"""Server-rendered SVG charts for the console: no chart library, no script, readable without CSS.

Why SVG from the server: the console is server-rendered and must work without JavaScript; a few
bars and lines are cheaper to draw here than to ship a charting library. Every chart carries a
``<title>`` and ``aria-label`` so screen readers (and tests) can read what it shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

COLORS = {"pass": "#1b7f3b", "review": "#a86400", "block": "#b3261e", "none": "#8a99a8", "refused": "#5b6b7c"}
PALETTE = ["#1d4e89", "#1b7f3b", "#a86400", "#b3261e", "#6a3d9a", "#5b6b7c"]


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    width: int = 640,
    height: int = 220,
) -> Markup:
    """Bars per label, stacked by series (e.g. jobs per day by verdict)."""
    pad_left, pad_bottom, pad_top = 36, 34, 22
    names = list(series)
    totals = [sum(float(series[n][i]) for n in names) for i in range(len(labels))]
    top = max(totals, default=0.0) or 1.0
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    step = plot_w / max(1, len(labels))
    bar_w = max(2.0, step * 0.7)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{pad_left}" y="14">{escape(title)}</text>',
        f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 10}" y2="{pad_top + plot_h}" stroke="#d8dee6"/>',
        f'<text x="4" y="{pad_top + 8}">{top:g}</text>',
    ]
    for i, label in enumerate(labels):
        x = pad_left + i * step + (step - bar_w) / 2
        y: float = pad_top + plot_h
        for k, name in enumerate(names):
            value = float(series[name][i])
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            color = COLORS.get(name, PALETTE[k % len(PALETTE)])
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(str(label))} · {escape(name)}: {value:g}</title></rect>"
            )
        if len(labels) <= 16 or i % max(1, len(labels) // 8) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 18}" text-anchor="middle">{escape(str(label))}</text>'
            )
    for k, name in enumerate(names):
        color = COLORS.get(name, PALETTE[k % len(PALETTE)])
        x = pad_left + k * 90
        parts.append(f'<rect x="{x}" y="{height - 10}" width="9" height="9" fill="{color}"/>')
        parts.append(f'<text x="{x + 13}" y="{height - 2}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def meter(title: str, used: float, total: float, *, width: int = 320, height: int = 46) -> Markup:
    """A horizontal gauge: how much of a budget is spent."""
    share = 0.0 if total <= 0 else min(1.0, max(0.0, used / total))
    color = "#1b7f3b" if share < 0.7 else "#a86400" if share < 0.95 else "#b3261e"
    label = f"{title}: {used:g} / {total:g} ({share:.0%})"
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<text x="0" y="12">{escape(label)}</text>'
        f'<rect x="0" y="20" width="{width}" height="16" fill="#eef1f5" rx="3"/>'
        f'<rect x="0" y="20" width="{width * share:.1f}" height="16" fill="{color}" rx="3"/>'
        "</svg>"
    )


__all__ = ["meter", "stacked_bars"]
