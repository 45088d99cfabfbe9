"""Charts drawn on the server as SVG (no script, no library, nothing fetched from a network):
lines over days, horizontal bars and a funnel. Colours are presentation attributes, not inline
styles, so the pages keep a strict Content-Security-Policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")
WIDTH = 640


def _number(value: float) -> str:
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _nice_top(value: float) -> float:
    """A round maximum for the axis (1, 2, 4, 8 or 12 x 10^n) at or above `value`."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 4, 8, 12):  # four even steps on the axis
        if value <= factor * step:
            return float(factor * step)
    return float(10 * step)


def lines(
    title: str,
    days: Sequence[dt.date],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str = "",
) -> SafeString:
    """One line per series over the days (a gap where a value is None)."""
    height, left, right, top, bottom = 240, 48, 12, 12, 44
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    values = [v for _name, points in series for v in points if v is not None]
    peak = _nice_top(max(values, default=0))
    count = max(len(days), 1)

    def x(index: int) -> float:
        return left + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / peak

    parts = [_frame(title, height)]
    for step in range(5):
        level = peak * step / 4
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#e5e7eb"/>'
                '<text x="{}" y="{}" text-anchor="end" font-size="11" fill="#4b5563">{}</text>',
                left,
                WIDTH - right,
                round(y(level), 1),
                round(y(level), 1),
                left - 6,
                round(y(level) + 4, 1),
                _number(level) + unit,
            )
        )
    every = max(1, count // 7)
    for index, day in enumerate(days):
        last = index == count - 1 and index % every >= every / 2
        if index % every == 0 or last:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#4b5563">{}</text>',
                    round(x(index), 1),
                    height - bottom + 16,
                    date_format(day, "d/m"),
                )
            )
    for number, (name, points) in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for index, value in enumerate(points):
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(index):.1f},{y(value):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(
                    format_html(
                        '<polyline class="series" data-series="{}" fill="none" stroke="{}" '
                        'stroke-width="2" points="{}"/>',
                        name,
                        colour,
                        " ".join(run),
                    )
                )
            elif run:
                cx, cy = run[0].split(",")
                parts.append(
                    format_html(
                        '<circle class="series" data-series="{}" cx="{}" cy="{}" r="3" fill="{}"/>',
                        name,
                        cx,
                        cy,
                        colour,
                    )
                )
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
                '<text x="{}" y="{}" font-size="12" fill="#111827">{}</text>',
                left + number * 150,
                height - 16,
                colour,
                left + number * 150 + 14,
                height - 7,
                name,
            )
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 - every part is escaped above


def bars(title: str, rows: Sequence[tuple[str, float]], unit: str = "") -> SafeString:
    """One horizontal bar per row, its value written at its end."""
    row_h, left, right, top = 26, 190, 70, 8
    height = top * 2 + row_h * max(len(rows), 1)
    peak = max((value for _label, value in rows), default=0) or 1
    parts = [_frame(title, height)]
    plot_w = WIDTH - left - right
    for index, (label, value) in enumerate(rows):
        y = top + index * row_h
        width = plot_w * value / peak
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#111827">{}</text>'
                '<rect class="bar" data-label="{}" x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                '<text x="{}" y="{}" font-size="12" fill="#111827">{}</text>',
                left - 8,
                y + 16,
                label[:28],
                label,
                left,
                y + 4,
                round(max(width, 1), 1),
                row_h - 8,
                PALETTE[0],
                round(left + width + 6, 1),
                y + 16,
                _number(value) + unit,
            )
        )
    if not rows:
        parts.append(_empty(height))
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 - every part is escaped above


def funnel(title: str, steps: Sequence[tuple[str, float]]) -> SafeString:
    """Centred bars narrowing from the first step; each with its count and share of the first."""
    row_h, top = 40, 8
    height = top * 2 + row_h * max(len(steps), 1)
    first = steps[0][1] if steps and steps[0][1] else 1
    parts = [_frame(title, height)]
    usable = WIDTH - 40
    for index, (label, value) in enumerate(steps):
        width = max(usable * value / first, 2)
        y = top + index * row_h
        share = f" ({value / first:.0%})" if index else ""
        parts.append(
            format_html(
                '<rect class="step" data-label="{}" x="{}" y="{}" width="{}" height="{}" '
                'fill="{}" opacity="0.85"/>'
                '<text x="{}" y="{}" text-anchor="middle" font-size="13" fill="#111827">{}</text>',
                label,
                round((WIDTH - width) / 2, 1),
                y,
                round(width, 1),
                row_h - 12,
                PALETTE[index % len(PALETTE)],
                WIDTH / 2,
                y + row_h - 1,
                f"{label}: {_number(value)}{share}",
            )
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 - every part is escaped above


def _frame(title: str, height: int) -> SafeString:
    return format_html(
        '<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet"><title>{}</title>',
        title,
        WIDTH,
        height,
        title,
    )


def _empty(height: int) -> SafeString:
    return format_html(
        '<text x="{}" y="{}" text-anchor="middle" font-size="13" fill="#6b7280">—</text>',
        WIDTH / 2,
        height / 2,
    )
