"""Starting, canceling and retrying jobs: with `jobs.reaper`, the only code that changes a job's
status from outside a worker."""

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from clusters.models import Cluster, Node
from jobs.errors import JobConflict, JobRefused
from jobs.models import Job, JobStatus, Step, StepStatus
from jobs.playbooks import fence, get_playbook
from jobs.tasks import run_job


def _enqueue(job_id: int) -> None:
    transaction.on_commit(lambda: run_job.delay(job_id))


def _active_conflict(cluster: Cluster) -> Job | None:
    return (
        Job.objects.filter(cluster=cluster, mutating=True, status__in=JobStatus.active())
        .order_by("created")
        .first()
    )


def _active_fence_conflict(cluster: Cluster) -> Job | None:
    """A fence or a job that changes the cluster, still active: a person's fence waits for it."""
    return (
        Job.objects.filter(cluster=cluster, status__in=JobStatus.active())
        .filter(Q(mutating=True) | Q(kind="fence"))
        .order_by("created")
        .first()
    )


def _person_fence_check(cluster: Cluster, node: Node | None, params: dict) -> None:
    """A person's fence: the guarded admin action (jobs.playbooks.fence.person_fence_refusal),
    one at a time and never beside a job that changes the cluster."""
    if reason := fence.person_fence_refusal(cluster, node, params):
        raise JobRefused(reason)
    if other := _active_fence_conflict(cluster):
        raise JobConflict(
            f"cluster {cluster.name} already has an active {other.kind} job #{other.pk} "
            f"({other.status}); fence one node at a time, when nothing else changes the cluster"
        )


def _conflict_message(cluster: Cluster, other: Job | None) -> str:
    if other is None:
        return f"cluster {cluster.name} already has an active job that changes it; try again"
    return (
        f"cluster {cluster.name} already has an active job that changes it: {other.kind} "
        f"#{other.pk} ({other.status}). Wait for it to end or cancel it first."
    )


def job_start(
    *,
    cluster: Cluster,
    kind: str,
    requested_by=None,
    node: Node | None = None,
    params: dict | None = None,
) -> Job:
    """Create a job with its planned steps and queue it once the transaction commits.

    Refused when the kind is unknown, the node is not in the cluster, or a job that changes
    the cluster is already active (the database's partial unique index settles races). A fence
    without a requester is the split-brain sentinel's; one a person asks for is the guarded
    admin action (``_person_fence_check``).
    """
    playbook = get_playbook(kind)  # raises JobRefused for an unknown kind
    if node is not None and node.cluster_id != cluster.pk:
        raise JobRefused(f"node {node.name} is not part of cluster {cluster.name}")
    params = params or {}
    if kind == "fence" and requested_by is not None:
        _person_fence_check(cluster, node, params)
        params = {**params, "reason": f"fenced by {requested_by} by hand"}
    specs = playbook.plan(cluster, node, params)
    mutating = playbook.mutating
    if mutating and (other := _active_conflict(cluster)):
        raise JobConflict(_conflict_message(cluster, other))
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=kind,
                cluster=cluster,
                node=node,
                params=params,
                mutating=mutating,
                requested_by=requested_by,
            )
            Step.objects.bulk_create(
                Step(job=job, position=i, name=s.name, title=s.title, node=s.node)
                for i, s in enumerate(specs, start=1)
            )
            _enqueue(job.pk)
    except IntegrityError as exc:
        raise JobConflict(_conflict_message(cluster, _active_conflict(cluster))) from exc
    return job


def job_cancel(*, job: Job) -> Job:
    """Ask a job to stop. A pending job ends at once; a running one stops at its next check
    (between steps, or within half a second inside a remote command, which is then killed)."""
    if job.is_terminal:
        raise JobConflict(f"job #{job.pk} already ended ({job.status}); nothing to cancel")
    now = timezone.now()
    Job.objects.filter(pk=job.pk, status__in=JobStatus.active()).update(cancel_requested=True)
    ended = Job.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(
        status=JobStatus.CANCELED, finished=now, error="canceled before a worker started it"
    )
    if ended:
        job.steps.filter(status=StepStatus.PENDING).update(
            status=StepStatus.CANCELED, summary="not run: the job was canceled"
        )
    job.refresh_from_db()
    return job


def job_retry(*, job: Job) -> Job:
    """Run a failed, errored, canceled or lost job again from its first unfinished step."""
    if job.status not in JobStatus.retryable():
        raise JobConflict(
            f"job #{job.pk} is {job.status}; only a job that ended without success can be retried"
        )
    if job.kind == "fence" and job.node is not None:
        # The cluster may have moved on since: never fence what became the primary.
        if reason := fence.unsafe_to_fence(job.cluster, job.node):
            raise JobRefused(reason)
        if (other := _active_fence_conflict(job.cluster)) and other.pk != job.pk:
            raise JobConflict(f"cluster {job.cluster.name} has an active {other.kind} job")
    try:
        with transaction.atomic():
            reset = Job.objects.filter(pk=job.pk, status__in=JobStatus.retryable()).update(
                status=JobStatus.PENDING,
                cancel_requested=False,
                error="",
                finished=None,
                worker="",
            )
            if not reset:
                raise JobConflict(f"job #{job.pk} changed meanwhile; reload and try again")
            job.steps.exclude(status__in=StepStatus.done()).update(
                status=StepStatus.PENDING, summary="", progress=None, started=None, finished=None
            )
            _enqueue(job.pk)
    except IntegrityError as exc:
        raise JobConflict(_conflict_message(job.cluster, _active_conflict(job.cluster))) from exc
    job.refresh_from_db()
    return job
