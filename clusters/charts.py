"""Lag history for the cluster page's chart, in the column layout uPlot draws directly."""

from datetime import timedelta

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
