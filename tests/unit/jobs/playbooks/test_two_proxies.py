"""Playbooks with two proxies: each proxy gets its HAProxy steps, and a fence does not wait for
a proxy that is down."""

import dataclasses
from types import SimpleNamespace

import pytest

from clusters.models import Node, NodeStatus
from jobs.playbooks import fence, nodes, remove, setup
from jobs.ssh import SSHError
from tests.unit.conftest import three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import scripted_context

pytestmark = pytest.mark.django_db

# What the plans read of the spec (the real one makes passwords and certificates).
NO_SPEC = SimpleNamespace(application_unit="")


def two_proxy_cluster(**fields):
    cluster, created = three_node_cluster(**fields)
    Node.objects.create(
        cluster=cluster,
        name="proxy2",
        address="198.18.0.20",
        credential=created[0].credential,
        kind="proxy",
        host_key_type="ssh-ed25519",
        host_key_base64="AAAA",
        host_key_fingerprint="SHA256:9",
    )
    return cluster


def test_fence_puts_the_node_in_maintenance_on_both_proxies():
    cluster = two_proxy_cluster()
    node1 = cluster.nodes.get(name="node1")
    steps = fence.plan(cluster, node1, {})
    assert [(s.name, s.node.name) for s in steps] == [
        ("haproxy_maintenance", "proxy"),
        ("haproxy_maintenance", "proxy2"),
        ("stop_database", "node1"),
    ]


def test_fence_goes_on_when_one_of_two_proxies_is_down():
    cluster = two_proxy_cluster()
    node1 = cluster.nodes.get(name="node1")
    NodeStatus.objects.create(node=node1)
    ctx = scripted_context(cluster.nodes.get(name="proxy2"), cluster, [])

    def unreachable(node):
        raise SSHError("198.18.0.20:22: timed out")

    ctx = dataclasses.replace(ctx, connections=type("C", (), {"get": staticmethod(unreachable)}))
    ctx.job.node = node1
    verdict = fence.haproxy_maintenance(ctx)
    assert verdict.warning and "proxy2 did not answer" in verdict.summary


def test_fence_with_one_proxy_still_fails_when_it_is_down():
    cluster, _ = three_node_cluster()
    node1 = cluster.nodes.get(name="node1")
    ctx = scripted_context(cluster.nodes.get(name="proxy"), cluster, [])

    def unreachable(node):
        raise SSHError("198.18.0.13:22: timed out")

    ctx = dataclasses.replace(ctx, connections=type("C", (), {"get": staticmethod(unreachable)}))
    ctx.job.node = node1
    with pytest.raises(SSHError):
        fence.haproxy_maintenance(ctx)


def test_setup_and_remove_plan_haproxy_and_keepalived_on_both_proxies(monkeypatch):
    cluster = two_proxy_cluster(virtual_ip="198.18.0.100/24")
    monkeypatch.setattr(setup, "cluster_spec", lambda c: NO_SPEC)
    monkeypatch.setattr(remove, "build_spec", lambda c: NO_SPEC)
    monkeypatch.setattr(remove, "etcd_member_nodes", lambda c, s: [])
    monkeypatch.setattr(setup, "etcd_member_nodes", lambda c, s: [])
    planned = [(s.name, s.node.name if s.node else None) for s in setup.plan(cluster, None, {})]
    for proxy in ("proxy", "proxy2"):
        assert ("haproxy", proxy) in planned and ("keepalived", proxy) in planned
    assert planned.index(("haproxy", "proxy2")) < planned.index(("keepalived", "proxy"))
    removed = remove.plan(cluster, None, {"confirm": "pg1"})
    assert [s.node.name for s in removed if s.name == "stop_keepalived"] == ["proxy", "proxy2"]


def test_one_proxy_plans_no_keepalived(monkeypatch):
    cluster, _ = three_node_cluster()
    monkeypatch.setattr(setup, "cluster_spec", lambda c: NO_SPEC)
    monkeypatch.setattr(setup, "etcd_member_nodes", lambda c, s: [])
    assert "keepalived" not in [s.name for s in setup.plan(cluster, None, {})]


def test_adding_a_node_updates_both_proxies():
    cluster = two_proxy_cluster()
    node = cluster.nodes.get(name="node2")
    steps = nodes._join_plan(cluster, node)
    assert [s.node.name for s in steps if s.name == "haproxy"] == ["proxy", "proxy2"]
