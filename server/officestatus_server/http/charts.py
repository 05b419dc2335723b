"""Charts drawn by the server as SVG text: pure functions of their numbers, no I/O.

Readable without colour: every line has its own dash pattern and marker and is named at
its end and in a legend; every bar is hatched, outlined and labelled with its count. Each
chart carries a <title> and a <desc> (what a screen reader says), and the page shows the
same numbers as a table beside it. Strokes and fills are `currentColor`, so a chart takes
the page's text colour; presentation attributes only, never a `style` attribute (the
page's Content-Security-Policy allows no inline style).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from html import escape

# The drawing's size in SVG units; the page scales it to the width it has.
WIDTH = 720
LINE_HEIGHT = 300
# Room for the axes' labels, left and bottom, and for the lines' names at the right.
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 150, 16, 40
_BAR_ROW = 28
_BAR_LABEL = 210
# The least distance between two names at the lines' ends (the font is 12 high).
_NAME_GAP = 14
_FONT = 'font-family="sans-serif" font-size="12"'


class Stroke(Enum):
    """How a line is drawn: its dash pattern (SVG stroke-dasharray), marker and width."""

    SOLID = ("", "circle", 2.0)
    DASHED = ("8 4", "square", 2.0)
    DOTTED = ("2 3", "tick", 3.0)

    @property
    def dashes(self) -> str:
        """The stroke-dasharray, empty for a solid line."""
        return self.value[0]

    @property
    def marker(self) -> str:
        """The mark at each point: "circle", "square" or "tick" (a short level bar)."""
        return self.value[1]

    @property
    def width(self) -> float:
        """The stroke width."""
        return self.value[2]


@dataclass(frozen=True)
class Line:
    """One line of a line chart: a value per x position; None leaves a gap (no data)."""

    name: str
    values: Sequence[int | None]
    stroke: Stroke


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten at or above `value` (at least 1): the
    top of an axis that is divided into even, readable steps."""
    if value <= 1:
        return 1
    power = 10 ** int(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    raise AssertionError("unreachable")  # pragma: no cover


def ticks(top: int) -> list[int]:
    """The y axis' labelled values from 0 to `top` (a `nice_ceiling`): four or five steps,
    whole numbers."""
    for parts in (5, 4, 2, 1):
        if top % parts == 0:
            return [top * i // parts for i in range(parts + 1)]
    return [0, top]  # pragma: no cover


def _num(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def _open(width: int, height: int, title: str, description: str, chart_id: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="chart" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" {_FONT}>',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _marker(kind: str, x: float, y: float) -> str:
    if kind == "circle":
        return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3" fill="currentColor"/>'
    if kind == "square":
        return (
            f'<rect x="{_num(x - 3)}" y="{_num(y - 3)}" width="6" height="6" '
            'fill="none" stroke="currentColor" stroke-width="1.5"/>'
        )
    if kind == "tick":
        return (
            f'<line x1="{_num(x - 5)}" y1="{_num(y)}" x2="{_num(x + 5)}" y2="{_num(y)}" '
            'stroke="currentColor" stroke-width="3"/>'
        )
    return ""


def _runs(points: Sequence[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The points split at the gaps (None) into runs drawn as one polyline each."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def line_chart(
    title: str,
    description: str,
    x_labels: Sequence[str],
    lines: Sequence[Line],
    *,
    chart_id: str,
    every: int = 5,
) -> str:
    """A line chart as SVG text: one x position per label (every `every`-th one written
    under the axis, and the last), a y axis from 0 with gridlines, each line named at its
    last point and in a legend below the title. `chart_id` keeps the chart's element ids
    apart from another chart's on the same page."""
    n = len(x_labels)
    for line in lines:
        if len(line.values) != n:
            raise ValueError(f"{line.name}: {len(line.values)} values for {n} x positions")
    top = nice_ceiling(max((v for line in lines for v in line.values if v is not None), default=0))
    legend = 20 * len(lines)
    height = LINE_HEIGHT + legend
    plot_top = _TOP + legend
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = LINE_HEIGHT - _TOP - _BOTTOM
    bottom = plot_top + plot_h

    def x_at(i: int) -> float:
        return _LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y_at(v: int) -> float:
        return bottom - plot_h * v / top

    out = _open(WIDTH, height, title, description, chart_id)
    # The legend: a short stretch of each line's stroke and marker, then its name.
    for i, line in enumerate(lines):
        y = _TOP + 20 * i + 6.0
        out.append(_polyline([(_LEFT, y), (_LEFT + 36, y)], line.stroke))
        out.append(_marker(line.stroke.marker, _LEFT + 18, y))
        out.append(f'<text x="{_LEFT + 44}" y="{y + 4}">{escape(line.name)}</text>')
    # The y axis: gridlines at the ticks, labelled.
    for value in ticks(top):
        y = y_at(value)
        out.append(
            f'<line x1="{_LEFT}" y1="{_num(y)}" x2="{_LEFT + plot_w}" y2="{_num(y)}" '
            'stroke="currentColor" stroke-opacity="0.25" stroke-width="1"/>'
        )
        out.append(f'<text x="{_LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">{value:,}</text>')
    out.append(
        f'<line x1="{_LEFT}" y1="{bottom}" x2="{_LEFT + plot_w}" y2="{bottom}" '
        'stroke="currentColor" stroke-width="1"/>'
    )
    # The x axis' labels.
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            out.append(
                f'<text x="{_num(x_at(i))}" y="{bottom + 18}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    # The lines, each with its markers; its name (and last value) at its last point.
    names: list[tuple[float, float, str]] = []
    for line in lines:
        points = [None if v is None else (x_at(i), y_at(v)) for i, v in enumerate(line.values)]
        for run in _runs(points):
            out.append(_polyline(run, line.stroke))
            out.extend(m for x, y in run if (m := _marker(line.stroke.marker, x, y)))
        known = [(i, v) for i, v in enumerate(line.values) if v is not None]
        if known:
            i, v = known[-1]
            names.append((y_at(v) + 4, x_at(i) + 8, f"{line.name}: {v:,}"))
    out.extend(
        f'<text x="{_num(x)}" y="{_num(y)}">{escape(text)}</text>' for y, x, text in _apart(names)
    )
    out.append("</svg>")
    return "\n".join(out)


def _apart(names: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Names at the lines' ends moved down where they would overlap the one above."""
    placed: list[tuple[float, float, str]] = []
    for y, x, text in sorted(names):
        if placed and y < placed[-1][0] + _NAME_GAP:
            y = placed[-1][0] + _NAME_GAP
        placed.append((y, x, text))
    return placed


def _polyline(points: Sequence[tuple[float, float]], stroke: Stroke) -> str:
    coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    dashes = f' stroke-dasharray="{stroke.dashes}"' if stroke.dashes else ""
    return (
        f'<polyline points="{coords}" fill="none" stroke="currentColor" '
        f'stroke-width="{_num(stroke.width)}"{dashes}/>'
    )


def bar_chart(
    title: str, description: str, bars: Sequence[tuple[str, int]], *, chart_id: str
) -> str:
    """A horizontal bar chart as SVG text: one hatched, outlined bar per (label, count),
    in the order given, the label at its left and the count at its end. No bars: a line
    saying there is nothing to show."""
    height = _TOP * 2 + _BAR_ROW * max(len(bars), 1)
    out = _open(WIDTH, height, title, description, chart_id)
    pattern = f"{chart_id}-hatch"
    out.append(
        f'<defs><pattern id="{pattern}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" '
        'stroke="currentColor" stroke-width="2"/></pattern></defs>'
    )
    if not bars:
        out.append(f'<text x="{_LEFT}" y="{_TOP + 18}">Nothing to show.</text>')
    top = nice_ceiling(max((n for _, n in bars), default=0))
    room = WIDTH - _BAR_LABEL - 90
    for i, (label, n) in enumerate(bars):
        y = _TOP + _BAR_ROW * i
        w = room * n / top
        out.append(
            f'<text x="{_BAR_LABEL - 8}" y="{y + 17}" text-anchor="end">{escape(label)}</text>'
        )
        out.append(
            f'<rect x="{_BAR_LABEL}" y="{y + 4}" width="{_num(w)}" height="{_BAR_ROW - 8}" '
            f'fill="url(#{pattern})" stroke="currentColor" stroke-width="1.5"/>'
        )
        out.append(f'<text x="{_num(_BAR_LABEL + w + 8)}" y="{y + 17}">{n:,}</text>')
    out.append("</svg>")
    return "\n".join(out)
