"""The cluster page's lag chart: the lag history with its gaps marked and the axes worked out
here, where they can be tested, so the browser only draws (static/lagchart.js).

- Byte ticks are round in binary units: a power-of-two step (…, 256 KiB, 512 KiB, 1 MiB, …)
  and every label in one unit, exactly (0, 0.5 MiB, 1 MiB, 1.5 MiB).
- Time ticks sit on round local times (…, 5, 10, 15, 30 min, 1, 3, 6, 12 h), no more of
  them than the chart's width holds, labelled HH:MM; the date is added under the first tick
  and under the first tick of each new day, never repeated.
- A stretch with no sample at all (the monitor was stopped, or a minute had no reading) gets
  a row of nulls, so uPlot breaks every line there instead of drawing across it.
"""

import math
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from clusters.inventory.units import UNITS, size_in_unit, size_text
from clusters.models import Cluster
from clusters.monitoring import lag_history

BYTE_TICKS = 5  # the chart is 260 px high: about one tick every 50 px
MIN_TOP = 1024  # an idle cluster (all zero lag) still gets a readable axis, 0 to 1 KiB
# Round steps for the time axis, in seconds.
TIME_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def byte_axis(largest: int | None, threshold: int | None = None) -> dict:
    """``{"top", "ticks", "labels"}`` for lag values up to ``largest`` bytes.

    The step is the smallest power of two that needs at most BYTE_TICKS steps; the top is the
    first tick at or above the largest value. The alert threshold is brought into view once
    the lag reaches a quarter of it (so the line shows how close it is); below that it would
    squash the real values into the bottom pixels, and the chart says it is above the scale.
    """
    largest = max(largest or 0, MIN_TOP)
    if threshold and largest * 4 >= threshold:
        largest = max(largest, threshold)
    step = 2 ** max(0, math.ceil(math.log2(largest / BYTE_TICKS)))
    top = math.ceil(largest / step) * step
    # The unit: the largest one at most four steps long, so labels need at most two decimals
    # (a 256 KiB step reads 0.25 MiB; a 128 KiB step reads 128 KiB, 256 KiB, …).
    unit = max(i for i in range(len(UNITS)) if 1024**i <= 4 * step or i == 0)
    ticks = list(range(0, top + 1, step))
    return {"top": top, "ticks": ticks, "labels": [size_in_unit(t, unit) for t in ticks]}


def time_axis(start: int, end: int, max_ticks: int, tz) -> dict:
    """``{"ticks", "labels"}`` between Unix times ``start`` and ``end``: the smallest round
    step that gives at most ``max_ticks`` ticks, aligned on the local clock of ``tz``.

    A label is ``HH:MM`` (``HH:MM:SS`` for steps under a minute); the first tick and the
    first tick of each new local day carry the date on a second line.
    """
    max_ticks = max(2, max_ticks)
    for step in TIME_STEPS:
        if (end - start) // step + 1 <= max_ticks:
            break
    # Align on local time: the offset at the start is used for the whole range (an hour or a
    # day: a daylight-saving change inside it shifts the ticks off the round hour, no more).
    offset = int(datetime.fromtimestamp(start, tz).utcoffset().total_seconds())
    first = math.ceil((start + offset) / step) * step - offset
    ticks, labels, last_day = [], [], None
    clock = "%H:%M:%S" if step < 60 else "%H:%M"
    for t in range(first, end + 1, step):
        local = datetime.fromtimestamp(t, tz)
        label = local.strftime(clock)
        if local.date() != last_day:
            label += f"\n{local.day} {local:%b}"
            last_day = local.date()
        ticks.append(t)
        labels.append(label)
    return {"ticks": ticks, "labels": labels}


def with_gaps(series: dict, period: float) -> dict:
    """``series`` with a row of nulls inside every stretch longer than ``period`` without a
    sample, so the chart shows a gap there rather than a line across it."""
    times = series["t"]
    rows_t: list[int] = []
    picks: list[int | None] = []  # the source row of each output row; None for a gap row
    for i in range(len(times)):
        if i and times[i] - times[i - 1] > period:
            rows_t.append((times[i - 1] + times[i]) // 2)
            picks.append(None)
        rows_t.append(times[i])
        picks.append(i)
    pick = lambda values: [None if p is None else values[p] for p in picks]  # noqa: E731
    return {
        **series,
        "t": rows_t,
        "bytes": [pick(v) for v in series["bytes"]],
        "seconds": [pick(v) for v in series["seconds"]],
    }


def gap_after(range_key: str) -> float:
    """How long without a sample counts as a gap: a few monitor periods for the raw hour (a
    busy monitor pass runs late by a period or two, which is not a gap), two minutes for the
    day's per-minute rows (a whole minute without a reading)."""
    if range_key == "1d":
        return 90.0
    return max(5 * settings.MONITOR_INTERVAL_S, 15.0)


def chart_data(cluster: Cluster, range_key: str, max_time_ticks: int = 6) -> dict:
    """Everything the chart draws: the lag history (with gaps), the failover and switchover
    markers, the alert threshold and both axes, over the whole range up to now."""
    series = lag_history.lag_series(cluster, range_key)
    now = timezone.now()
    end = int(now.timestamp())
    start = int((now - lag_history.RANGES[series["range"]]).timestamp())
    series = with_gaps(series, gap_after(series["range"]))
    known = [v for node in series["bytes"] for v in node if v is not None]
    threshold = series["threshold_bytes"]
    tz = timezone.get_current_timezone()
    return {
        **series,
        "from": start,
        "to": end,
        "tz": str(tz),  # the browser labels its cursor readout in the server's zone too
        "threshold_label": f"alert threshold {size_text(threshold)}",
        "y": byte_axis(max(known, default=0), threshold),
        "x": time_axis(start, end, min(max_time_ticks, 12), tz),
    }
