"""The console's backup schedule: which clusters are due a backup, and starting it as a job
(issue 22 part 1), so every scheduled backup is a visible job with its log.

A full backup when the last successful full one is older than the policy's
`full_every_hours` (or there is none), else a differential when the last successful backup of
any type is older than `diff_every_hours`. Runs from Celery beat every few minutes; a backup
already pending or running is left to finish.

Restore drills (issue 22 part 3) follow the same beat: a drill when the policy has a drill
server, `drill_every_hours` is not 0, a backup succeeded, and the last drill started that long
ago (or there was none); never beside a running drill or backup.
"""

import datetime

from django.utils import timezone

from clusters.models import BackupPolicy, Cluster
from jobs import services
from jobs.errors import JobRefused
from jobs.models import Job, JobKind, JobStatus, RestoreDrill
from jobs.playbooks.restore_drill import drill_refusal

RUNNING_STATES = (
    Cluster.State.HEALTHY,
    Cluster.State.DEGRADED,
    Cluster.State.MAINTENANCE,
)


def _last_success(policy: BackupPolicy, types: tuple[str, ...]) -> datetime.datetime | None:
    job = (
        Job.objects.filter(
            cluster=policy.cluster,
            kind=JobKind.BACKUP,
            status=JobStatus.SUCCEEDED,
            params__backup_type__in=types,
        )
        .order_by("-created")
        .first()
    )
    return job.created if job else None


def backup_due(policy: BackupPolicy, now: datetime.datetime) -> str | None:
    """The type of backup the policy wants now ("full", "diff"), or None."""
    if policy.full_every_hours:
        full = _last_success(policy, ("full",))
        if full is None or now - full >= datetime.timedelta(hours=policy.full_every_hours):
            return "full"
    if policy.diff_every_hours:
        last = _last_success(policy, ("full", "diff", "incr"))
        if last is None or now - last >= datetime.timedelta(hours=policy.diff_every_hours):
            return "diff"
    return None


def backups_configured(cluster) -> bool:
    """A configure_backups job succeeded, or a setup that ran its steps (a policy was set
    before setup: jobs/playbooks/setup_backups.py)."""
    done = Job.objects.filter(cluster=cluster, status=JobStatus.SUCCEEDED)
    return (
        done.filter(kind=JobKind.CONFIGURE_BACKUPS).exists()
        or done.filter(kind=JobKind.SETUP, steps__name="backup_stanza").exists()
    )


def backups_start_due(now: datetime.datetime | None = None) -> list[int]:
    """Start each due backup; the ids of the jobs started. A cluster that is not running, or
    whose backups were never configured on the servers (no successful configure_backups
    job, nor a setup that configured them), waits."""
    now = now or timezone.now()
    started = []
    policies = BackupPolicy.objects.filter(
        enabled=True, cluster__state__in=RUNNING_STATES
    ).select_related("cluster")
    for policy in policies:
        cluster = policy.cluster
        configured = backups_configured(cluster)
        busy = Job.objects.filter(
            cluster=cluster, kind=JobKind.BACKUP, status__in=JobStatus.active()
        ).exists()
        kind = backup_due(policy, now) if configured and not busy else None
        if kind is None:
            continue
        try:
            job = services.job_start(
                cluster=cluster, kind=JobKind.BACKUP, params={"backup_type": kind}
            )
        except JobRefused:
            continue  # refused now (e.g. the cluster just changed state): the next round tries
        started.append(job.pk)
    return started


def drill_due(
    every_hours: int,
    last_backup: datetime.datetime | None,
    last_drill: datetime.datetime | None,
    now: datetime.datetime,
) -> bool:
    """Whether a drill is due: drills on (`every_hours` > 0), a successful backup to restore,
    and no drill in the last `every_hours`."""
    if not every_hours or last_backup is None:
        return False
    return last_drill is None or now - last_drill >= datetime.timedelta(hours=every_hours)


def drills_start_due(now: datetime.datetime | None = None) -> list[int]:
    """Start each due restore drill; the ids of the jobs started."""
    now = now or timezone.now()
    started = []
    policies = BackupPolicy.objects.filter(
        enabled=True, drill_every_hours__gt=0, cluster__state__in=RUNNING_STATES
    ).exclude(drill_address="")
    for policy in policies.select_related("cluster"):
        cluster = policy.cluster
        last = RestoreDrill.objects.filter(cluster=cluster).order_by("-started").first()
        busy = Job.objects.filter(
            cluster=cluster,
            kind__in=[JobKind.BACKUP, JobKind.RESTORE_DRILL],
            status__in=JobStatus.active(),
        ).exists()
        backup = _last_success(policy, ("full", "diff", "incr"))
        if busy or not drill_due(policy.drill_every_hours, backup, last and last.started, now):
            continue
        if drill_refusal(cluster):
            continue  # the page says why; the schedule does not start what would be refused
        try:
            job = services.job_start(cluster=cluster, kind=JobKind.RESTORE_DRILL, params={})
        except JobRefused:
            continue
        started.append(job.pk)
    return started
