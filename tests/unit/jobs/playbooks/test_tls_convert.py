"""Setup's conversion of a cluster built before TLS: when setup plans it, in which order, the
first pass's etcd configuration, and the etcd steps against a scripted server (the lab test
converts a real cluster under writes)."""

import json

import pytest

from clusters.models import Cluster, NodeStatus
from jobs.configs.etcd import ETCD_KEY_FILE
from jobs.models import Job, Step
from jobs.playbooks import setup, tls_convert
from jobs.playbooks.base import StepFailed
from tests.unit.conftest import three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import Rule, scripted_context

pytestmark = pytest.mark.django_db


def plain_cluster(state: str = "healthy") -> Cluster:
    """A cluster setup built before TLS: it ran, and no node speaks TLS."""
    cluster, nodes = three_node_cluster(state=state, last_leader="node2")
    NodeStatus.objects.create(node=nodes[1], role="primary", state="running", timeline=2)
    return cluster


def names(steps, name: str) -> list[str]:
    return [s.node.name for s in steps if s.name == name]


def test_setup_again_on_a_plain_cluster_converts_it_before_its_own_etcd_and_patroni_steps():
    cluster = plain_cluster()
    steps = setup.plan(cluster, None, {})
    order = [s.name for s in steps]
    first = order.index("convert_begin")
    assert order.index("tls_files") < first
    assert order.index("convert_finish") < order.index("etcd_configure")
    assert order.index("convert_finish") < order.index("patroni_configure")
    # etcd: database members first, the proxy (raft leader) last; Patroni: the primary first.
    assert names(steps, "convert_etcd_dial") == ["node1", "node2", "proxy"]
    assert names(steps, "convert_etcd") == ["node1", "node2", "proxy"]
    assert names(steps, "convert_patroni") == ["node2", "node1"]
    assert names(steps, "convert_hold_proxy") == names(steps, "convert_haproxy") == ["proxy"]
    assert all(name in setup.PLAYBOOK.steps for name in order)


@pytest.mark.parametrize("state", ["new", "provisioning"])
def test_a_first_setup_builds_with_tls_and_converts_nothing(state):
    steps = setup.plan(plain_cluster(state), None, {})
    assert not any(s.name.startswith("convert_") for s in steps)


def test_no_conversion_once_every_node_speaks_tls_or_when_asked_to_build_without():
    cluster = plain_cluster()
    assert not any(s.name.startswith("convert_") for s in setup.plan(cluster, None, {"tls": False}))
    cluster.nodes.update(tls_active=True)
    assert not tls_convert.needs_conversion(cluster, {})
    # A node added later without TLS makes the next setup run convert it (steps skip the rest).
    cluster.nodes.filter(name="node1").update(tls_active=False)
    assert tls_convert.needs_conversion(cluster, {})


def test_a_second_proxy_without_the_mark_asks_for_no_conversion():
    """The second proxy runs no etcd and no Patroni: a cluster set up before setup's haproxy
    step marked it must not be converted again by every later setup."""
    cluster = plain_cluster()
    proxy = cluster.proxy_node
    cluster.nodes.create(
        name="proxy2", address="198.18.0.99", kind="proxy", credential=proxy.credential
    )
    cluster.nodes.exclude(name="proxy2").update(tls_active=True)
    assert not tls_convert.needs_conversion(cluster, {})
    cluster.nodes.filter(name="proxy").update(tls_active=False)  # the witness runs etcd
    assert tls_convert.needs_conversion(cluster, {})


def test_the_first_etcd_pass_keeps_plain_urls_with_the_tls_files():
    cluster = plain_cluster()
    spec = setup.cluster_spec(cluster)
    node = next(n for n in spec.nodes if n.name == "node1")
    text = tls_convert._dialing_config(spec, node)
    assert "https://" not in text
    assert 'listen-peer-urls: "http://198.18.0.11:2380"' in text
    assert "peer-transport-security" in text and ETCD_KEY_FILE in text
    assert "client-cert-auth: true" in text


def _members(peer_scheme: str) -> list[str]:
    return [
        json.dumps(
            {
                "members": [
                    {
                        "ID": 9777432141553246483,
                        "name": "node1",
                        "peerURLs": [f"{peer_scheme}://198.18.0.11:2380"],
                    }
                ]
            }
        )
    ]


