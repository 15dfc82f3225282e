"""Celery tasks of the clusters app: the monitor, history compaction, alerts."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from .alerts import send_alerts, send_test_alert
from .history import samples_compact
from .models import Cluster

__all__ = ["compact_samples", "monitor_all", "monitor_cluster", "send_alerts", "send_test_alert"]

MONITORED = [
    Cluster.State.HEALTHY,
    Cluster.State.DEGRADED,
    Cluster.State.FAILING_OVER,
    Cluster.State.MAINTENANCE,
    Cluster.State.DOWN,
    Cluster.State.UNKNOWN,
]


@shared_task(ignore_result=True)
def monitor_all() -> None:
    """Fan out one task per set-up cluster, the longest unobserved first, skipping clusters a
    pass is still working on; a task not started within a period is dropped, so a busy worker
    pool serves the stalest clusters instead of a backlog."""
    interval = settings.MONITOR_INTERVAL_S
    now = timezone.now()
    due = (
        Cluster.objects.filter(state__in=MONITORED)
        .filter(Q(monitor_lease__isnull=True) | Q(monitor_lease__lt=now))
        .order_by(F("last_checked").asc(nulls_first=True))
        .values_list("pk", flat=True)
    )
    for cluster_id in due:
        monitor_cluster.apply_async(args=[cluster_id], expires=interval)


@shared_task(ignore_result=True)
def monitor_cluster(cluster_id: int) -> str | None:
    """One pass over one cluster, unless another pass holds its lease."""
    from .monitor import load_inventory, read_cluster, to_view
    from .observe import record
    from .sentinel import sentinel_act

    now = timezone.now()
    lease = now + timedelta(seconds=settings.MONITOR_INTERVAL_S * 3)
    taken = (
        Cluster.objects.filter(pk=cluster_id)
        .filter(Q(monitor_lease__isnull=True) | Q(monitor_lease__lt=now))
        .update(monitor_lease=lease)
    )
    if not taken:
        return None
    try:
        cluster = Cluster.objects.get(pk=cluster_id)
        inventory = load_inventory(cluster)
        reading = read_cluster(inventory)
        view = to_view(inventory, reading)
        state = record(cluster, inventory, reading, view)
        sentinel_act(cluster, view)
        return state
    finally:
        Cluster.objects.filter(pk=cluster_id, monitor_lease=lease).update(monitor_lease=None)


@shared_task(ignore_result=True)
def compact_samples() -> None:
    samples_compact()
