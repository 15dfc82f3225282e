"""What a monitor wave stores of HAProxy's backends and of a synchronous standby's lag (readings
built by hand, as the readers would return them; the database is real)."""

import pytest

from clusters.models import Cluster, NodeStatus
from clusters.monitoring.batch import monitor_claim_due
from clusters.monitoring.observe import Pass, context_load, record
from clusters.monitoring.reads import NodeReading, Reading, load_inventories
from clusters.monitoring.view import to_view
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

STATS = {
    "primary": {"node1": "UP", "node2": "DOWN"},
    "be_replicas": {"node1": "DOWN", "node2": "UP"},
    "be_replicas_fallback": {"node1": "UP", "node2": "DOWN"},
}


def sync_reading(proxy: dict | None = STATS, replay_lag_s: float | None = None) -> Reading:
    """node1 primary, node2 its synchronous standby, 4 kB behind (WAL in flight)."""
    members = [
        {"name": "node1", "role": "leader", "state": "running", "timeline": 1},
        {"name": "node2", "role": "sync_standby", "state": "streaming", "timeline": 1},
    ]
    row = {"state": "streaming", "lag_bytes": 4096, "replay_lag_s": replay_lag_s}
    return Reading(
        patroni={"members": members},
        history=[],
        nodes={
            "node1": NodeReading(writable=True, wal_position=9000, replication={"node2": row}),
            "node2": NodeReading(writable=False, wal_position=4904, standby_lag_s=0.0),
        },
        proxy=proxy,
    )


def one_wave(cluster: Cluster, reading: Reading) -> None:
    lease, batches = monitor_claim_due()
    inventories = load_inventories([pk for batch in batches for pk in batch], lease)
    record(
        [Pass(i, reading, to_view(i, reading)) for i in inventories],
        context_load([cluster.pk]),
        lease,
    )


def statuses(cluster: Cluster) -> dict[str, NodeStatus]:
    return {s.node.name: s for s in NodeStatus.objects.filter(node__cluster=cluster)}


@pytest.fixture
def cluster() -> Cluster:
    return three_node_cluster(state="healthy", last_leader="node1", replication="sync")[0]


def test_a_wave_keeps_each_servers_status_in_every_backend_and_follows_changes(cluster):
    one_wave(cluster, sync_reading())
    found = statuses(cluster)
    assert found["node1"].proxy_backends == {
        "primary": "UP",
        "be_replicas": "DOWN",
        "be_replicas_fallback": "UP",
    }
    assert found["node2"].proxy_backends["be_replicas"] == "UP"
    assert found["node1"].proxy_status == "UP"  # the read-write status, as before
    Cluster.objects.update(monitor_lease=None)
    drained = {**STATS, "be_replicas": {"node1": "DOWN", "node2": "DRAIN"}}
    one_wave(cluster, sync_reading(proxy=drained))  # a changed status: the UPDATE path
    assert statuses(cluster)["node2"].proxy_backends["be_replicas"] == "DRAIN"
    Cluster.objects.update(monitor_lease=None)
    one_wave(cluster, sync_reading(proxy=None))
    assert [s.proxy_backends for s in statuses(cluster).values()] == [{}, {}]


def test_a_synchronous_standby_gets_a_lag_in_seconds_when_the_primary_has_none(cluster):
    one_wave(cluster, sync_reading(replay_lag_s=None))
    standby = statuses(cluster)["node2"]
    assert (standby.role, standby.lag_bytes, standby.lag_seconds) == ("sync_replica", 4096, 0.0)
    assert standby.node.samples.get().lag_seconds == 0.0  # the history has it too
    Cluster.objects.update(monitor_lease=None)
    one_wave(cluster, sync_reading(replay_lag_s=0.125))  # the primary's measure comes first
    assert statuses(cluster)["node2"].lag_seconds == 0.125
