"""Runs one job in a worker: claim it, walk its steps, keep the log and the heartbeat going.

The database is the source of truth. A job is claimed with a conditional UPDATE, so a redelivered
message never runs it twice; every later status change is guarded by "still running, still mine",
so a worker that was declared lost cannot overwrite what the reaper decided.
"""

import logging
import os
import socket
import threading
import traceback

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from clusters.alerts.events import event_record
from clusters.inventory.crypto import FieldKeyError
from clusters.models import ClusterEvent
from jobs import ssh
from jobs.connections import ConnectionPool
from jobs.errors import StepCancelled, StepFailed, StepSkipped
from jobs.logwriter import LogWriter, Redactor
from jobs.models import Job, JobStatus, LogLine, Step, StepStatus
from jobs.playbooks import get_playbook
from jobs.playbooks.base import CancelFlag, StepContext, Verdict

logger = logging.getLogger(__name__)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Heartbeat(threading.Thread):
    """Beats for the job and flushes its log while the steps run in the main thread."""

    def __init__(self, job_id: int, worker: str, writer: LogWriter) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id, self.worker, self.writer = job_id, worker, writer
        self._stop_event = threading.Event()

    def run(self) -> None:
        last_beat = 0.0
        flush_every = settings.JOB_LOG_FLUSH_INTERVAL_S
        beat_every = settings.JOB_HEARTBEAT_INTERVAL_S
        try:
            while not self._stop_event.wait(flush_every):
                try:
                    self.writer.flush()
                    last_beat += flush_every
                    if last_beat >= beat_every:
                        last_beat = 0.0
                        Job.objects.filter(
                            pk=self.job_id, status=JobStatus.RUNNING, worker=self.worker
                        ).update(heartbeat=timezone.now())
                except Exception:  # a hiccup of the database must not kill the heartbeat
                    logger.exception("heartbeat of job %s failed", self.job_id)
        finally:
            connection.close()  # this thread's own database connection

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def job_failed_event(job: Job, status: str, error: str) -> None:
    """A failed job is an event of its cluster, so alerts go out for it."""
    event_record(
        job.cluster,
        ClusterEvent.Kind.JOB_FAILED,
        f"{job.kind} job #{job.pk} {status}: {error}",
        severity=ClusterEvent.Severity.WARNING,
        node=job.node.name if job.node else "",
        details={"job": job.pk, "kind": job.kind},
    )


def failure_line(step: Step, summary: str) -> str:
    """The job's error for a failed step: several steps share a title (one per node), so it
    names the node too."""
    where = f" on {step.node.name}" if step.node else ""
    return f"{step.title}{where}: {summary}"


def claim(job_id: int, worker: str) -> bool:
    """Take a pending job; False when another worker got there first or it was canceled."""
    now = timezone.now()
    taken = Job.objects.filter(pk=job_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING,
        worker=worker,
        heartbeat=now,
        started=now,
        finished=None,
        attempt=F("attempt") + 1,
    )
    return taken == 1


