"""TLS on a cluster HA Center builds (issue 17 items 1-3), on the lab's real daemons: etcd
refuses a client without a certificate or with one from another CA, Patroni's REST API serves
https with the node certificate and nothing in plain http, its unsafe endpoints want the
password, HAProxy's checks reach Patroni over verified TLS, and the keys stay private."""

import http.client
import ssl

import psycopg2
import pytest

from clusters.inventory import pki
from clusters.models import Cluster, ClusterSecret, Node
from jobs import patroni_api, services
from jobs.configs import spec as paths
from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.integration.conftest import lab_credential, make_lab_cluster, wait_for_job

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PROXY, NODE1, NODE2 = "198.18.0.10", "198.18.0.11", "198.18.0.12"
CA, CERT, KEY = paths.TLS_CA_FILE, paths.TLS_CERT_FILE, paths.TLS_KEY_FILE


def curl(lab, host: str, url: str, *extra: str):
    """curl on a lab host trusting the cluster's CA; its exit status and what it said."""
    argv = ["curl", "-sS", "--max-time", "5", "--cacert", CA, *extra, url]
    return lab.exec(host, argv, check=False)


def stranger_files(lab, host: str) -> tuple[str, str]:
    """A certificate and key for node1's own names and address, from another CA, on `host`."""
    other = pki.new_authority("not-this-cluster")
    cert = pki.issue(other, common_name="node1", dns_names=["node1"], ip_addresses=[NODE1])
    lab.exec(host, ["sh", "-c", "umask 077; cat > /tmp/stranger.crt"], input=cert.certificate)
    lab.exec(host, ["sh", "-c", "umask 077; cat > /tmp/stranger.key"], input=cert.key)
    return "/tmp/stranger.crt", "/tmp/stranger.key"


def patroni_get(address: str, path: str, context: ssl.SSLContext | None):
    """(status, the certificate the server presented) of a GET to Patroni's REST API."""
    if context is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(address, 8008, timeout=5)
    else:
        conn = http.client.HTTPSConnection(address, 8008, timeout=5, context=context)
    try:
        conn.request("GET", path)
        peer = conn.sock.getpeercert(binary_form=True) if context is not None else None
        return conn.getresponse().status, peer
    finally:
        conn.close()


