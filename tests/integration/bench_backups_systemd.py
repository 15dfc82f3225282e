"""Benchmark, not a test of the suite (bench/backups.py runs it): a Rebuild by full copy of a
standby restored from the backup repository (pgBackRest) against one copied from the primary
(pg_basebackup), on the systemd lab's fresh Debian servers, at a pgbench scale the caller
chooses (HACENTER_BENCH_SCALE; about 15 MB a unit of scale).

The cluster is set up with backups on (setup configures them), pgbench fills it, a full backup
goes into the repository on the proxy; then the standby is rebuilt twice by full copy, first
from the repository, then from the primary (`copy_from=primary`). The times are the Rebuild's
copy step's own (data directory moved aside, Patroni's copy, until the standby streams).
"""

import os
import time

import pytest

from clusters.models import Cluster
from jobs.models import Job, JobStatus
from tests.integration.test_backups_systemd import PGBENCH, define, psql
from tests.integration.test_fresh_servers_systemd import primary_name, run

SCALE = int(os.environ.get("HACENTER_BENCH_SCALE", "0") or 0)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not SCALE, reason="a benchmark: bench/backups.py sets the scale"),
]


def copy_seconds(job: Job) -> float:
    step = job.steps.get(name="reinitialise")
    return (step.finished - step.started).total_seconds()


@pytest.mark.timeout(6 * 3600)
def test_rebuild_from_the_repository_against_a_copy_from_the_primary(
    fresh_systemd_lab, worker, api
):
    lab = fresh_systemd_lab
    cluster_id, _ = define(api, lab)
    assert api.put(f"/api/v1/clusters/{cluster_id}/backups/", {}).status_code == 200
    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.SUCCEEDED, setup.error
    first = primary_name(lab)
    standby = "node2" if first == "node1" else "node1"

    started = time.monotonic()
    # lab.exec's own 60 s are too short for a large scale
    lab.exec(first, ["sh", "-c", f"{PGBENCH} -q -i -s {SCALE} postgres"], timeout=3 * 3600)
    load_s = time.monotonic() - started
    size = int(psql(lab, first, "SELECT sum(pg_database_size(datname)) FROM pg_database"))
    started = time.monotonic()
    full = run(api, cluster_id, "backup", timeout=6 * 3600, backup_type="full")
    assert full.status == JobStatus.SUCCEEDED, full.error
    backup_s = time.monotonic() - started
    cluster = Cluster.objects.get(pk=cluster_id)
    assert cluster.backup_policy.holds_backup()
    stored = cluster.backup_policy.info["backups"][-1]["repo_size_bytes"] / 1024**2

    times = {}
    for label, params in (("repository", {}), ("primary", {"copy_from": "primary"})):
        job = run(
            api, cluster_id, "rebuild", timeout=6 * 3600, node=standby, full_copy=True, **params
        )
        assert job.status == JobStatus.SUCCEEDED, job.error
        summary = job.steps.get(name="reinitialise").summary
        wanted = "pgBackRest restore" if label == "repository" else "pg_basebackup"
        assert wanted in summary, summary
        times[label] = copy_seconds(job)
        print(f"  {label}: {summary}")
    gb = size / 1024**3
    print(
        f"\nbench.backups scale {SCALE}: {gb:.2f} GB of databases "
        f"(pgbench -i {load_s:.0f} s, full backup job {backup_s:.0f} s, "
        f"{stored:.0f} MB in the repository)\n"
        f"rebuild by full copy from the repository (pgBackRest restore): "
        f"{times['repository']:.1f} s\n"
        f"rebuild by full copy from the primary (pg_basebackup): {times['primary']:.1f} s"
    )