def test_first_pass_leaves_a_member_already_on_tls_alone():
    cluster = plain_cluster()
    node = cluster.nodes.get(name="node1")
    ctx = scripted_context(node, cluster, [Rule("member list", _members("https"))])
    ctx.facts["spec"] = setup.cluster_spec(cluster)
    assert tls_convert.convert_etcd_dial(ctx) == "node1's etcd is on TLS already"
    assert not ctx.connections.connection.uploads


def test_second_pass_updates_the_peer_url_by_hex_id_before_writing_the_final_config(
    monkeypatch,
):
    cluster = plain_cluster()
    node = cluster.nodes.get(name="node1")
    ctx = scripted_context(node, cluster, [Rule("member list", _members("http"))])
    ctx.facts["spec"] = setup.cluster_spec(cluster)
    restarts: list[str] = []
    monkeypatch.setattr(tls_convert.daemons, "restart", lambda ctx, n, d: restarts.append(d.name))
    verdict = tls_convert.convert_etcd(ctx)
    conn = ctx.connections.connection
    update = conn.ran("member update 87b06abaccc4a113 --peer-urls=https://198.18.0.11:2380")
    # Asked over the scheme the member list answered on (plain: no member on TLS yet).
    assert "http://198.18.0.11:2379" in conn.commands[update]
    assert conn.ran("member list") < update < conn.ran("etcd-pg1.yml")
    config = conn.uploads["/etc/hacenter/etcd-pg1.yml"]
    assert b'listen-peer-urls: "https://198.18.0.11:2380"' in config
    assert restarts == ["etcd-pg1"]
    assert verdict.startswith("peer URL updated, restarted on TLS")


def test_patroni_is_not_restarted_when_the_cluster_is_not_paused(monkeypatch):
    cluster = plain_cluster()
    node = cluster.nodes.get(name="node2")
    ctx = scripted_context(node, cluster, [])
    ctx.facts["spec"] = setup.cluster_spec(cluster)
    monkeypatch.setattr(tls_convert, "paused", lambda ctx: False)
    monkeypatch.setattr(tls_convert, "monitor_sources", lambda ctx: ("198.18.0.1",))
    restarts: list[str] = []
    monkeypatch.setattr(tls_convert.daemons, "restart", lambda ctx, n, d: restarts.append(d.name))
    with pytest.raises(StepFailed, match="not paused"):
        tls_convert.convert_patroni(ctx)
    assert not restarts


def test_a_setup_run_after_a_canceled_conversion_carries_on_its_pause_and_leader(monkeypatch):
    cluster = plain_cluster()
    # The monitor shows the conversion's own pause as maintenance mode.
    Cluster.objects.filter(pk=cluster.pk).update(maintenance=True)
    cluster.refresh_from_db()
    began = {
        "convert_leader": "node2",
        "convert_timeline": 2,
        "convert_resume": True,
        "convert_started": 1.0,
    }
    earlier = Job.objects.create(kind="setup", cluster=cluster, params=began, status="canceled")
    Step.objects.create(
        job=earlier, position=1, name="convert_finish", title="t", status="canceled"
    )
    ctx = scripted_context(None, cluster, [])
    ctx.job = Job.objects.create(kind="setup", cluster=cluster, status="running")
    ctx.facts["spec"] = setup.cluster_spec(cluster)
    monkeypatch.setattr(tls_convert, "_leader", lambda ctx: {"name": "node2", "timeline": 2})
    monkeypatch.setattr(tls_convert, "paused", lambda ctx: True)
    monkeypatch.setattr(tls_convert, "tls_files_put", lambda ctx, node, spec: [])
    assert tls_convert.convert_begin(ctx) == "node2 leads on timeline 2; already paused"
    ctx.job.refresh_from_db()
    assert ctx.job.params == began  # resumed at the end, though the cluster shows maintenance
    # Once a conversion finished, a later run judges afresh: an operator's pause stays.
    Job.objects.filter(pk=ctx.job.pk).update(status="succeeded")
    Step.objects.create(
        job=ctx.job, position=1, name="convert_finish", title="t", status="succeeded"
    )
    again = Job.objects.create(kind="setup", cluster=cluster, status="running")
    ctx.job = again
    tls_convert.convert_begin(ctx)
    again.refresh_from_db()
    assert again.params["convert_resume"] is False
