"""The rotate_certificates job's logic: what it refuses, the node order, the serial probe, and
one node's step against a scripted server (the lab test rotates a real cluster under writes)."""

import dataclasses

import pytest

from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import AuditEntry, Cluster, NodeStatus
from jobs.configs.spec import NodeTls, TlsSpec
from jobs.errors import JobRefused
from jobs.models import Job
from jobs.playbooks import rotate_certificates, tls_probe
from jobs.playbooks.base import StepFailed
from jobs.playbooks.setup import cluster_spec
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import Rule, scripted_context

pytestmark = pytest.mark.django_db


def tls_cluster(state: str = "healthy") -> tuple[Cluster, list]:
    cluster, nodes = three_node_cluster(state=state)
    cluster_tls_ensure(cluster=cluster)
    for node in nodes:
        node.tls_active = True
        node.save(update_fields=["tls_active"])
    for node, role in zip(nodes, ("replica", "primary", "unknown"), strict=True):
        NodeStatus.objects.create(node=node, role=role, state="running", timeline=3)
    cluster.refresh_from_db()
    return cluster, nodes


def spec_with_tls(cluster: Cluster):
    """The cluster's spec with its certificates (whether or not cluster_spec adds them)."""
    spec = cluster_spec(cluster)
    if spec.tls is not None:
        return spec
    nodes = tuple((n.name, NodeTls(n.tls_certificate, n.tls_key)) for n in cluster.nodes.all())
    return dataclasses.replace(spec, tls=TlsSpec(cluster.ca_certificate, nodes))


# --- plan ---------------------------------------------------------------------------------


def test_plan_goes_standbys_first_then_the_proxy_and_the_primary_last():
    cluster, _ = tls_cluster()
    steps = rotate_certificates.plan(cluster, None, {})
    assert [s.name for s in steps] == ["rotate_issue", *["rotate_node"] * 3, "rotate_verify"]
    assert [s.node.name for s in steps[1:4]] == ["node1", "proxy", "node2"]


def test_plan_refuses_a_cluster_that_does_not_run_tls_yet_and_names_the_nodes():
    cluster, nodes = tls_cluster()
    nodes[0].tls_active = False
    nodes[0].save(update_fields=["tls_active"])
    with pytest.raises(JobRefused, match=r"not on TLS yet: node1\. Run setup again"):
        rotate_certificates.plan(cluster, None, {})


@pytest.mark.parametrize("state", ["new", "provisioning", "down"])
def test_plan_refuses_a_cluster_that_is_not_running(state):
    cluster, _ = tls_cluster(state=state)
    with pytest.raises(JobRefused, match="needs a running cluster"):
        rotate_certificates.plan(cluster, None, {})


def test_plan_refuses_an_adopted_cluster_and_a_single_node():
    cluster, nodes = tls_cluster()
    with pytest.raises(JobRefused, match="every node at once"):
        rotate_certificates.plan(cluster, nodes[0], {})
    Cluster.objects.filter(pk=cluster.pk).update(origin=Cluster.Origin.ADOPTED)
    cluster.refresh_from_db()
    with pytest.raises(JobRefused, match="does not manage its TLS"):
        rotate_certificates.plan(cluster, None, {})


# --- who may start it ---------------------------------------------------------------------


def test_an_operator_may_not_rotate_an_admin_may_and_both_are_audited(client, django_user_model):
    cluster, _ = tls_cluster()
    url = f"/api/v1/clusters/{cluster.pk}/jobs/"
    operator = api_client(client, make_user(django_user_model, "op", "operator"))
    refused = operator.post(url, {"kind": "rotate_certificates"})
    assert refused.status_code == 403
    assert not Job.objects.exists()
    admin = api_client(client, make_user(django_user_model, "boss", "admin"))
    started = admin.post(url, {"kind": "rotate_certificates"})
    assert started.status_code == 202
    job = Job.objects.get()
    assert job.kind == "rotate_certificates" and job.mutating
    results = list(
        AuditEntry.objects.filter(action="job.start.rotate_certificates")
        .order_by("pk")
        .values_list("result", flat=True)
    )
    assert len(results) == 2 and results[0].startswith("refused") and results[1] == "ok"


def test_the_cluster_page_offers_rotation_to_admins_only(client, django_user_model):
    cluster, _ = tls_cluster()
    client.force_login(make_user(django_user_model, "op", "operator"))
    assert "Rotate certificates" not in client.get(f"/clusters/{cluster.pk}/").content.decode()
    client.force_login(make_user(django_user_model, "boss", "admin"))
    assert "Rotate certificates" in client.get(f"/clusters/{cluster.pk}/").content.decode()
    page = client.get(f"/clusters/{cluster.pk}/confirm/rotate_certificates/").content.decode()
    assert "without a failover" in page and 'value="rotate_certificates"' in page


# --- the serial probe ---------------------------------------------------------------------


