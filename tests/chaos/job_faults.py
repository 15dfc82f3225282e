"""Faults that hit HA Center's own jobs, not the database: the Celery worker killed during a
setup and during a Rebuild, and the SSH connection of a running step dropped.

Each one starts a job, breaks it at a point that moves from round to round, lets HA Center
notice (the reaper marks a killed worker's job lost; a dropped connection fails its step),
retries the job once and records what happened in `Target.findings`; `broken_promises` turns
the findings into the round's verdict.
"""

import re
import time

from jobs import services
from jobs.models import Job, JobStatus, Step, StepStatus
from tests.chaos.faults import DATA, Target
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job

# Where a round interrupts a setup: the first step of this name that has started, cycling with
# the round. They cover a package check, etcd, Patroni's config, the nodes and HAProxy.
SETUP_KILL_AT = ("patroni_configure", "etcd_start", "start_standby", "install_patroni", "haproxy")
SETUP_DROP_AT = ("install_patroni", "haproxy", "etcd_configure", "bootstrap_primary", "check_login")
# Inside the node: kill the first per-connection sshd (OpenSSH 9.2 names it `sshd: USER@notty`;
# 9.8+ would be `sshd-session`) that has a child, i.e. runs one of the job's commands right now.
# Looks for $1 seconds; exits 1 when no command ran meanwhile.
_DROP_BUSY_SESSION = r"""
end=$(( $(date +%s) + $1 ))
while [ "$(date +%s)" -lt "$end" ]; do
  for p in $(pgrep -f '^sshd: [a-z0-9_-]+@notty'); do
    c=$(pgrep -P "$p" | head -n 1)
    if [ -n "$c" ]; then
      cmd=$(tr '\0' ' ' < "/proc/$c/cmdline" 2>/dev/null)
      if [ -n "$cmd" ]; then kill -KILL "$p" && echo "$cmd"; exit 0; fi
    fi
  done
  sleep 0.05
done
exit 1
"""


def _start(target: Target, kind: str, node: str | None = None, **params: object) -> Job:
    target.cluster.refresh_from_db()  # plans check the state the previous job left
    return services.job_start(
        cluster=target.cluster,
        kind=kind,
        node=target.cluster.nodes.get(name=node) if node else None,
        params=params,
    )


def _reached(job: Job, name: str, timeout: float = 300) -> Step | None:
    """Wait until the first step called `name` (or any later one) has started; return the
    step running now, if any (a step of a few milliseconds may already be over)."""
    first = job.steps.filter(name=name).order_by("position").first().position
    wait_for(
        lambda: job.steps.filter(position__gte=first).exclude(status=StepStatus.PENDING).exists(),
        timeout,
        f"job #{job.pk} to reach {name}",
        interval=0.05,
    )
    return job.steps.filter(status=StepStatus.RUNNING).select_related("node").first()


def _where(step: Step | None) -> str:
    if step is None:
        return "between two steps"
    return f"{step.title}" + (f" on {step.node.name}" if step.node else "")


def _interrupted(job: Job) -> Step | None:
    """The step the fault stopped: the reaper marks it errored, a dropped connection failed."""
    return job.steps.filter(status__in=(StepStatus.ERRORED, StepStatus.FAILED)).first()


def _retry(target: Target, job: Job) -> None:
    """Retry once and record how the retry went, what the interrupted step said the second
    time, and which steps that had finished before the fault ran again."""
    interrupted = _interrupted(job)
    done_before = list(
        job.steps.filter(status__in=StepStatus.done()).values_list("position", flat=True)
    )
    started = time.monotonic()
    job = wait_for_job(services.job_retry(job=job), timeout=600)
    again = job.steps.get(pk=interrupted.pk).summary if interrupted else ""
    target.findings.update(
        retry_status=job.status,
        retry_error=job.error[:300],
        retry_verdict=again[:300],
        retry_s=round(time.monotonic() - started, 1),
        attempt=job.attempt,
        resumed=job.log_lines.filter(text__startswith="attempt 2: resuming at step").exists(),
        # A step that had finished before the fault logs "step N: title" once; twice means the
        # retry ran it again.
        rerun_steps=[
            p
            for p in done_before
            if job.log_lines.filter(text__startswith=f"step {p}: ").count() > 1
        ],
    )
    # Fail the round now, with the reason, rather than when the cluster does not recover.
    assert job.status == JobStatus.SUCCEEDED, f"the retry of job #{job.pk} ended: {job.error}"


def _kill_worker_then_retry(target: Target, job: Job, step: Step | None) -> None:
    """Kill the worker now, start its replacement, wait for the reaper, retry once."""
    killed = time.monotonic()
    target.workers.replace()
    job = wait_for_job(job, timeout=120, statuses=tuple(JobStatus.terminal()))
    interrupted = _interrupted(job)
    target.findings.update(
        job=job.pk,
        kind=job.kind,
        interrupted=_where(interrupted or step),
        ended_as=job.status,
        ended_after_s=round(time.monotonic() - killed, 1),
        error=job.error[:300],
    )
    _retry(target, job)


def worker_kill_setup(target: Target) -> None:
    """Re-run setup on the live cluster (it is idempotent) and kill its worker half-way."""
    job = _start(target, "setup")
    at = SETUP_KILL_AT[(target.round - 1) % len(SETUP_KILL_AT)]
    _kill_worker_then_retry(target, job, _reached(job, at))


