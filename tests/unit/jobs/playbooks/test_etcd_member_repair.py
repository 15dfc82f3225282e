"""Rebuild's "etcd member healthy" step against a scripted server: a member whose daemon is
stopped is started on its data without first asking etcd for its health (etcdctl waits out its
command timeout against a stopped member: 5 s of every Rebuild after a power-off), and a running
healthy member is left alone. tests/integration rebuilds real nodes after a power-off."""

from types import SimpleNamespace

import pytest

from jobs.playbooks import etcd_members
from tests.unit.jobs.playbooks.scripted_server import SPEC, Rule, scripted_context

HEALTH = "endpoint health"
PID_PROBE = "kill -0"  # the process-mode pid probe (no systemd on this scripted server)
NOT_SYSTEMD = Rule("[ -d /run/systemd/system ]", status=1)


def node(name: str, kind: str) -> SimpleNamespace:
    return SimpleNamespace(pk={"node1": 1, "node2": 2, "proxy": 3}[name], name=name, kind=kind)


@pytest.fixture
def started(monkeypatch) -> list[str]:
    """daemons.start recorded instead of run (its own checks have their tests)."""
    names: list[str] = []

    def start(ctx, target, daemon):
        names.append(daemon.name)
        return f"{daemon.description} started (pid 75)"

    monkeypatch.setattr(etcd_members.daemons, "start", start)
    return names


def repair(rules: list[Rule]):
    target = node("node1", "database")
    cluster = SimpleNamespace(proxy_node=node("proxy", "proxy"))
    ctx = scripted_context(target, cluster, [NOT_SYSTEMD, *rules], spec=SPEC)
    verdict = etcd_members.etcd_member_repair(ctx)
    return verdict, ctx.connections.get(None)


def test_a_stopped_member_is_started_on_its_data_before_any_health_probe(started):
    verdict, server = repair([Rule(PID_PROBE, [], status=1), Rule(HEALTH, ["healthy"])])
    assert started == [f"etcd-{SPEC.name}"]
    assert verdict == "etcd member back on its data (etcd started (pid 75))"
    # Health asked once, after the start: never of the stopped member.
    assert server.ran(HEALTH) > server.ran("/member ]")
    assert sum(HEALTH in c for c in server.commands) == 1


def test_a_running_healthy_member_is_left_alone(started):
    verdict, server = repair([Rule(PID_PROBE, ["75"]), Rule(HEALTH, ["healthy"])])
    assert verdict == "etcd member healthy"
    assert started == []
    assert not any("/member ]" in c for c in server.commands)
