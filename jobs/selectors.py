"""Reads of jobs for the API and pages: a job with its steps, and its log after a cursor."""

from django.urls import reverse

from jobs.models import Job, JobStatus, LogLine, StepStatus

LOG_PAGE_LINES = 1000


def job_summary(job: Job) -> dict:
    """A job as lists show it (select_related cluster, node and requested_by)."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "cluster": job.cluster_id,
        "cluster_name": job.cluster.name,
        "node": job.node.name if job.node else None,
        "status": job.status,
        "error": job.error,
        "attempt": job.attempt,
        "requested_by": job.requested_by.get_username() if job.requested_by else None,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "url": reverse("job-detail", args=[job.pk]),
    }


def job_detail(job: Job) -> dict:
    """A job with its steps."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "cluster": job.cluster_id,
        "node": job.node.name if job.node else None,
        "status": job.status,
        "error": job.error,
        "attempt": job.attempt,
        "cancel_requested": job.cancel_requested,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "url": reverse("job-detail", args=[job.pk]),
        "steps": [
            {
                "position": s.position,
                "name": s.title,
                "node": s.node.name if s.node else None,
                "status": s.status,
                "summary": s.summary,
                "progress": s.progress,
                "started": s.started,
                "finished": s.finished,
            }
            for s in job.steps.select_related("node")
        ],
    }


def job_progress(steps) -> int:
    """How far the job is, in percent: finished steps count whole, the running one by the
    percentage it reports (a base backup does), else as half done."""
    steps = list(steps)
    if not steps:
        return 0
    done = 0.0
    for step in steps:
        if step.status in StepStatus.done():
            done += 1
        elif step.status == StepStatus.RUNNING:
            done += (step.progress / 100) if step.progress is not None else 0.5
    return int(100 * done / len(steps))


def job_log_after(
    job: Job, after: int, limit: int = LOG_PAGE_LINES
) -> tuple[list[LogLine], int, bool]:
    """The log lines after seq `after`, the cursor for the next call, and whether the log is
    complete (the job ended and every line was read; a job ends only after its log is flushed).
    """
    # Read the status first: lines stored before a terminal status are then all visible.
    status = Job.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    terminal = status in JobStatus.terminal()
    lines = list(job.log_lines.filter(seq__gt=after).order_by("seq")[: limit + 1])
    more = len(lines) > limit
    lines = lines[:limit]
    cursor = lines[-1].seq if lines else after
    return lines, cursor, terminal and not more


def log_line_json(line: LogLine) -> dict:
    return {
        "seq": line.seq,
        "ts": line.ts,
        "stream": line.stream,
        "host": line.host,
        "text": line.text,
    }