def worker_kill_rebuild(target: Target) -> None:
    """Rebuild the standby with a full copy and kill the worker inside the copy step, cycling
    with the round: while Patroni copies the primary into the emptied data directory, as the
    step starts (Patroni being stopped), and just after the old data went aside."""
    job = _start(target, "rebuild", target.standby, full_copy=True)
    step = _reached(job, "reinitialise")
    data = DATA.format(name=target.cluster.name)
    when = ("while copying", "as the step starts", "after the move aside")[(target.round - 1) % 3]
    if when != "as the step starts":
        wait_for(
            lambda: job.log_lines.filter(text__startswith="old data kept in").exists(),
            60,
            "the old data to go aside",
            interval=0.05,
        )
    if when == "while copying":  # Patroni's base backup re-creates the data directory
        wait_for(
            lambda: (
                target.lab.exec(target.standby, ["test", "-d", data], check=False).returncode == 0
            ),
            60,
            "Patroni to start the copy",
            interval=0.05,
        )
    target.findings["killed"] = when
    _kill_worker_then_retry(target, job, step)
    aside = f"{data}.rebuild-{job.created:%Y%m%dT%H%M%SZ}"
    kept = target.lab.exec(
        target.standby, ["test", "-f", f"{aside}/PG_VERSION"], check=False
    ).returncode
    target.findings["old_data_kept"] = kept == 0


def ssh_drop(target: Target) -> None:
    """Re-run setup and drop the SSH connection of a step while one of its commands runs (the
    per-connection sshd killed on that host); expect a clear failure, then retry."""
    at = SETUP_DROP_AT[(target.round - 1) % len(SETUP_DROP_AT)]
    # A setup may run out of commands from `at` on, or the command found may end just before
    # its sshd is killed (then the job succeeds): neither is a drop to judge, so try again.
    for _ in range(3):
        job = _start(target, "setup")
        dropped_on = _drop_a_command(target, job, at)
        dropped = time.monotonic()
        job = wait_for_job(job, timeout=120)
        if dropped_on and job.status != JobStatus.SUCCEEDED:
            break
    assert dropped_on, f"no command of job #{job.pk} ran from {at} on to drop"
    host, command = dropped_on
    interrupted = _interrupted(job)
    # The dropped command outlives its sshd; HA Center says it killed its process group.
    group = re.search(r"process group (\d+)", job.error)
    left = group and target.lab.exec(host, ["pgrep", "-g", group[1]], check=False).returncode == 0
    secrets = [s for s in target.cluster.secret_values() if s]
    target.findings.update(
        job=job.pk,
        kind=job.kind,
        host=host,
        command=command[:200],
        interrupted=_where(interrupted),
        ended_as=job.status,
        ended_after_s=round(time.monotonic() - dropped, 1),
        error=job.error[:300],
        error_clear=bool(
            interrupted
            and _failure_prefix(interrupted) in job.error
            and f"SSH connection to {host} (" in job.error
            and "\n" not in job.error
            and "Traceback" not in job.error
        ),
        orphan_left=bool(left),
        secrets_shown=any(
            s in job.error or job.log_lines.filter(text__contains=s).exists() for s in secrets
        ),
    )
    _retry(target, job)


def _drop_a_command(target: Target, job: Job, at: str) -> tuple[str, str] | None:
    """From the step `at` on, drop the SSH connection of the first command of the job found
    running, on the host of the step running at that moment: (host, command), or None when
    the job ended first. A step's commands can be milliseconds apart, or all done already
    (a re-run finds most things in place), so it looks a few seconds at a time."""
    _reached(job, at)
    while True:
        job.refresh_from_db()
        if job.is_terminal:
            return None
        step = job.steps.filter(status=StepStatus.RUNNING).select_related("node").first()
        host = step.node.name if step and step.node else target.primary
        found = target.lab.exec(host, ["sh", "-c", _DROP_BUSY_SESSION, "drop", "3"], check=False)
        if found.returncode == 0:
            return host, found.stdout.strip()


def _failure_prefix(step: Step) -> str:
    """How the job's error starts for a failed step (jobs.runner.failure_line): with the node
    when the step has one; a step on every node leaves that to the SSH error."""
    return f"{step.title} on {step.node.name}:" if step.node else f"{step.title}:"


def broken_promises(fault: str, findings: dict) -> list[str]:
    """What a job fault's round promised and did not keep (empty: all kept)."""
    broken = []
    if fault.startswith("worker_kill"):
        if findings.get("ended_as") != JobStatus.LOST:
            broken.append(f"the killed job ended {findings.get('ended_as')}, not lost")
        elif "stopped sending heartbeats" not in findings.get("error", ""):
            broken.append(f"the lost job does not say why: {findings.get('error')!r}")
    if fault == "ssh_drop":
        if findings.get("ended_as") != JobStatus.FAILED:
            broken.append(f"the job ended {findings.get('ended_as')} after the drop, not failed")
        if not findings.get("error_clear"):
            broken.append(f"unclear error after the drop: {findings.get('error')!r}")
        if findings.get("orphan_left"):
            broken.append("the dropped command still runs on the host")
        if findings.get("secrets_shown"):
            broken.append("a secret is in the job's error or log")
    if fault == "worker_kill_rebuild" and not findings.get("old_data_kept"):
        broken.append("the old data directory is not kept aside")
    if findings.get("retry_status") != JobStatus.SUCCEEDED:
        broken.append(
            f"the retry ended {findings.get('retry_status')}: {findings.get('retry_error')}"
        )
    if findings.get("attempt") != 2 or not findings.get("resumed"):
        broken.append(f"the retry did not resume as attempt 2 (attempt {findings.get('attempt')})")
    if findings.get("rerun_steps"):
        broken.append(f"steps finished before the fault ran again: {findings['rerun_steps']}")
    return broken