def test_probe_asks_each_daemon_of_the_node_with_its_own_port_quoted():
    cluster, nodes = tls_cluster()
    spec = spec_with_tls(cluster)
    assert tls_probe.endpoints(spec, nodes[0]) == {
        "etcd": 2379,
        "Patroni": 8008,
        "PostgreSQL": 5432,
    }
    assert tls_probe.endpoints(spec, nodes[2]) == {"etcd": 2379}
    script = tls_probe.probe_script("198.18.0.11", tls_probe.endpoints(spec, nodes[0]))
    assert script.count("openssl s_client") == 3
    assert script.count("-starttls postgres") == 1
    assert "-connect 198.18.0.11:5432 -starttls postgres" in script
    assert "-verify_return_error" in script and "-verify_ip 198.18.0.11" in script
    v6 = tls_probe.probe_script("2001:db8::1", {"etcd": 2379})
    assert "-connect '[2001:db8::1]:2379'" in v6 and "-verify_ip 2001:db8::1 " in v6


def test_parse_serials_reads_hex_and_marks_a_failed_handshake():
    served = tls_probe.parse_serials(["etcd 3A1F09C2FF", "Patroni -", "PostgreSQL 0A", ""])
    assert served == {"etcd": 0x3A1F09C2FF, "Patroni": None, "PostgreSQL": 10}
    assert tls_probe.short(0x3A1F09C2FF) == "3A1F09C2…" and tls_probe.short(None) == "nothing"


# --- one node's step ----------------------------------------------------------------------


def _node_context(cluster, node, served_hex: str, monkeypatch):
    spec = spec_with_tls(cluster)
    want = tls_probe.certificate_serial(spec.tls.node(node.name).certificate)
    reloads: list[str] = []
    monkeypatch.setattr(
        rotate_certificates, "patroni_reload", lambda ctx, n: reloads.append(f"patroni {n.name}")
    )
    monkeypatch.setattr(
        rotate_certificates, "psql", lambda ctx, n, sql, **kw: reloads.append(f"{sql} {n.name}")
    )
    monkeypatch.setattr(rotate_certificates, "SWAP_TIMEOUT_S", 0)
    probe = [f"etcd {served_hex}", f"Patroni {served_hex}", f"PostgreSQL {served_hex}"]
    ctx = scripted_context(node, cluster, [Rule("openssl s_client", probe)], spec=spec)
    ctx.job.params = {"serials": {node.name: f"{want:X}"}}
    ctx.job.pk = None
    return ctx, want, reloads


def test_a_node_step_writes_the_files_reloads_and_names_the_serial_each_daemon_serves(
    monkeypatch,
):
    cluster, _ = tls_cluster()
    cluster_tls_ensure(cluster=cluster, renew=True)
    node = cluster.nodes.get(name="node1")
    ctx, want, reloads = _node_context(cluster, node, "", monkeypatch)
    ctx.connections.connection.rules[0].stdout = [
        f"{d} {want:X}" for d in ("etcd", "Patroni", "PostgreSQL")
    ]
    verdict = rotate_certificates.rotate_node(ctx)
    uploads = ctx.connections.connection.uploads
    assert node.tls_certificate.encode() in uploads.values()
    assert reloads == ["patroni node1", "SELECT pg_reload_conf(); node1"]
    short = tls_probe.short(want)
    assert verdict.startswith(f"serving etcd {short}, Patroni {short}, PostgreSQL {short}")
    assert "not the new one" not in verdict


def test_a_node_step_fails_naming_the_daemon_that_still_serves_the_old_certificate(monkeypatch):
    cluster, _ = tls_cluster()
    old = tls_probe.certificate_serial(cluster.nodes.get(name="node1").tls_certificate)
    cluster_tls_ensure(cluster=cluster, renew=True)
    node = cluster.nodes.get(name="node1")
    ctx, want, _ = _node_context(cluster, node, f"{old:X}", monkeypatch)
    ctx.connections.connection.rules[0].stdout = [
        f"etcd {want:X}",
        f"Patroni {old:X}",
        f"PostgreSQL {want:X}",
    ]
    with pytest.raises(StepFailed, match=r"Patroni [0-9A-F]{8}… \(not the new one\)"):
        rotate_certificates.rotate_node(ctx)


def test_a_node_step_refuses_when_the_inventory_changed_since_the_job_issued(monkeypatch):
    cluster, _ = tls_cluster()
    node = cluster.nodes.get(name="node2")
    ctx, want, reloads = _node_context(cluster, node, "", monkeypatch)
    ctx.job.params = {"serials": {"node2": f"{want + 1:X}"}}
    with pytest.raises(StepFailed, match="changed since this job issued it"):
        rotate_certificates.rotate_node(ctx)
    assert not ctx.connections.connection.uploads and not reloads


def test_verify_fails_when_the_leader_or_the_timeline_moved(monkeypatch):
    cluster, _ = tls_cluster()
    ctx = scripted_context(None, cluster, [])
    ctx.job.params = {"leader_before": "node2", "timeline_before": 3}
    answers = [{"name": "node2", "role": "leader", "timeline": 3}]
    monkeypatch.setattr(rotate_certificates, "members", lambda ctx: answers)
    assert rotate_certificates.rotate_verify(ctx) == "node2 still leads on timeline 3: no failover"
    answers[0]["timeline"] = 4
    with pytest.raises(StepFailed, match="timeline moved from 3 to 4"):
        rotate_certificates.rotate_verify(ctx)
    answers[0].update(name="node1", timeline=3)
    with pytest.raises(StepFailed, match="primary changed from node2 to node1"):
        rotate_certificates.rotate_verify(ctx)
