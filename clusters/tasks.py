"""Celery tasks of the clusters app: the monitor, history compaction, alerts. Thin: the work is
in clusters.monitor_batch, clusters.history and clusters.alerts."""

from celery import shared_task
from django.conf import settings
from django.utils.dateparse import parse_datetime

from .alerts import send_alerts, send_test_alert
from .history import samples_compact

__all__ = ["compact_samples", "monitor_all", "monitor_batch", "send_alerts", "send_test_alert"]


@shared_task(ignore_result=True)
def monitor_all() -> None:
    """Beat's fan-out: claim the due clusters and queue one task per batch of them. A batch not
    started within the lease is dropped; its clusters are claimed again once the lease ends."""
    from .monitor_batch import monitor_claim_due

    lease, batches = monitor_claim_due()
    for batch in batches:
        monitor_batch.apply_async(args=[batch, lease.isoformat()], expires=settings.MONITOR_LEASE_S)


@shared_task(ignore_result=True)
def monitor_batch(cluster_ids: list[int], lease: str) -> None:
    """One pass over a batch of clusters claimed by monitor_all."""
    from .monitor_batch import monitor_batch_run

    monitor_batch_run(cluster_ids=cluster_ids, lease=parse_datetime(lease))


@shared_task(ignore_result=True)
def compact_samples() -> None:
    samples_compact()
