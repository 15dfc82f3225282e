"""Template helpers of the console: times, byte counts, LSNs, sparklines, state words."""

from datetime import datetime
from functools import lru_cache

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html

from clusters.inventory.units import size_text
from clusters.web.sparkline import sparkline_svg

register = template.Library()

# Every state shown in colour is also shown in words, with a symbol for colour-blind readers.
STATE_SYMBOLS = {
    "healthy": "●",
    "degraded": "▲",
    "failing_over": "↻",
    "maintenance": "⏸",
    "down": "✖",
    "unknown": "?",
    "new": "○",
    "provisioning": "…",
}


@register.simple_tag
def ago(when: datetime | None) -> str:
    """A relative time ("3 minutes ago") with the absolute UTC time on hover."""
    if not isinstance(when, datetime):
        return "—"
    return _time_element(when, relative((timezone.now() - when).total_seconds()))


# The dashboard renders two times, a badge and a lag per cluster every 3 s, mostly the same
# ones as 3 s before: each is drawn once and remembered (bench/dashboard.py).
@lru_cache(maxsize=4096)
def _time_element(when: datetime, words: str) -> str:
    absolute = timezone.localtime(when).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', when.isoformat(), absolute, words
    )


def relative(seconds: float) -> str:
    """ "just now", "40 s ago", "3 min ago", "5 h ago", "2 days ago" (or "in …" ahead).

    Our own, not Django's timesince: the dashboard renders two per cluster every 3 s, and
    timesince's translated plurals were a large part of the refresh at 200 clusters."""
    ahead, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if ahead else f"{text} ago"


@register.simple_tag
@lru_cache(maxsize=64)
def state_badge(state: str, label: str = "") -> str:
    """The cluster state as a coloured badge that also says it in words."""
    words = label or state.replace("_", " ").capitalize()
    return format_html(
        '<span class="state state-{}" data-state="{}"><span aria-hidden="true">{}</span> {}</span>',
        state,
        state,
        STATE_SYMBOLS.get(state, "?"),
        words,
    )


@register.filter
def lsn(position: int | None) -> str:
    """A WAL position as PostgreSQL prints it (16/B374D848)."""
    if not isinstance(position, int):  # None, or "" for a node never observed
        return "—"
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


@register.simple_tag
@lru_cache(maxsize=4096)
def lag(lag_bytes: int | None, lag_seconds: float | None) -> str:
    """Lag in bytes and seconds, or a dash when unknown."""
    lag_bytes = lag_bytes if isinstance(lag_bytes, int) else None
    lag_seconds = lag_seconds if isinstance(lag_seconds, int | float) else None
    if lag_bytes is None and lag_seconds is None:
        return "—"
    parts = []
    if lag_bytes is not None:
        parts.append(size_text(lag_bytes))
    if lag_seconds is not None:
        parts.append(f"{lag_seconds:.1f} s")
    return " · ".join(parts)


@register.filter
def size(n: int | None) -> str:
    """A byte count in the console's one unit system (``213 MiB``), or a dash when unknown."""
    return size_text(n) if isinstance(n, int) else "—"


@register.simple_tag
def sparkline(values: list, node: str) -> str:
    """A node's lag sparkline (the dashboard's last 20 minutes), on the scale every card
    shares, with the monitor's alert threshold as a dotted line."""
    return sparkline_svg(
        values, f"lag of {node}, last 20 minutes", threshold=settings.LAG_ALERT_BYTES
    )
