"""Where the host firewall's steps sit in each playbook: setup loads it on every node after
HAProxy and before the end-to-end check; remove takes it away from every node; adding a node
lets its address in everywhere before it joins etcd; rebuild loads it again on the node."""

import pytest

from clusters.models import Cluster
from jobs.playbooks import nodes, rebuild, remove, setup
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


def on(steps, name: str) -> list[str]:
    return sorted(s.node.name for s in steps if s.name == name)


def test_setup_loads_the_firewall_on_every_node_after_haproxy_before_verify():
    cluster, _ = three_node_cluster()
    steps = setup.plan(cluster, None, {})
    order = [s.name for s in steps]
    assert on(steps, "firewall") == ["node1", "node2", "proxy"]
    firewall = [i for i, name in enumerate(order) if name == "firewall"]
    assert order.index("haproxy") < min(firewall) and max(firewall) < order.index("verify")
    assert "firewall" in setup.PLAYBOOK.steps


def test_remove_takes_the_firewall_away_from_every_node():
    cluster, _ = three_node_cluster()
    steps = remove.plan(cluster, None, {"confirm": "pg1"})
    assert on(steps, "firewall_remove") == ["node1", "node2", "proxy"]
    assert "firewall_remove" in remove.PLAYBOOK.steps


def test_a_joining_node_is_let_in_everywhere_before_it_joins_etcd():
    cluster, created = three_node_cluster(state=Cluster.State.HEALTHY)
    steps = nodes.add_plan(cluster, created[1], {})
    order = [s.name for s in steps]
    assert on(steps, "firewall") == ["node1", "node2", "proxy"]
    assert max(i for i, n in enumerate(order) if n == "firewall") < order.index("etcd_membership")
    assert "firewall" in nodes.ADD_NODE.steps and "firewall" in nodes.REPLACE_NODE.steps


def test_rebuild_loads_the_firewall_again_on_the_node():
    cluster, created = three_node_cluster(state=Cluster.State.HEALTHY)
    steps = rebuild.plan(cluster, created[0], {})
    assert on(steps, "firewall") == ["node1"]
    assert "firewall" in rebuild.PLAYBOOK.steps
