"""Proxy changes (jobs/playbooks/proxies.py through the node-change jobs): their plans, their
refusals, the witness's etcd move and keepalived with one proxy left."""

import socket
from types import SimpleNamespace

import pytest

from clusters.models import Cluster, Node, ScannedHostKey
from jobs import node_changes
from jobs.configs import keepalived
from jobs.configs.spec import ClusterSpec, NodeSpec
from jobs.errors import JobRefused
from jobs.models import Job
from jobs.playbooks import etcd_members, nodes, proxies
from jobs.playbooks.base import StepFailed
from tests.unit.conftest import FP, three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import scripted_context
from tests.unit.jobs.playbooks.test_two_proxies import two_proxy_cluster

pytestmark = pytest.mark.django_db

VIP = "198.18.0.100/24"


def running(cluster: Cluster) -> Cluster:
    Cluster.objects.filter(pk=cluster.pk).update(state=Cluster.State.HEALTHY)
    cluster.refresh_from_db()
    return cluster


def steps_of(plan) -> list[tuple[str, str]]:
    return [(s.name, s.node.name if s.node else "") for s in plan]


def test_adding_a_second_proxy_sets_it_up_and_never_makes_it_an_etcd_member():
    cluster = running(two_proxy_cluster(virtual_ip=VIP))
    proxy2 = cluster.nodes.get(name="proxy2")
    plan = steps_of(nodes.add_plan(cluster, proxy2, {}))
    assert plan == [
        ("check_login", "proxy2"),
        ("install_packages", "proxy2"),
        ("tls_files", "proxy2"),
        ("firewall", "node1"),
        ("firewall", "node2"),
        ("firewall", "proxy"),
        ("firewall", "proxy2"),
        # The certificate's reload before the config's: Patroni would not swap its certificate
        # on a reload that also finds its config changed.
        ("proxy_certificate", "node1"),
        ("proxy_certificate", "node2"),
        ("patroni_configure", "node1"),
        ("patroni_configure", "node2"),
        ("haproxy", "proxy2"),
        ("keepalived", "proxy"),
        ("keepalived", "proxy2"),
        ("proxy_verify", ""),
    ]
    assert not any(name.startswith("etcd") for name, _ in plan)
    # Every step the plan names exists in the job's playbook.
    assert {name for name, _ in plan} <= set(nodes.ADD_NODE.steps)


def test_without_a_floating_address_no_keepalived():
    cluster = running(two_proxy_cluster())
    plan = steps_of(nodes.add_plan(cluster, cluster.nodes.get(name="proxy2"), {}))
    assert "keepalived" not in {name for name, _ in plan}


def test_the_spec_keeps_three_etcd_members_with_two_proxies():
    spec_nodes = (
        NodeSpec("node1", "198.18.0.11", "database"),
        NodeSpec("node2", "198.18.0.12", "database"),
        NodeSpec("proxy", "198.18.0.13", "proxy"),
        NodeSpec("proxy2", "198.18.0.20", "proxy"),
    )
    spec = SimpleNamespace(nodes=spec_nodes)
    members = ClusterSpec.etcd_members.fget(
        SimpleNamespace(proxy=spec_nodes[2], database_nodes=spec_nodes[:2], nodes=spec.nodes)
    )
    assert [m.name for m in members] == ["proxy", "node1", "node2"]


def test_a_third_proxy_is_refused_and_nothing_is_written():
    cluster = running(two_proxy_cluster(virtual_ip=VIP))
    ScannedHostKey.objects.create(
        address="198.18.0.21", port=22, key_type="ssh-ed25519", base64="AAAAnew", fingerprint=FP
    )
    data = {
        "name": "proxy3",
        "kind": "proxy",
        "address": "198.18.0.21",
        "ssh_port": 22,
        "credential": cluster.nodes.first().credential_id,
        "host_key_fingerprint": FP,
    }
    with pytest.raises(JobRefused, match="at most 2"):
        node_changes.node_add(cluster=cluster, data=data)
    assert not cluster.nodes.filter(name="proxy3").exists()
    assert not Job.objects.filter(cluster=cluster).exists()


