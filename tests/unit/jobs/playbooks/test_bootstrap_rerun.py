"""Setup's "Bootstrap the primary" on a cluster set up before that has no leader when setup
runs (its servers were off): Patroni starts on every database node and the one Patroni elects
leads, instead of waiting for the master of the first setup, who may lag too far to lead."""

import pytest

from clusters.models import Cluster
from jobs.playbooks import setup_postgres
from tests.unit.conftest import three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import SPEC, scripted_context

pytestmark = pytest.mark.django_db


@pytest.fixture
def patroni(monkeypatch):
    """Starts recorded; the member list has no leader until node2's Patroni was started."""
    started: list[str] = []

    def start(ctx, node, daemon):
        started.append(node.name)
        return f"started {daemon.name} on {node.name}"

    def members(ctx):
        leader = "node2" if "node2" in started else None
        return [
            {"name": n, "role": "leader" if n == leader else "replica", "state": "running"}
            for n in ("node1", "node2")
        ]

    monkeypatch.setattr(setup_postgres, "start", start)
    monkeypatch.setattr(setup_postgres, "members", members)
    return started


def test_a_set_up_cluster_without_a_leader_starts_every_node_and_takes_who_wins(patroni):
    cluster, nodes = three_node_cluster(state=Cluster.State.DOWN)
    ctx = scripted_context(nodes[0], cluster, [], spec=SPEC)
    said = setup_postgres.bootstrap_primary(ctx)
    assert sorted(patroni) == ["node1", "node2"]
    assert said == (
        "no primary when setup began: Patroni started on every database node, and node2 took "
        "the leader key"
    )


def test_a_first_setup_still_starts_the_master_alone(patroni, settings):
    settings.SETUP_PRIMARY_TIMEOUT_S = 0.1
    cluster, nodes = three_node_cluster(state=Cluster.State.PROVISIONING)
    ctx = scripted_context(nodes[0], cluster, [], spec=SPEC)
    # node1 never leads here (the fake elects node2 only): the step waits for node1 alone.
    with pytest.raises(Exception, match="node1 to hold the leader key"):
        setup_postgres.bootstrap_primary(ctx)
    assert patroni == ["node1"]
