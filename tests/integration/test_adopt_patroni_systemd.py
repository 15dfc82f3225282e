"""Adopting a customer's own Patroni cluster (built without HA Center) on the systemd lab.

The customer's way: Debian's packages through the lab's APT proxy (patroni, etcd-server,
etcd-client, postgresql-15), a 3-member etcd over proxy/node1/node2, Patroni's own YAML with its
own scope and namespace and a REST password, systemd units. No HAProxy: the console shows the
cluster without a proxy (no proxy node; its state does not count a missing proxy against it).
Then, through the API: adopt (the lint names Patroni 3.0.2's leader-key bug), healthy with the
right primary, setup refused without force, a switchover from the console, and a safe restart
of the new standby.

The customer runs Debian 12's Patroni 3.0.2, which calls a streaming replica "running": the
console must still see the standby stream (from the primary's WAL senders). Run with `-s` to
see each phase's duration and the jobs' verdicts.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from clusters.models import Cluster
from jobs import patroni_api
from jobs.models import Job, JobStatus
from jobs.playbooks.packages import APT_COMMON
from tests.conftest import wait_for
from tests.integration.conftest import job_story, leader_name, streaming_standby, wait_for_job
from tests.integration.systemd_clusters import lab_login, scanned_nodes
from tests.lab_fixtures import on_debian
from tests.workers import start_beat

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCOPE, NAMESPACE = "shop", "/customer/"
REST_USER, REST_PASSWORD = "admin", "Rest-pass-1"
SUPERUSER_PASSWORD, REPLICATION_PASSWORD = "Super-pass-1", "Repl-pass-1"
DATA = "/var/lib/postgresql/15/shop"


def sh(lab, host: str, script: str, check: bool = True, timeout: float = 60) -> str:
    return lab.exec(host, ["sh", "-c", script], check=check, timeout=timeout).stdout.strip()


def patroni_yaml(lab, host: str) -> str:
    """The customer's Patroni YAML (JSON is YAML), as they would write it."""
    me = lab.host(host).address
    etcd = [f"{lab.host(h).address}:2379" for h in ("proxy", "node1", "node2")]
    return json.dumps(
        {
            "scope": SCOPE,
            "namespace": NAMESPACE,
            "name": host,
            "restapi": {
                "listen": f"{me}:8008",
                "connect_address": f"{me}:8008",
                "authentication": {"username": REST_USER, "password": REST_PASSWORD},
            },
            "etcd3": {"hosts": etcd},
            "bootstrap": {
                "dcs": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10},
                "initdb": [{"encoding": "UTF8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{me},127.0.0.1:5432",
                "connect_address": f"{me}:5432",
                "data_dir": DATA,
                "bin_dir": "/usr/lib/postgresql/15/bin",
                "pgpass": "/var/lib/postgresql/.pgpass_shop",
                "authentication": {
                    "superuser": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                    "replication": {"username": "replicator", "password": REPLICATION_PASSWORD},
                },
                "parameters": {"unix_socket_directories": "/var/run/postgresql"},
                "pg_hba": [
                    "local all all peer",
                    # Patroni itself connects over TCP to 127.0.0.1 (its listen address).
                    "host all all 127.0.0.1/32 scram-sha-256",
                    "host replication replicator 198.19.0.0/24 scram-sha-256",
                    "host all all 198.19.0.0/24 scram-sha-256",
                ],
            },
        }
    )


def verdicts(job: Job) -> str:
    """Each step's status and one-line verdict."""
    return "\n".join(f"  {s.name} {s.status}: {s.summary}" for s in job.steps.order_by("position"))


def customer_installs(lab, host: str, initial_cluster: str) -> None:
    """One host's packages from Debian (through the lab's APT proxy) and its etcd settings."""
    sh(
        lab,
        host,
        f"echo 'Acquire::http::Proxy \"{lab.apt_proxy_url}\";' > /etc/apt/apt.conf.d/01proxy",
    )
    wanted = "etcd-server etcd-client" + (" postgresql-15 patroni" if host != "proxy" else "")
    sh(
        lab,
        host,
        # The product's own apt options: no pipelining through apt-cacher-ng (a closed pipelined
        # connection stalled this step for 15 minutes once), timeouts and retries.
        f"apt-get {APT_COMMON} update -q && "
        f"DEBIAN_FRONTEND=noninteractive apt-get {APT_COMMON} install -qy {wanted}",
        timeout=900,
    )
    me = lab.host(host).address
    # Debian's etcd-server starts a single-node etcd whose data overrides the cluster flags.
    sh(
        lab,
        host,
        "systemctl stop etcd && rm -rf /var/lib/etcd/default && cat > /etc/default/etcd <<EOF\n"
        f"ETCD_NAME={host}\nETCD_DATA_DIR=/var/lib/etcd/default\n"
        f"ETCD_LISTEN_PEER_URLS=http://{me}:2380\n"
        f"ETCD_LISTEN_CLIENT_URLS=http://{me}:2379,http://127.0.0.1:2379\n"
        f"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://{me}:2380\n"
        f"ETCD_ADVERTISE_CLIENT_URLS=http://{me}:2379\n"
        f"ETCD_INITIAL_CLUSTER={initial_cluster}\nETCD_INITIAL_CLUSTER_STATE=new\n"
        "ETCD_INITIAL_CLUSTER_TOKEN=shop\nEOF\n",
    )


def customer_builds_patroni(lab) -> None:
    """What the customer did before HA Center: packages, etcd, Patroni as systemd units."""
    hosts = ("proxy", "node1", "node2")
    initial = ",".join(f"{h}=http://{lab.host(h).address}:2380" for h in hosts)
    # The three hosts install at once (the slowest part of the test).
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(lambda host: customer_installs(lab, host, initial), hosts))
    for host in hosts:
        sh(lab, host, "systemctl start --no-block etcd")
    wait_for(
        lambda: "is healthy" in sh(lab, "proxy", "etcdctl endpoint health 2>&1", check=False),
        60,
        "the customer's etcd",
    )
    for host in ("node1", "node2"):
        sh(lab, host, "systemctl disable --now postgresql && pg_dropcluster --stop 15 main || true")
        lab.exec(
            host,
            ["sh", "-c", "mkdir -p /etc/patroni && cat > /etc/patroni/config.yml"],
            input=patroni_yaml(lab, host),
        )
        sh(
            lab,
            host,
            "chown postgres:postgres /etc/patroni/config.yml && chmod 600 /etc/patroni/config.yml",
        )
        sh(lab, host, "systemctl enable --now patroni")
        if host == "node1":
            wait_for(lambda: leader_name(lab.host("node1").address) == "node1", 120, "node1 leads")
    addresses = (lab.host("node1").address, lab.host("node2").address)
    wait_for(lambda: streaming_standby(*addresses), 180, "node2 to stream")