def test_a_built_cluster_speaks_tls_everywhere_and_refuses_strangers(fresh_lab, worker):
    lab = fresh_lab
    cluster = make_lab_cluster(lab, lab_credential(lab), name="pgtls")
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    steps = list(job.steps.select_related("node"))
    assert job.status == JobStatus.SUCCEEDED, (job.error, [(s.name, s.summary) for s in steps])
    cluster.refresh_from_db()
    nodes = {n.name: n for n in cluster.nodes.all()}
    assert all(n.tls_active for n in nodes.values())
    tls_steps = {s.node.name: s.summary for s in steps if s.name == "tls_files"}
    assert tls_steps["node1"] == "wrote ca.crt, node.crt, node.key, etcd.key in /etc/hacenter/tls"

    # The keys: one copy per daemon user, readable by nobody else; never in the job's log.
    listing = lab.exec(
        "node1", ["stat", "-c", "%n %U:%G %a", CA, CERT, KEY, f"{paths.TLS_DIR}/etcd.key"]
    )
    assert listing.stdout.split("\n")[:4] == [
        f"{CA} root:root 644",
        f"{CERT} root:root 644",
        f"{KEY} root:postgres 640",
        f"{paths.TLS_DIR}/etcd.key etcd:etcd 600",
    ]
    proxy_key = lab.exec("proxy", ["stat", "-c", "%U:%G %a", KEY]).stdout.strip()
    assert proxy_key == "root:root 600"
    for node in nodes.values():
        key_line = node.tls_key.splitlines()[1]
        assert not job.log_lines.filter(text__contains=key_line).exists()
    assert not job.log_lines.filter(text__contains=cluster.ca_key.splitlines()[1]).exists()

    # etcd: https only, and only with a certificate from the cluster's CA.
    health = f"https://{PROXY}:2379/health"
    with_cert = curl(lab, "node1", health, "--cert", CERT, "--key", KEY)
    assert with_cert.returncode == 0 and '"health":"true"' in with_cert.stdout, with_cert
    without = curl(lab, "node1", health)
    # etcd ends the TLS 1.3 handshake with "certificate required"; curl reports the closed
    # connection in its own words, so the proof is: no answer, where the same call with the
    # certificate got one.
    assert without.returncode != 0 and '"health"' not in without.stdout, without
    cert, key = stranger_files(lab, "node1")
    stranger = curl(lab, "node1", health, "--cert", cert, "--key", key)
    assert stranger.returncode != 0 and '"health"' not in stranger.stdout, stranger
    plain = lab.exec(
        "node1", ["curl", "-sS", "--max-time", "5", f"http://{PROXY}:2379/health"], check=False
    )
    assert '"health"' not in plain.stdout
    etcdctl = [
        "etcdctl",
        "--dial-timeout=2s",
        "--command-timeout=3s",
        f"--endpoints=https://{NODE2}:2379",
        "--cacert",
        CA,
    ]
    refused = lab.exec(
        "node1", [*etcdctl, "get", "/hacenter/", "--prefix", "--keys-only"], check=False
    )
    assert refused.returncode != 0, refused
    allowed = lab.exec(
        "node1",
        [*etcdctl, "--cert", CERT, "--key", KEY, "get", "/hacenter/", "--prefix", "--keys-only"],
    )
    assert "/hacenter/pgtls/leader" in allowed.stdout

    # Patroni's REST API: https with the node's certificate, verified by the cluster's CA.
    context = patroni_api.ca_context(cluster.ca_certificate)
    status, peer = patroni_get(NODE1, "/patroni", context)
    assert status == 200
    expected = ssl.PEM_cert_to_DER_cert(nodes["node1"].tls_certificate)
    assert peer == expected
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        patroni_get(NODE1, "/patroni", None)  # plain http gets no answer
    other = ssl.create_default_context(cadata=pki.new_authority("x").certificate)
    with pytest.raises(ssl.SSLCertVerificationError):
        patroni_get(NODE1, "/patroni", other)
    # Unsafe endpoints want the REST password.
    status, _ = patroni_api.post(nodes["node1"], "/restart", {}, auth=None)
    assert status == 401
    status, _ = patroni_api.post(
        nodes["node1"], "/config", {}, auth=("hacenter", "wrong"), method="PATCH"
    )
    assert status == 401

    # HAProxy checks Patroni over verified TLS: the primary is up, writes go through.
    config = lab.exec("proxy", ["cat", paths.HAPROXY_CONFIG]).stdout
    assert f"check port 8008 check-ssl verify required ca-file {CA} verifyhost node1" in config
    superuser = ClusterSecret.objects.get(cluster=cluster, name=ClusterSecret.Name.SUPERUSER).value

    def write_through_proxy() -> bool:
        try:
            conn = psycopg2.connect(
                host=PROXY,
                port=5432,
                user="postgres",
                password=superuser,
                dbname="postgres",
                connect_timeout=3,
            )
        except psycopg2.Error:
            return False
        try:
            with conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS tls_probe (id int)")
                cur.execute("INSERT INTO tls_probe VALUES (1)")
                cur.execute("SELECT host(inet_server_addr())")
                return cur.fetchone()[0] == NODE1
        finally:
            conn.close()

    wait_for(write_through_proxy, 15, "a write through the proxy to land on node1")
    # HAProxy's own view: node1 UP in the primary backend, node2 UP among the replicas, so
    # both TLS checks (/primary and /replica) pass.
    show_stat = f"echo 'show stat' | socat stdio {paths.HAPROXY_SOCKET}"
    rows = lab.exec("proxy", ["sh", "-c", show_stat]).stdout.splitlines()
    status = {tuple(r.split(",")[:2]): r.split(",")[17] for r in rows if r.count(",") > 17}
    assert status[("primary", "node1")] == "UP", status
    assert status[("be_replicas", "node2")] == "UP", status

    # The monitor's reader and the workers' client ask over https by themselves.
    assert Cluster.objects.get(pk=cluster.pk).nodes.filter(tls_active=False).count() == 0
    assert patroni_api.url(Node.objects.get(pk=nodes["node2"].pk), "/cluster").startswith(
        "https://"
    )

    # A second setup run finds every file in place and changes nothing.
    rerun = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=300)
    assert rerun.status == JobStatus.SUCCEEDED, rerun.error
    summaries = {
        (s.node.name if s.node else "cluster", s.name): s.summary
        for s in rerun.steps.select_related("node")
    }
    for host in ("proxy", "node1", "node2"):
        assert summaries[(host, "tls_files")] == "CA, certificate and keys already in place"
        assert summaries[(host, "etcd_configure")] == "etcd already configured"
    assert summaries[("node1", "patroni_configure")] == "Patroni already configured"
    assert "already configured and running" in summaries[("proxy", "haproxy")]
