"""TLS on a live lab cluster under writes through the proxy (issue 17 items 1 and 6).

A cluster is set up the way HA Center built clusters before TLS (`tls: false`), then setup runs
again and converts it node by node; then the certificates are rotated. Both must keep the
primary and its timeline (no failover); the writer's longest gap during each is printed.
One test, one cluster: a setup costs ~25 s."""

import itertools
import time

import pytest

from clusters.models import Cluster, Node
from jobs import patroni_api, services
from jobs.models import Job, JobStatus
from jobs.playbooks import tls_probe
from jobs.playbooks.setup import cluster_spec
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job
from tests.integration.test_setup_lab import define_cluster
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def run(cluster: Cluster, kind: str, timeout: float = 300, **params) -> Job:
    cluster.refresh_from_db()
    job = wait_for_job(
        services.job_start(cluster=cluster, kind=kind, params=params), timeout=timeout
    )
    assert job.status == JobStatus.SUCCEEDED, (
        job.error,
        [(s.title, s.node.name if s.node else "", s.summary) for s in job.steps.all()],
    )
    return job


def leader(cluster: Cluster) -> tuple[str, int]:
    """The leader and its timeline as the first member that answers sees them (TLS or not)."""
    for node in Node.objects.filter(cluster=cluster, kind=Node.Kind.DATABASE):
        try:
            found = patroni_api.leader(patroni_api.cluster(node, timeout=2)["members"])
        except patroni_api.PatroniUnavailable:
            continue
        if found:
            return found["name"], found.get("timeline")
    raise AssertionError("no Patroni member names a leader")


def longest_gap(writer: ProxyWriter, start: float, end: float) -> float:
    """The longest time without an acknowledged write between `start` and `end` (monotonic)."""
    times = [start, *(a.at for a in writer.acks if start <= a.at <= end), end]
    return max(b - a for a, b in itertools.pairwise(times))


def served(lab, cluster: Cluster, node: Node) -> dict[str, int | None]:
    """What each TLS daemon on the node serves, read by a handshake made on the node itself
    (not through the job's own probe function's SSH path)."""
    spec = cluster_spec(cluster)
    script = tls_probe.probe_script(node.address, tls_probe.endpoints(spec, node))
    output = lab.exec(node.name, ["sh", "-c", script]).stdout.splitlines()
    return tls_probe.parse_serials(output)


def interrupted(cluster: Cluster, step: str, node: str) -> Job:
    """A setup run canceled as soon as `step` on `node` starts (a crash half way: the cancel
    kills the remote command it is in)."""
    cluster.refresh_from_db()
    job = services.job_start(cluster=cluster, kind="setup")
    wait_for(
        lambda: job.steps.filter(name=step, node__name=node, status="running").exists(),
        300,
        f"{step} on {node} to start",
        interval=0.05,
    )
    services.job_cancel(job=job)
    job = wait_for_job(job, timeout=120)
    assert job.status == JobStatus.CANCELED, (job.status, job.error)
    return job


def test_setup_converts_a_plain_cluster_and_rotation_keeps_the_primary(fresh_lab, worker):
    cluster = define_cluster(fresh_lab, "tlsrot")
    run(cluster, "setup", timeout=600, tls=False)  # as HA Center built clusters before TLS
    assert not Node.objects.filter(cluster=cluster, tls_active=True).exists()
    secret = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@198.18.0.10:5432/postgres")
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) >= 10, 20, "the writer to get going")
        before = leader(cluster)

        # Half way (the standby's Patroni restarting, the primary's done, HAProxy's routes
        # held), the run stops; setup run again completes the conversion.
        started = time.monotonic()
        canceled = interrupted(cluster, "convert_patroni", "node2")
        print(f"canceled at: {canceled.error or 'convert_patroni node2'}")
        converted = run(cluster, "setup", timeout=600)
        convert_gap = longest_gap(writer, started, time.monotonic())
        steps = {(s.name, s.node.name if s.node else ""): s.summary for s in converted.steps.all()}
        for (name, node), summary in steps.items():
            print(f"setup again {name} {node}: {summary}")
        assert set(Node.objects.filter(cluster=cluster).values_list("tls_active", flat=True)) == {
            True
        }
        assert leader(cluster) == before, "the conversion changed the primary or its timeline"
        assert "no failover" in steps[("convert_finish", "")]
        assert steps[("convert_patroni", "node1")] == "Patroni already on TLS"
        assert not Cluster.objects.get(pk=cluster.pk).maintenance

        rotate_gaps = []
        for _ in range(3):
            cluster.refresh_from_db()
            old = {
                n.name: tls_probe.certificate_serial(n.tls_certificate) for n in cluster.nodes.all()
            }
            started = time.monotonic()
            rotated = run(cluster, "rotate_certificates")
            rotate_gaps.append(longest_gap(writer, started, time.monotonic()))
            for step in rotated.steps.select_related("node"):
                print(f"rotate {step.name} {step.node.name if step.node else ''}: {step.summary}")
            assert leader(cluster) == before, "the rotation changed the primary or its timeline"
            for node in Node.objects.filter(cluster=cluster):
                new = tls_probe.certificate_serial(node.tls_certificate)
                assert new != old[node.name]
                now = served(fresh_lab, cluster, node)
                want = {"etcd"} | ({"Patroni", "PostgreSQL"} if node.kind == "database" else set())
                assert set(now) == want and set(now.values()) == {new}, (node.name, now)
    finally:
        writer.stop()
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    # When a write failed, and what it said (wall clock, to read beside the jobs' step times).
    offset = time.time() - time.monotonic()
    for at, text in writer.errors:
        print(f"writer error at {time.strftime('%H:%M:%S', time.localtime(at + offset))}: {text}")
    print(
        f"TLS conversion (canceled half way, then setup again): writes through the proxy "
        f"stopped for at most {convert_gap:.2f} s; certificate rotation ×3: at most "
        f"{', '.join(f'{g:.2f}' for g in rotate_gaps)} s; {len(writer.acks)} writes "
        f"acknowledged, {len(missing)} missing, {len(writer.errors)} failed attempts"
    )
    assert not missing
