"""Lag history: the cluster page's chart (in the column layout uPlot draws directly) and the
dashboard's sparklines."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Max
from django.db.models.functions import TruncMinute
from django.utils import timezone

from clusters.models import Cluster, ClusterEvent, Node, StatusSample

RANGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
# The events the chart marks with a vertical line: the moments the primary changed.
MARKED_EVENTS = (ClusterEvent.Kind.FAILOVER, ClusterEvent.Kind.SWITCHOVER)


def lag_series(cluster: Cluster, range_key: str) -> dict:
    """``{"range", "nodes", "t", "bytes": [[...] per node], "seconds": [...], "events",
    "threshold_bytes"}`` with one shared time axis (Unix seconds) and ``None`` where a node has
    no sample at that time; ``events`` are the failovers and switchovers in the range
    (``{"t", "kind", "summary"}``, oldest first) and ``threshold_bytes`` the lag above which
    the monitor raises its lag event (LAG_ALERT_BYTES).

    The last hour is drawn from the raw samples (one per monitor period); the last day from
    per-minute maxima (the worst lag of each minute, so a spike is never averaged away).
    """
    span = RANGES.get(range_key, RANGES["1h"])
    since = timezone.now() - span
    nodes = list(
        cluster.nodes.filter(kind=Node.Kind.DATABASE).order_by("name").values_list("pk", "name")
    )
    samples = StatusSample.objects.filter(node__cluster=cluster, at__gte=since)
    if range_key == "1d":
        rows = (
            samples.annotate(t=TruncMinute("at"))
            .values("node_id", "t")
            .annotate(b=Max("lag_bytes"), s=Max("lag_seconds"))
            .order_by("t")
        )
    else:
        rows = samples.filter(resolution=StatusSample.Resolution.RAW).values(
            "node_id", t=F("at"), b=F("lag_bytes"), s=F("lag_seconds")
        )
    index = {pk: i for i, (pk, _name) in enumerate(nodes)}
    points: dict[int, dict[int, tuple]] = {}
    for row in rows:
        if row["node_id"] in index:
            ts = int(row["t"].timestamp())
            points.setdefault(ts, {})[index[row["node_id"]]] = (row["b"], row["s"])
    times = sorted(points)
    events = (
        cluster.events.filter(kind__in=MARKED_EVENTS, at__gte=since)
        .order_by("at")
        .values_list("at", "kind", "summary")
    )
    return {
        "range": range_key if range_key in RANGES else "1h",
        "nodes": [name for _pk, name in nodes],
        "t": times,
        "bytes": [[points[t].get(i, (None, None))[0] for t in times] for i in range(len(nodes))],
        "seconds": [[points[t].get(i, (None, None))[1] for t in times] for i in range(len(nodes))],
        "events": [
            {"t": int(at.timestamp()), "kind": kind, "summary": summary}
            for at, kind, summary in events
        ],
        "threshold_bytes": settings.LAG_ALERT_BYTES,
    }


SPARK_MINUTES = 20  # the dashboard's sparklines: worst lag per minute over the last 20


def lag_minutes_add(
    history: list[list[int]], now: datetime, lag_bytes: int | None
) -> list[list[int]]:
    """``history`` (``[[minute, worst lag in bytes], ...]``, minutes as Unix seconds, oldest
    first) with one more observation: the current minute's worst grows, a new minute starts
    a new pair, and minutes older than the sparkline's window fall off.

    The monitor keeps this on NodeStatus, so the dashboard's 3-second refresh draws every
    sparkline from the status rows it reads anyway. Reading the raw samples for 400 nodes
    cost ~30 ms a refresh even with finished minutes cached (bench/dashboard.py).
    An unknown lag (the node did not answer) adds nothing: that minute stays a gap.
    """
    minute = int(now.timestamp()) // 60 * 60
    kept = [pair for pair in history if pair[0] > minute - SPARK_MINUTES * 60]
    if lag_bytes is None:
        return kept
    if kept and kept[-1][0] == minute:
        kept[-1] = [minute, max(kept[-1][1], lag_bytes)]
    else:
        kept.append([minute, lag_bytes])
    return kept


def lag_minutes_series(history: list[list[int]], now: datetime) -> list[int | None]:
    """The sparkline's values: one per minute of the window ending now, ``None`` where the
    node has no observation (a gap in the line, not zero lag)."""
    last = int(now.timestamp()) // 60 * 60
    worst = {minute: value for minute, value in history or []}
    return [worst.get(last - (SPARK_MINUTES - 1 - i) * 60) for i in range(SPARK_MINUTES)]
