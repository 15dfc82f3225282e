"""Sparklines as inline SVG drawn on the server: no script, no chart library, any CSP.

Every sparkline uses the same fixed scale, so two cards compare at a glance: logarithmic,
1 KiB (and less, zero included) on the baseline, 1 GiB (and more) at the top, each doubling
of lag the same height. A per-card scale made 70 KiB and 500 KiB look alike; a shared linear
scale (the largest lag shown) would flatten every healthy standby to the baseline as soon as
one cluster lags. The monitor's alert threshold is a dotted line on that same scale, and the
SVG's title says the scale.
"""

import math
from functools import lru_cache

from django.utils.html import format_html

from clusters.inventory.units import size_text

WIDTH, HEIGHT = 120, 28
SCALE_BOTTOM = 1024  # bytes on the baseline: lag this small is "none" at a glance
SCALE_TOP = 1024**3  # bytes at the top edge; more is drawn at the top
SCALE_WORDS = f"log scale, {size_text(SCALE_BOTTOM)} to {size_text(SCALE_TOP)}"


def sparkline_y(value: float, height: int = HEIGHT) -> float:
    """The y of ``value`` bytes on the shared log scale (2 px of margin at both edges: a line
    on the very edge would be half clipped)."""
    span = math.log2(SCALE_TOP) - math.log2(SCALE_BOTTOM)
    level = (math.log2(min(max(value, SCALE_BOTTOM), SCALE_TOP)) - math.log2(SCALE_BOTTOM)) / span
    return round(height - 2 - level * (height - 4), 1)


def sparkline_path(values: list[float | None], width: int = WIDTH, height: int = HEIGHT) -> str:
    """An SVG path through ``values`` on the shared log scale.

    A ``None`` (the node did not answer) breaks the line, so a gap reads as a gap rather than
    as zero lag. Returns "" when there is nothing to draw.
    """
    if all(v is None for v in values):
        return ""
    step = width / max(len(values) - 1, 1)
    segments: list[list[str]] = []
    pen_down = False
    for i, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x = round(i * step, 1)
        y = sparkline_y(value, height)
        if not pen_down:
            segments.append([])
        segments[-1].append(f"{'L' if pen_down else 'M'}{x} {y}")
        pen_down = True
    # A lone point (one minute of history so far) is drawn as a short dash to be seen at all,
    # leftwards: the newest minute sits on the right edge, where a rightward dash is clipped.
    parts = [" ".join(seg) + (" h-4" if len(seg) == 1 else "") for seg in segments]
    return " ".join(parts)


def sparkline_svg(values: list[float | None], label: str, threshold: int | None = None) -> str:
    """The sparkline as an accessible inline SVG: its label says what the line shows and on
    which scale; ``threshold`` (bytes) adds the alert threshold as a dotted line."""
    return _svg(tuple(values), label, threshold)


# The dashboard draws every standby's line every 3 s and a line changes at most when a minute's
# worst lag does: drawing them was a fifth of the refresh at 200 clusters (bench/dashboard.py).
@lru_cache(maxsize=4096)
def _svg(values: tuple[float | None, ...], label: str, threshold: int | None) -> str:
    path = sparkline_path(list(values))
    if not path:
        return format_html('<span class="spark-empty">{}</span>', "no history yet")
    words = f"{label} ({SCALE_WORDS}"
    line = ""
    if threshold:
        words += f"; dotted line: alert threshold {size_text(threshold)}"
        line = format_html(
            '<line class="spark-threshold" x1="0" x2="{w}" y1="{y}" y2="{y}"/>',
            w=WIDTH,
            y=sparkline_y(threshold),
        )
    return format_html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{label}"><title>{label}</title>{line}<path d="{path}"/></svg>',
        w=WIDTH,
        h=HEIGHT,
        label=words + ")",
        line=line,
        path=path,
    )
