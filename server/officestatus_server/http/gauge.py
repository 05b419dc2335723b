"""The overview's seats gauge: a half ring filled by the share of seats in use, drawn as
SVG by the server (pure: numbers in, markup out). Readable without colour: the numbers
are written in it, a near-full ring is hatched and an over-full one cross-hatched, and
its <title> says it in words."""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from officestatus_server.core.texts import count

# The share of seats from which the ring is drawn as nearly full.
NEAR_FULL = 0.9
_CX, _CY, _R, _WIDTH = 110.0, 110.0, 85.0, 26.0


@dataclass(frozen=True)
class GaugeState:
    """What the gauge shows: the words for it and how full it is (0 to 1)."""

    used: int
    total: int
    unlimited: bool
    share: float
    level: str  # "ok", "near-full", "full", "over" or "unlimited"
    title: str


def gauge_state(used: int, total: int, unlimited: bool) -> GaugeState:
    """The gauge for `used` enabled users and `total` seats (unlimited: the evaluation);
    more users than seats are shown as such, not as the seats they fill."""
    if unlimited:
        return GaugeState(
            used, total, True, 0.0, "unlimited", f"{count(used, 'user')} enabled, no seat limit"
        )
    share = 1.0 if total == 0 and used > 0 else (used / total if total else 0.0)
    if used > total:
        level = "over"
    elif total and used == total:
        level = "full"
    elif share >= NEAR_FULL:
        level = "near-full"
    else:
        level = "ok"
    title = f"{used} of {total} seats used"
    if used > total:
        over = used - total
        title = f"{count(used, 'user')} enabled for {count(total, 'seat')}, {over} over capacity"
    return GaugeState(used, total, False, min(share, 1.0), level, title)


def _point(share: float) -> tuple[float, float]:
    angle = math.pi * (1.0 - share)
    return _CX + _R * math.cos(angle), _CY - _R * math.sin(angle)


def _arc(share: float) -> str:
    x0, y0 = _point(0.0)
    x1, y1 = _point(share)
    return f"M {x0:.2f} {y0:.2f} A {_R:.0f} {_R:.0f} 0 0 1 {x1:.2f} {y1:.2f}"


def gauge_svg(state: GaugeState) -> Markup:
    """The gauge as inline SVG (no style attributes: the CSS file colours its classes)."""
    title = escape(state.title)
    parts = [
        f'<svg class="gauge gauge-{state.level}" viewBox="0 0 220 135" role="img" '
        f'aria-labelledby="gauge-title" width="330" height="203">',
        f'<title id="gauge-title">{title}</title>',
        "<defs>",
        '<pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect class="gauge-fill" width="8" height="8"/>'
        '<line x1="0" y1="0" x2="0" y2="8" class="gauge-hatch" stroke-width="3"/></pattern>',
        '<pattern id="cross" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect class="gauge-fill" width="8" height="8"/>'
        '<path d="M0 0V8M0 0H8" class="gauge-hatch" stroke-width="3"/></pattern>',
        "</defs>",
        f'<path class="gauge-track" d="{_arc(1.0)}" fill="none" stroke-width="{_WIDTH:.0f}"/>',
    ]
    if state.share > 0:
        stroke = {"near-full": "url(#hatch)", "full": "url(#hatch)", "over": "url(#cross)"}
        paint = stroke.get(state.level)
        paint_attr = f' stroke="{paint}"' if paint else ""
        parts.append(
            f'<path class="gauge-used" d="{_arc(state.share)}" fill="none" '
            f'stroke-width="{_WIDTH:.0f}"{paint_attr}/>'
        )
    if state.unlimited:
        big, small = f"{state.used}", "enabled, no seat limit"
    else:
        big, small = f"{state.used} of {state.total}", "seats used"
    parts += [
        f'<text class="gauge-number" x="{_CX:.0f}" y="{_CY - 8:.0f}" text-anchor="middle" '
        f'data-field="gauge">{escape(big)}</text>',
        f'<text class="gauge-label" x="{_CX:.0f}" y="{_CY + 18:.0f}" text-anchor="middle">'
        f"{escape(small)}</text>",
        "</svg>",
    ]
    return Markup("".join(parts))
