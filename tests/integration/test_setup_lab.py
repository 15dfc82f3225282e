"""Setup on the lab: real PostgreSQL, Patroni (PyPI), etcd and HAProxy in network namespaces."""

import psycopg2
import pytest

from clusters.access.roles import assign_role
from clusters.models import ApiToken, AuditEntry, Cluster
from jobs import services
from jobs.models import JobStatus, StepStatus
from tests.conftest import wait_for
from tests.integration.conftest import lab_credential, make_lab_cluster, wait_for_job
from tests.workers import start_beat

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def query(dsn: str, sql: str, *args) -> list[tuple]:
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def define_cluster(lab, name: str, **extra) -> Cluster:
    cluster = make_lab_cluster(lab, lab_credential(lab), name=name)
    Cluster.objects.filter(pk=cluster.pk).update(**extra)
    cluster.refresh_from_db()
    return cluster


def test_setup_builds_a_healthy_cluster_and_a_rerun_changes_nothing(
    fresh_lab, worker, client, django_user_model, tmp_path, monkeypatch
):
    # The test runner plays the application server: its address is a client network.
    cluster = define_cluster(
        fresh_lab,
        "pg1",
        database_name="app",
        database_user="app",
        client_networks=["198.18.0.1/32"],
    )
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    steps = list(job.steps.select_related("node"))
    assert job.status == JobStatus.SUCCEEDED, (
        job.error,
        [(s.title, s.status, s.summary) for s in steps],
    )
    cluster.refresh_from_db()
    assert cluster.state == Cluster.State.HEALTHY

    admin = django_user_model.objects.create_user("admin", password="pw-admin-1")
    assign_role(admin, "admin")
    token = ApiToken.issue(admin)
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    detail = client.get(f"/api/v1/clusters/{cluster.pk}/", **auth).json()
    roles = {n["name"]: n["role"] for n in detail["nodes"]}
    assert roles == {"node1": "primary", "node2": "replica", "proxy": "unknown"}
    assert detail["primary"] == "node1"

    strings = client.get(f"/api/v1/clusters/{cluster.pk}/connection/", **auth).json()
    assert AuditEntry.objects.filter(action="cluster.connection.read", user=admin).exists()
    # The strings verify the server against the cluster's CA, saved where the client runs.
    assert "sslmode=verify-full" in strings["read_write"]
    ca = client.get(f"/api/v1/clusters/{cluster.pk}/ca/", **auth)
    (tmp_path / strings["ca_file"]).write_bytes(ca.content)
    monkeypatch.chdir(tmp_path)
    query(strings["read_write"], "CREATE TABLE t (id int PRIMARY KEY)")
    query(strings["read_write"], "INSERT INTO t VALUES (42)")
    assert query(strings["read_write"], "SELECT pg_is_in_recovery()") == [(False,)]
    wait_for(
        lambda: query(strings["read_only"], "SELECT id FROM t") == [(42,)],
        15,
        "the row to be readable on the standby through :5433",
    )
    assert query(strings["read_only"], "SELECT pg_is_in_recovery()") == [(True,)]
    assert query(strings["multi_host"], "SELECT pg_is_in_recovery()") == [(False,)]

    # No generated password in any log line, API answer or page.
    secrets = [s.value for s in cluster.secrets.all()]
    client.force_login(admin)
    answers = [
        client.get(f"/api/v1/clusters/{cluster.pk}/", **auth).content,
        client.get(f"/api/v1/jobs/{job.pk}/", **auth).content,
        client.get(f"/api/v1/jobs/{job.pk}/log/?after=0", **auth).content,
        client.get(f"/clusters/{cluster.pk}/").content,
        client.get(f"/jobs/{job.pk}/").content,
    ]
    for secret in secrets:
        assert not job.log_lines.filter(text__contains=secret).exists()
        assert not any(secret.encode() in answer for answer in answers)

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
    assert summaries[("cluster", "database_roles")].startswith("roles already present")
    assert all(s.status in (StepStatus.SUCCEEDED, StepStatus.WARNING) for s in rerun.steps.all())
    assert query(strings["read_write"], "SELECT id FROM t") == [(42,)]

    # Remove: refused without the name repeated; then services stop and data is moved aside.
    refused = client.post(
        f"/api/v1/clusters/{cluster.pk}/jobs/",
        {"kind": "remove_cluster"},
        content_type="application/json",
        **auth,
    )
    assert refused.status_code == 400 and "repeat the cluster's name" in refused.json()["error"]
    removal = services.job_start(cluster=cluster, kind="remove_cluster", params={"confirm": "pg1"})
    removal = wait_for_job(removal, timeout=180)
    assert removal.status == JobStatus.SUCCEEDED, removal.error
    cluster.refresh_from_db()
    assert cluster.state == Cluster.State.NEW
    for host in ("node1", "node2"):
        kept = fresh_lab.exec(host, ["ls", "/var/lib/postgresql/15"]).stdout.split()
        assert any(name.startswith("pg1.removed-") for name in kept), kept
        assert "pg1" not in kept
        assert fresh_lab.exec(host, ["pgrep", "-u", "postgres"], check=False).returncode == 1
    assert fresh_lab.exec("proxy", ["pgrep", "-x", "haproxy"], check=False).returncode == 1
    for host in ("proxy", "node1", "node2"):  # no node key left behind
        assert fresh_lab.exec(host, ["test", "-e", "/etc/hacenter/tls"], check=False).returncode
    assert not cluster.nodes.filter(tls_active=True).exists()


