"""Sparklines as inline SVG drawn on the server: no script, no chart library, any CSP."""

from functools import lru_cache

from django.utils.html import format_html

WIDTH, HEIGHT = 120, 28


def sparkline_path(values: list[float | None], width: int = WIDTH, height: int = HEIGHT) -> str:
    """An SVG path through ``values`` scaled into the box, the top being the largest value.

    A ``None`` (the node did not answer) breaks the line, so a gap reads as a gap rather than
    as zero lag. Returns "" when there is nothing to draw.
    """
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(known) or 1  # all zero: a flat line at the bottom, not a division by zero
    step = width / max(len(values) - 1, 1)
    segments: list[list[str]] = []
    pen_down = False
    for i, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x = round(i * step, 1)
        # 2 px of margin: a line on the very edge would be half clipped.
        y = round(height - 2 - (value / top) * (height - 4), 1)
        if not pen_down:
            segments.append([])
        segments[-1].append(f"{'L' if pen_down else 'M'}{x} {y}")
        pen_down = True
    # A lone point (one minute of history so far) is drawn as a short dash to be seen at all,
    # leftwards: the newest minute sits on the right edge, where a rightward dash is clipped.
    parts = [" ".join(seg) + (" h-4" if len(seg) == 1 else "") for seg in segments]
    return " ".join(parts)


def sparkline_svg(values: list[float | None], label: str) -> str:
    """The sparkline as an accessible inline SVG (its label says what the line shows)."""
    return _svg(tuple(values), label)


# The dashboard draws every standby's line every 3 s and a line changes at most when a minute's
# worst lag does: drawing them was a fifth of the refresh at 200 clusters (bench/dashboard.py).
@lru_cache(maxsize=4096)
def _svg(values: tuple[float | None, ...], label: str) -> str:
    path = sparkline_path(list(values))
    if not path:
        return format_html('<span class="spark-empty">{}</span>', "no history yet")
    return format_html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{label}"><title>{label}</title><path d="{path}"/></svg>',
        w=WIDTH,
        h=HEIGHT,
        label=label,
        path=path,
    )
