"""Preflight's check that the floating address is free: a TCP knock from the first proxy,
read on a scripted server (the browser lab test runs it on real hosts)."""

import pytest

from clusters.models import Node
from jobs.playbooks import preflight
from jobs.playbooks.base import StepFailed
from tests.unit.conftest import three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import Rule, scripted_context

pytestmark = pytest.mark.django_db

NOT_HERE = Rule("ip -o addr show", ["2: eth0    inet 198.18.0.10/24 brd 198.18.0.255 scope global"])


def two_proxy_cluster():
    cluster, _nodes = three_node_cluster(state="new", virtual_ip="198.18.0.100/24")
    proxy = cluster.proxy_node
    cluster.nodes.create(
        name="proxy2", address="198.18.0.99", kind=Node.Kind.PROXY, credential=proxy.credential
    )
    return cluster, proxy


def run(rules):
    cluster, proxy = two_proxy_cluster()
    ctx = scripted_context(proxy, cluster, rules)
    return ctx, preflight.floating_address(ctx)


def test_planned_on_the_first_proxy_only_with_a_floating_address():
    cluster, proxy = two_proxy_cluster()
    steps = [s for s in preflight.plan(cluster, None, {}) if s.name == "floating_address"]
    assert [s.node.name for s in steps] == [proxy.name]
    cluster.virtual_ip = ""
    assert not any(s.name == "floating_address" for s in preflight.plan(cluster, None, {}))


def test_free_when_nobody_answers_arp():
    ctx, verdict = run([NOT_HERE, Rule("/dev/tcp/", ["bash: connect: No route to host", "rc=1"])])
    assert verdict == "198.18.0.100 is free: nobody answers for it (no route to host)"
    probe = ctx.connections.connection.commands[-1]
    assert "timeout 5 bash -c 'exec 3<>'/dev/tcp/198.18.0.100/22" in probe


@pytest.mark.parametrize(
    ("answer", "how"),
    [(["bash: connect: Connection refused", "rc=1"], "refused"), (["rc=0"], "open")],
)
def test_in_use_when_a_host_answers(answer, how):
    with pytest.raises(
        StepFailed, match=f"198.18.0.100 answers on the network .*{how}.*another host"
    ):
        run([NOT_HERE, Rule("/dev/tcp/", answer)])


def test_a_silent_address_is_a_warning():
    _ctx, verdict = run([NOT_HERE, Rule("/dev/tcp/", ["rc=124"])])
    assert verdict.warning and "no answer within 5 s" in verdict.summary


def test_held_by_a_proxy_of_the_cluster_is_ours():
    held = Rule("ip -o addr show", ["2: eth0    inet 198.18.0.100/24 scope global secondary eth0"])
    ctx, verdict = run([held])
    assert "the cluster's keepalived holds it" in verdict
    assert not any("/dev/tcp/" in c for c in ctx.connections.connection.commands)
