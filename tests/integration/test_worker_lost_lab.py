"""A worker killed with SIGKILL mid-job: the job is marked lost by the reaper, and retry
finishes it. Needs its own worker (it gets killed) and a real beat for the reaper."""

import pytest

from jobs import services
from jobs.models import JobStatus, StepStatus
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job
from tests.workers import start_beat, start_worker

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_job_leaves_it_lost_and_retry_finishes_it(lab_cluster, lab_clean):
    """The killed worker's command keeps running on the node (it has a session of its own);
    the retry kills it before it runs the step again."""
    flag, leftover = "/tmp/hacenter-lost-flag", "sleep 600.5151"

    def leftover_running() -> bool:
        return lab_clean.exec("node1", ["pgrep", "-f", leftover], check=False).returncode == 0

    lab_clean.exec("node1", ["rm", "-f", flag])
    processes = [start_beat()]
    try:
        doomed = start_worker(name="doomed")
        processes.append(doomed)
        job = services.job_start(
            cluster=lab_cluster,
            kind="test_shell",
            node=lab_cluster.nodes.get(name="node1"),
            # The first attempt waits; the second finds the flag and finishes at once.
            params={
                "commands": [
                    "echo one",
                    f"if [ -e {flag} ]; then echo two; else touch {flag}; {leftover}; fi",
                ]
            },
        )
        wait_for(leftover_running, 30, "step 2's sleep to run")
        doomed.kill()
        # Another worker, the one that will retry, runs the reaper that beat schedules.
        processes.append(start_worker(name="rescuer"))
        job = wait_for_job(job, timeout=60, statuses=(JobStatus.LOST,))
        assert "stopped sending heartbeats" in job.error
        assert job.steps.get(position=2).status == StepStatus.ERRORED
        assert job.steps.get(position=1).status == StepStatus.SUCCEEDED

        services.job_retry(job=job)
        job = wait_for_job(job, timeout=60)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert job.attempt == 2
        assert job.log_lines.filter(text="one").count() == 1
        assert job.log_lines.filter(text="two").exists()
        assert not leftover_running()
        swept = job.log_lines.get(text__startswith="killed what an earlier attempt left running")
        assert swept.host == "node1"
    finally:
        for process in processes:
            process.stop()