def test_a_new_proxy_whose_name_sorts_first_would_take_the_witness_role():
    cluster, created = three_node_cluster()
    running(cluster)
    first = Node.objects.create(
        cluster=cluster,
        name="aproxy",
        address="198.18.0.20",
        credential=created[0].credential,
        kind="proxy",
    )
    with pytest.raises(JobRefused, match="sorts after proxy"):
        nodes.add_plan(cluster, first, {})


def test_a_new_proxy_outside_the_floating_address_network_is_refused():
    cluster = running(two_proxy_cluster(virtual_ip=VIP))
    Node.objects.filter(cluster=cluster, name="proxy2").update(address="10.9.0.20")
    with pytest.raises(JobRefused, match="not the proxies' network"):
        nodes.add_plan(cluster, cluster.nodes.get(name="proxy2"), {})


@pytest.mark.parametrize(
    "state,maintenance,origin,message",
    [
        ("new", False, "built", "not set up yet"),
        ("healthy", True, "built", "maintenance mode"),
        ("healthy", False, "adopted", "adopted Patroni cluster"),
    ],
)
def test_proxy_changes_share_the_node_changes_rules(state, maintenance, origin, message):
    cluster = two_proxy_cluster()
    Cluster.objects.filter(pk=cluster.pk).update(
        state=state, maintenance=maintenance, origin=origin
    )
    cluster.refresh_from_db()
    proxy2 = cluster.nodes.get(name="proxy2")
    with pytest.raises(JobRefused, match=message):
        nodes.add_plan(cluster, proxy2, {})
    with pytest.raises(JobRefused, match=message):
        nodes.remove_plan(cluster, proxy2, {"confirm": "proxy2"})


def test_removing_the_second_proxy_hands_the_address_to_the_first():
    cluster = running(two_proxy_cluster(virtual_ip=VIP))
    proxy2 = cluster.nodes.get(name="proxy2")
    with pytest.raises(JobRefused, match="repeat the node's name"):
        nodes.remove_plan(cluster, proxy2, {})
    params = {"confirm": "proxy2"}
    plan = steps_of(nodes.remove_plan(cluster, proxy2, params))
    assert plan == [
        ("stop_proxy", "proxy2"),
        ("keepalived", "proxy"),
        ("firewall", "node1"),
        ("firewall", "node2"),
        ("firewall", "proxy"),
        ("patroni_configure", "node1"),
        ("patroni_configure", "node2"),
        ("forget_node", ""),
        ("proxy_verify", ""),
    ]
    assert params["node_name"] == "proxy2"
    assert {name for name, _ in plan} <= set(nodes.REMOVE_NODE.steps)


def test_the_witness_and_the_last_proxy_are_never_removed():
    cluster = running(two_proxy_cluster(virtual_ip=VIP))
    with pytest.raises(JobRefused, match="etcd witness"):
        nodes.remove_plan(cluster, cluster.nodes.get(name="proxy"), {"confirm": "proxy"})
    single, _ = three_node_cluster(name="pg2", first=31)
    running(single)
    with pytest.raises(JobRefused, match="only proxy"):
        nodes.remove_plan(single, single.nodes.get(name="proxy"), {"confirm": "proxy"})


def test_replacing_the_second_proxy_is_adding_it_after_checking_the_old_server():
    cluster = running(two_proxy_cluster(virtual_ip=VIP))
    proxy2 = cluster.nodes.get(name="proxy2")
    with pytest.raises(JobRefused, match="old_address"):
        nodes.replace_plan(cluster, proxy2, {})
    plan = steps_of(nodes.replace_plan(cluster, proxy2, {"old_address": "198.18.0.30"}))
    assert plan[0] == ("check_old_proxy", "proxy2")
    assert plan[1:] == steps_of(nodes.add_plan(cluster, proxy2, {}))
    assert {name for name, _ in plan} <= set(nodes.REPLACE_NODE.steps)


