"""A setup whose worker is killed half-way completes on retry. Its own module: no other worker
may take the job (module-scoped workers of other modules are stopped by then)."""

import pytest

from jobs import services
from jobs.models import JobStatus, StepStatus
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job
from tests.integration.test_setup_lab import define_cluster
from tests.workers import start_beat, start_worker

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_setup_whose_worker_is_killed_half_way_completes_on_retry(fresh_lab):
    cluster = define_cluster(fresh_lab, "pgkill")
    processes = [start_beat(), start_worker(name="doomed")]
    try:
        job = services.job_start(cluster=cluster, kind="setup")
        wait_for(
            lambda: job.steps.filter(name="etcd_verify", status=StepStatus.SUCCEEDED).exists(),
            300,
            "setup to get past etcd",
        )
        processes[1].kill()
        processes.append(start_worker(name="rescuer"))
        job = wait_for_job(job, timeout=90, statuses=(JobStatus.LOST,))
        services.job_retry(job=job)
        job = wait_for_job(job, timeout=600)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert job.attempt == 2
        assert job.steps.get(name="etcd_verify").finished < job.started  # not run again
    finally:
        for process in processes:
            process.stop()