class JobRunner:
    """Walks a claimed job's unfinished steps in order and records how each one ended."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.worker = worker_identity()
        self.facts: dict = {}  # what steps learn and later steps use, for this run only

    def run(self) -> None:
        if not claim(self.job_id, self.worker):
            logger.info("job %s was not pending; another worker has it or it ended", self.job_id)
            return
        job = Job.objects.select_related("cluster", "node").get(pk=self.job_id)
        writer = LogWriter.for_job(job.pk, Redactor(job.cluster.secret_values()))
        heartbeat = Heartbeat(job.pk, self.worker, writer)
        heartbeat.start()
        pool = ConnectionPool(
            tag=f"job-{job.pk}",
            sweep=job.attempt > 1,
            log=lambda text, host: writer.write(text, stream=LogLine.Stream.CONSOLE, host=host),
        )
        status, error = JobStatus.ERRORED, ""
        try:
            status, error = self._walk(job, writer, pool)
        except Exception as exc:  # the console's own bug: keep it visible, mark errored
            error = f"{type(exc).__name__}: {exc}"
            writer.write(traceback.format_exc())
        finally:
            pool.close()
            heartbeat.stop()
        writer.write(f"job {status}" + (f": {error}" if error else ""))
        writer.flush()  # "succeeded" only once every line is stored
        ended = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker=self.worker).update(
            status=status, error=writer.redact(error), finished=timezone.now()
        )
        if ended and status in (JobStatus.FAILED, JobStatus.ERRORED):
            job_failed_event(job, status, writer.redact(error))

    def _walk(self, job: Job, writer: LogWriter, pool: ConnectionPool) -> tuple[str, str]:
        playbook = get_playbook(job.kind)
        cancelled = CancelFlag(job.pk)
        steps = list(
            job.steps.exclude(status__in=StepStatus.done())
            .select_related("node__credential")
            .order_by("position")
        )
        if job.attempt > 1 and steps:
            writer.write(
                f"attempt {job.attempt}: resuming at step {steps[0].position}, {steps[0].title}"
            )
        failures: list[str] = []
        errored = False
        for step in steps:
            if not self._still_mine():
                writer.write("this worker no longer holds the job (declared lost); stopping")
                return JobStatus.LOST, "the worker lost its claim on the job"
            if cancelled.check_now():
                self._finish_step(step, StepStatus.CANCELED, "canceled before it started")
                self._cancel_rest(job)
                return JobStatus.CANCELED, "canceled by an operator"
            ctx = StepContext(
                job=job,
                step=step,
                log_writer=writer,
                connections=pool,
                cancelled=cancelled,
                facts=self.facts,
            )
            status, summary = self._run_step(ctx)
            if status == StepStatus.CANCELED:
                self._cancel_rest(job)
                return JobStatus.CANCELED, "canceled by an operator"
            if status in (StepStatus.FAILED, StepStatus.ERRORED):
                failures.append(failure_line(step, summary))
                errored = errored or status == StepStatus.ERRORED
                if not playbook.keep_going:
                    break
        if failures:
            status = JobStatus.ERRORED if errored else JobStatus.FAILED
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            return status, failures[0] + more
        return JobStatus.SUCCEEDED, ""

    def _still_mine(self) -> bool:
        return Job.objects.filter(
            pk=self.job_id, status=JobStatus.RUNNING, worker=self.worker
        ).exists()

    def _run_step(self, ctx: StepContext) -> tuple[str, str]:
        """Run one step and store its status and verdict; never raises."""
        step = ctx.step
        step.started, step.status = timezone.now(), StepStatus.RUNNING
        Step.objects.filter(pk=step.pk).update(
            status=step.status, started=step.started, finished=None, summary="", progress=None
        )
        host = step.node.name if step.node else ""
        ctx.log(f"step {step.position}: {step.title}", host=host)
        playbook = get_playbook(ctx.job.kind)
        try:
            result = playbook.steps[step.name](ctx)
            verdict = result if isinstance(result, Verdict) else Verdict(str(result))
            status = StepStatus.WARNING if verdict.warning else StepStatus.SUCCEEDED
            summary = verdict.summary
        except StepSkipped as exc:
            status, summary = StepStatus.SKIPPED, str(exc)
        except StepFailed as exc:
            status, summary = StepStatus.FAILED, str(exc)
        except (ssh.CommandCancelled, StepCancelled):
            status, summary = StepStatus.CANCELED, "canceled by an operator; remote command ended"
        except ssh.SSHError as exc:
            status, summary = StepStatus.FAILED, str(exc)
        except FieldKeyError as exc:
            status, summary = StepStatus.ERRORED, str(exc)
        except Exception as exc:
            ctx.log(traceback.format_exc(), host=host)
            status, summary = StepStatus.ERRORED, f"{type(exc).__name__}: {exc}"
        summary = ctx.log_writer.redact(summary)[:500]
        ctx.log(f"step {step.position} {status}: {summary}", host=host)
        ctx.log_writer.flush()  # a step's verdict is stored only after its output
        self._finish_step(step, status, summary)
        return status, summary

    @staticmethod
    def _finish_step(step: Step, status: str, summary: str) -> None:
        step.status, step.summary, step.finished = status, summary, timezone.now()
        Step.objects.filter(pk=step.pk).update(
            status=status, summary=summary, finished=step.finished
        )

    @staticmethod
    def _cancel_rest(job: Job) -> None:
        job.steps.filter(status=StepStatus.PENDING).update(
            status=StepStatus.CANCELED, summary="not run: the job was canceled"
        )