def test_replacing_the_witness_moves_its_etcd_member_after_a_quorum_check():
    cluster = running(two_proxy_cluster(virtual_ip=VIP))
    proxy = cluster.nodes.get(name="proxy")
    plan = steps_of(nodes.replace_plan(cluster, proxy, {"old_address": "198.18.0.30"}))
    names = [name for name, _ in plan]
    assert names[:2] == ["check_old_proxy", "check_etcd_quorum"]
    # The member moves once the new server has its packages, files and firewall openings,
    # and before Patroni's configs name its new address.
    assert names.index("etcd_membership") > names.index("tls_files")
    assert names.index("etcd_membership") > max(i for i, n in enumerate(names) if n == "firewall")
    assert names.index("etcd_membership") < names.index("patroni_configure")
    assert names.index("proxy_certificate") < names.index("patroni_configure")
    assert {name for name, _ in plan} <= set(nodes.REPLACE_NODE.steps)


def _context(cluster, node, kind, spec=None, params=None):
    ctx = scripted_context(node, cluster, [])
    ctx.job.kind = kind
    ctx.job.node = node
    ctx.job.node_id = node.pk
    ctx.job.params = params or {}
    if spec is not None:
        ctx.facts["spec"] = spec
    return ctx


def test_etcd_commands_run_on_a_database_member_while_the_witness_is_replaced():
    cluster = running(two_proxy_cluster())
    proxy = cluster.nodes.get(name="proxy")
    spec = SimpleNamespace(
        etcd_members=(
            NodeSpec("proxy", proxy.address, "proxy"),
            NodeSpec("node1", "198.18.0.11", "database"),
            NodeSpec("node2", "198.18.0.12", "database"),
        )
    )
    assert etcd_members.anchor(_context(cluster, proxy, "replace_node", spec)).name == "node1"
    proxy2 = cluster.nodes.get(name="proxy2")
    assert etcd_members.anchor(_context(cluster, proxy2, "replace_node", spec)).name == "proxy"
    node2 = cluster.nodes.get(name="node2")
    assert etcd_members.anchor(_context(cluster, node2, "replace_node", spec)).name == "proxy"


def test_a_replacement_waits_while_the_old_proxy_still_answers():
    cluster = running(two_proxy_cluster())
    proxy2 = cluster.nodes.get(name="proxy2")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        ctx = _context(cluster, proxy2, "replace_node", params={"old_address": "127.0.0.1"})
        original = proxies.paths.STATS_PORT
        proxies.paths.STATS_PORT = port
        try:
            with pytest.raises(StepFailed, match=f"still answers on port\\(s\\) .*{port}"):
                proxies.check_old_proxy(ctx)
        finally:
            proxies.paths.STATS_PORT = original
    finally:
        listener.close()


def test_keepalived_alone_holds_the_address_without_a_peer():
    spec_nodes = (
        NodeSpec("node1", "198.18.0.11", "database"),
        NodeSpec("proxy", "198.18.0.10", "proxy"),
    )
    spec = SimpleNamespace(
        virtual_ip=VIP,
        proxies=(spec_nodes[1],),
        name="pg1",
        vrrp_router_id=7,
    )
    config = keepalived.keepalived_config(spec, spec_nodes[1], "eth0")
    assert "unicast_peer" not in config and "check_unicast_src" not in config
    assert "198.18.0.100/24 dev eth0" in config
    two = SimpleNamespace(
        **{**vars(spec), "proxies": (spec_nodes[1], NodeSpec("proxy2", "198.18.0.13", "proxy"))}
    )
    config = keepalived.keepalived_config(two, spec_nodes[1], "eth0")
    assert "unicast_peer {\n        198.18.0.13\n    }" in config