@pytest.mark.timeout(2400)
@on_debian("12")
def test_an_existing_patroni_cluster_is_adopted_and_switched_over(fresh_systemd_lab, worker, api):
    lab = fresh_systemd_lab
    took: dict[str, float] = {}
    started_at = time.monotonic()
    customer_builds_patroni(lab)
    took["customer's cluster built"] = time.monotonic() - started_at
    login = lab_login(api, lab, "adopt-root")
    # no HAProxy: the proxy host is only an etcd member
    nodes = scanned_nodes(api, lab, login, ["node1", "node2"])
    adopted = api.post(
        "/api/v1/clusters/adopt/",
        {"nodes": nodes, "rest_api": {"username": REST_USER, "password": REST_PASSWORD}},
    )
    assert adopted.status_code == 202, adopted.content
    phase = time.monotonic()
    job = wait_for_job(Job.objects.get(pk=adopted.json()["job"]["id"]), timeout=300)
    took["adopt job"] = time.monotonic() - phase
    print(f"adopt job:\n{verdicts(job)}")
    assert job.status == JobStatus.SUCCEEDED, job.error
    # The console logs in to every node with its monitoring role (no pg_hba warning).
    assert job.steps.get(name="monitor_role").status == "succeeded", verdicts(job)
    cluster = Cluster.objects.get(pk=adopted.json()["id"])
    assert cluster.name == SCOPE and cluster.origin == "adopted"
    layout = cluster.patroni_layout
    assert (layout["namespace"], layout["data_dir"]) == (NAMESPACE, DATA)
    assert (
        layout["config_path"] == "/etc/patroni/config.yml" and layout["unit"] == "patroni.service"
    )
    assert REST_PASSWORD not in json.dumps(layout)
    assert cluster.secrets.get(name="rest_api").value == REST_PASSWORD
    assert cluster.secrets.get(name="superuser").value == SUPERUSER_PASSWORD
    log = "".join(job.log_lines.values_list("text", flat=True))
    for password in (REST_PASSWORD, SUPERUSER_PASSWORD, REPLICATION_PASSWORD):
        assert password not in log
    assert cluster.config_checked is not None
    # Debian 12's Patroni 3.0.2 has the leader-key overwrite (DESIGN §2): the lint names it.
    assert [f["rule"] for f in cluster.config_findings if f["severity"] == "error"] == [
        "patroni_version"
    ], cluster.config_findings

    beat = start_beat()
    try:
        phase = time.monotonic()
        wait_for(lambda: Cluster.objects.get(pk=cluster.pk).state == "healthy", 90, "healthy")
        took["monitor says healthy"] = time.monotonic() - phase
        detail = api.get(f"/api/v1/clusters/{cluster.pk}/").json()
        assert detail["primary"] == "node1", detail
        assert detail["proxy"]["address"] is None

        refused = api.post(f"/api/v1/clusters/{cluster.pk}/jobs/", {"kind": "setup"})
        assert refused.status_code == 400 and "adopted" in refused.json()["error"]

        started = api.post(f"/api/v1/clusters/{cluster.pk}/jobs/", {"kind": "switchover"})
        assert started.status_code == 202, started.content
        phase = time.monotonic()
        switch = wait_for_job(Job.objects.get(pk=started.json()["id"]), timeout=180)
        took["switchover job"] = time.monotonic() - phase
        print(f"switchover job:\n{verdicts(switch)}")
        assert switch.status == JobStatus.SUCCEEDED, switch.error
        # Succeeded, not a warning: the job saw the old primary stream from the new one.
        assert switch.steps.get(name="switchover").status == "succeeded", job_story(switch)
        addresses = (lab.host("node1").address, lab.host("node2").address)
        assert leader_name(*addresses) == "node2"
        wait_for(lambda: streaming_standby(*addresses), 60, "node1 to stream from node2")
        wait_for(
            lambda: api.get(f"/api/v1/clusters/{cluster.pk}/").json()["primary"] == "node2",
            60,
            "the console to show node2 as primary",
        )
        wait_for(
            lambda: Cluster.objects.get(pk=cluster.pk).state == "healthy",
            60,
            "healthy again, node1 streaming",
        )

        # A safe restart of the new standby, through the customer's REST password: Patroni
        # paused, PostgreSQL restarted, streaming proven, resumed; no failover.
        started = api.post(
            f"/api/v1/clusters/{cluster.pk}/jobs/", {"kind": "restart", "node": "node1"}
        )
        assert started.status_code == 202, started.content
        phase = time.monotonic()
        restart = wait_for_job(Job.objects.get(pk=started.json()["id"]), timeout=180)
        took["restart job"] = time.monotonic() - phase
        print(f"restart job:\n{verdicts(restart)}")
        assert restart.status == JobStatus.SUCCEEDED, job_story(restart)
        assert leader_name(*addresses) == "node2"
        assert not patroni_api.cluster(addresses[1]).get("pause")
    finally:
        beat.stop()
        took["whole test body"] = time.monotonic() - started_at
        print("; ".join(f"{what} {seconds:.1f} s" for what, seconds in took.items()))