def test_unreachable_node_stops_setup_before_anything_is_touched(fresh_lab, worker):
    cluster = define_cluster(fresh_lab, "pgdown")
    fresh_lab.power_off("node2")
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=120)
    assert job.status == JobStatus.FAILED
    login = job.steps.get(node__name="node2", name="check_login")
    assert login.status == StepStatus.FAILED and "198.18.0.12" in login.summary
    touched = job.steps.exclude(name__in=["prepare", "check_login"])
    assert set(touched.values_list("status", flat=True)) == {StepStatus.PENDING}
    leftovers = fresh_lab.exec("node1", ["ls", "/etc/patroni", "/etc/hacenter"], check=False)
    assert "pgdown" not in leftovers.stdout
    assert "/etc/hacenter" in leftovers.stderr  # a fresh host has none, and nothing made it


def test_sync_cluster_of_three_database_nodes_reports_its_sync_standby(lab, worker, api):
    from tests.lab import Lab

    lab.down(keep_data=False)
    big = Lab(n_db=3, root=lab.root)
    try:
        big.up(fresh=True)
        cluster = define_cluster(big, "pg3", replication="sync")
        job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
        assert job.status == JobStatus.SUCCEEDED, job.error
        # Four hosts, but an odd number of etcd members: node3 is left out of the quorum.
        members = {s.node.name for s in job.steps.filter(name="etcd_start")}
        assert members == {"proxy", "node1", "node2"}
        detail = api.get(f"/api/v1/clusters/{cluster.pk}/").json()
        roles = sorted(n["role"] for n in detail["nodes"] if n["kind"] == "database")
        assert roles == ["primary", "replica", "sync_replica"]
        # Once monitored, every standby has its lag in seconds too, the synchronous one included.
        beat = start_beat()
        try:
            seen = []

            def standby_lags() -> dict:
                nodes = api.get(f"/api/v1/clusters/{cluster.pk}/").json()["nodes"]
                seen[:] = [(n["name"], n["role"], n["lag_bytes"], n["lag_seconds"]) for n in nodes]
                standbys = [n for n in nodes if n["kind"] == "database" and n["role"] != "primary"]
                lags = {n["role"]: n["lag_seconds"] for n in standbys}
                return lags if None not in lags.values() and len(lags) == 2 else {}

            try:
                lags = wait_for(standby_lags, 30, "lag_seconds for both standbys")
            except BaseException:
                raise AssertionError(f"standbys as last seen: {seen}") from None
            assert set(lags) == {"replica", "sync_replica"}
        finally:
            beat.stop()
    finally:
        big.down(keep_data=False)
        lab.up(fresh=True)
