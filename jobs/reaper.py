"""Jobs whose worker died: marked lost, so none stays "running" forever (beat runs this)."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import Job, JobStatus, LogLine, StepStatus


def jobs_reap_lost() -> list[int]:
    """Mark running jobs whose worker stopped beating as lost, so none stays "running" forever."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.JOB_LOST_AFTER_S)
    reaped = []
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat__lt=cutoff):
        message = (
            f"worker {job.worker} stopped sending heartbeats (last at "
            f"{job.heartbeat:%H:%M:%S} UTC); it probably died. Retry resumes at the "
            "unfinished step."
        )
        with transaction.atomic():
            if not Job.objects.filter(
                pk=job.pk, status=JobStatus.RUNNING, heartbeat=job.heartbeat
            ).update(status=JobStatus.LOST, error=message, finished=timezone.now()):
                continue  # it beat or ended meanwhile
            job.steps.filter(status=StepStatus.RUNNING).update(
                status=StepStatus.ERRORED,
                summary="the worker was lost during this step",
                finished=timezone.now(),
            )
            last = job.log_lines.order_by("-seq").values_list("seq", flat=True).first() or 0
            LogLine.objects.create(
                job=job,
                seq=last + 1,
                ts=timezone.now(),
                stream=LogLine.Stream.CONSOLE,
                text=f"job lost: {message}",
            )
        reaped.append(job.pk)
    return reaped
