"""Lag history: the cluster page's chart (in the column layout uPlot draws directly) and the
dashboard's sparklines."""

import hashlib
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import F, Max
from django.db.models.functions import TruncMinute
from django.utils import timezone

from .models import Cluster, Node, StatusSample

RANGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}


def lag_series(cluster: Cluster, range_key: str) -> dict:
    """``{"range", "nodes", "t", "bytes": [[...] per node], "seconds": [...]}`` with one shared
    time axis (Unix seconds) and ``None`` where a node has no sample at that time.

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
    return {
        "range": range_key if range_key in RANGES else "1h",
        "nodes": [name for _pk, name in nodes],
        "t": times,
        "bytes": [[points[t].get(i, (None, None))[0] for t in times] for i in range(len(nodes))],
        "seconds": [[points[t].get(i, (None, None))[1] for t in times] for i in range(len(nodes))],
    }


SPARK_MINUTES = 20  # the dashboard's sparklines: worst lag per minute over the last 20


def lag_history_by_node(
    node_ids: list[int], minutes: int = SPARK_MINUTES
) -> dict[int, list[int | None]]:
    """Worst replay lag in bytes per minute over the last ``minutes``, per node; a minute
    without samples is ``None`` (a gap in the sparkline).

    The dashboard asks every 3 s, and 20 minutes of raw samples of 400 nodes are ~240,000 rows
    (bench/dashboard.py: ~0.5 s). A finished minute never changes, so each is read once and
    kept in the cache; a refresh reads only the minutes it has not seen, in steady state the
    current one. The key names the node set: a new cluster's nodes read afresh.
    """
    now = timezone.now().replace(second=0, microsecond=0)
    slots = [now - timedelta(minutes=minutes - 1 - i) for i in range(minutes)]
    digest = hashlib.sha256(",".join(map(str, sorted(set(node_ids)))).encode()).hexdigest()[:16]
    keys = {slot: f"lag-minute:{digest}:{int(slot.timestamp())}" for slot in slots[:-1]}
    cached = cache.get_many(list(keys.values()))
    missing = [slot for slot in slots[:-1] if keys[slot] not in cached]
    read_from = missing[0] if missing else slots[-1]
    fresh = _worst_lag_per_minute(node_ids, read_from)
    cache.set_many(
        {keys[slot]: fresh.get(slot, {}) for slot in missing}, timeout=(minutes + 1) * 60
    )
    result: dict[int, list[int | None]] = {}
    for i, slot in enumerate(slots):
        per_node = fresh.get(slot) if slot >= read_from else cached.get(keys[slot], {})
        for node_id, worst in (per_node or {}).items():
            result.setdefault(node_id, [None] * minutes)[i] = worst
    return result


def _worst_lag_per_minute(node_ids: list[int], since: datetime) -> dict[datetime, dict]:
    """{minute: {node_id: worst lag_bytes}} from the raw samples since ``since``. Naming the
    nodes lets PostgreSQL use the (node, resolution, at) index instead of scanning the day."""
    rows = (
        StatusSample.objects.filter(
            node_id__in=node_ids, resolution=StatusSample.Resolution.RAW, at__gte=since
        )
        .annotate(minute=TruncMinute("at"))
        .values("node_id", "minute")
        .annotate(worst=Max("lag_bytes"))
    )
    result: dict[datetime, dict] = {}
    for row in rows:
        result.setdefault(row["minute"], {})[row["node_id"]] = row["worst"]
    return result
