"""The monitor's Celery tasks: the fan-out, one batch's pass, history compaction. Thin: the work
is in clusters.monitoring.batch and clusters.monitoring.history.

Task names are the ones these tasks had before the monitor moved into its own package (the
beat schedule and the monitor queue's routes name them): a message queued by an older
console must still find its task."""

from celery import shared_task
from django.conf import settings
from django.utils.dateparse import parse_datetime

from clusters.monitoring.batch import monitor_batch_run, monitor_claim_due
from clusters.monitoring.disk_space import disk_space_check_all
from clusters.monitoring.fastpath_decisions import fastpath_decisions_read_all
from clusters.monitoring.history import samples_compact
from jobs.backup_schedule import backups_start_due, drills_start_due


@shared_task(name="clusters.tasks.monitor_all", ignore_result=True)
def monitor_all() -> None:
    """Beat's fan-out: claim the due clusters and queue one task per batch of them. A batch not
    started within the lease is dropped; its clusters are claimed again once the lease ends."""
    lease, batches = monitor_claim_due()
    for batch in batches:
        monitor_batch.apply_async(args=[batch, lease.isoformat()], expires=settings.MONITOR_LEASE_S)


@shared_task(name="clusters.tasks.monitor_batch", ignore_result=True)
def monitor_batch(cluster_ids: list[int], lease: str) -> None:
    """One pass over a batch of clusters claimed by monitor_all."""
    monitor_batch_run(cluster_ids=cluster_ids, lease=parse_datetime(lease))


@shared_task(name="clusters.tasks.compact_samples", ignore_result=True)
def compact_samples() -> None:
    """Fold raw status samples older than a day into minute aggregates; drop the oldest."""
    samples_compact()


@shared_task(name="clusters.tasks.start_due_backups", ignore_result=True)
def start_due_backups() -> list[int]:
    """Start the backups and restore drills the clusters' schedules want now (beat, every 5
    minutes): each one a job with its log (jobs.backup_schedule)."""
    return backups_start_due() + drills_start_due()


@shared_task(name="clusters.tasks.check_disk_space", ignore_result=True)
def check_disk_space() -> int:
    """How full each database node's data directory is (beat, every minute; one `df` over SSH
    per node, clusters.monitoring.disk_space)."""
    return disk_space_check_all()


@shared_task(name="clusters.tasks.read_fastpath_decisions", ignore_result=True)
def read_fastpath_decisions() -> int:
    """The witness agents' new fast-failover decisions as events (beat, every 30 s;
    clusters.monitoring.fastpath_decisions)."""
    return fastpath_decisions_read_all()
