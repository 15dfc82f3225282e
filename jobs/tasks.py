"""Celery tasks: thin wrappers that take ids and call services."""

from celery import shared_task

from jobs.host_keys import host_key_scan
from jobs.reaper import jobs_reap_lost
from jobs.runner import JobRunner


@shared_task(ignore_result=True)
def run_job(job_id: int) -> None:
    """Run one job to its end (or until its worker dies, when the reaper takes over)."""
    JobRunner(job_id).run()


@shared_task(ignore_result=True)
def reap_lost_jobs() -> list[int]:
    """Mark the jobs of dead workers lost (beat, every 10 s)."""
    return jobs_reap_lost()


@shared_task
def scan_host_key(address: str, port: int) -> dict:
    """Read a server's SSH host key for the admin to confirm (trust on first use)."""
    return host_key_scan(address=address, port=port)
