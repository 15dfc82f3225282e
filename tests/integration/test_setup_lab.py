"""Setup on the lab: real PostgreSQL, Patroni (PyPI), etcd and HAProxy in network namespaces."""

import psycopg2
import pytest

from clusters.models import Cluster
from jobs import services
from jobs.models import JobStatus, StepStatus
from tests.integration.conftest import lab_credential, make_lab_cluster, wait_for_job

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_setup_builds_a_healthy_cluster_and_a_rerun_changes_nothing(lab_clean, worker):
    lab_clean.down(keep_data=False)
    lab_clean.up(fresh=True)
    cluster = make_lab_cluster(lab_clean, lab_credential(lab_clean), name="pg1")
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    steps = list(job.steps.select_related("node"))
    assert job.status == JobStatus.SUCCEEDED, (
        job.error,
        [(s.title, s.status, s.summary) for s in steps],
    )
    cluster.refresh_from_db()
    assert cluster.state == Cluster.State.HEALTHY
    secrets = {s.name: s.value for s in cluster.secrets.all()}
    conn = psycopg2.connect(
        host="198.18.0.10",
        port=5432,
        user="postgres",
        password=secrets["superuser"],
        dbname="postgres",
        connect_timeout=5,
    )
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        assert cur.fetchone() == (False,)
    conn.close()
    for secret in secrets.values():
        assert not job.log_lines.filter(text__contains=secret).exists()

    rerun = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=300)
    assert rerun.status == JobStatus.SUCCEEDED, rerun.error
    summaries = {
        (s.node.name if s.node else "cluster", s.name): s.summary
        for s in rerun.steps.select_related("node")
    }
    assert summaries[("node1", "patroni_configure")] == "Patroni already configured"
    assert summaries[("proxy", "etcd_configure")] == "etcd already configured"
    assert "already running" in summaries[("proxy", "etcd_start")]
    assert summaries[("node1", "install_patroni")].startswith("Patroni 4.1.5 already installed")
    assert "already configured and running" in summaries[("proxy", "haproxy")]
    assert all(s.status in (StepStatus.SUCCEEDED, StepStatus.WARNING) for s in rerun.steps.all())
