"""Monitor waves built by hand, as the readers would return them: a three-node cluster, a
healthy reading and one after a failover, and one wave recording a reading (shared by the
monitor's tests; the database is real)."""

from itertools import count

from clusters.models import Cluster, Credential, Node
from clusters.monitoring.batch import monitor_claim_due
from clusters.monitoring.observe import Pass, context_load, record
from clusters.monitoring.reads import NodeReading, Reading, load_inventories
from clusters.monitoring.view import to_view

_numbers = count(1)


def make_cluster(state: str = Cluster.State.HEALTHY) -> Cluster:
    cred, _ = Credential.objects.get_or_create(
        name="lab", defaults={"username": "root", "password": "pw-123456"}
    )
    n = next(_numbers)
    cluster = Cluster.objects.create(name=f"c{n}", state=state, last_leader="node1")
    for host, name, kind in (
        (11, "node1", "database"),
        (12, "node2", "database"),
        (10, "proxy", "proxy"),
    ):
        Node.objects.create(
            cluster=cluster,
            name=name,
            kind=kind,
            address=f"10.{n // 250}.{n % 250}.{host}",
            credential=cred,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint="SHA256:" + "A" * 43,
        )
    return cluster


def healthy_reading(position: int = 1000, lag: int = 0) -> Reading:
    members = [
        {"name": "node1", "role": "leader", "state": "running", "timeline": 1},
        {"name": "node2", "role": "replica", "state": "streaming", "timeline": 1},
    ]
    standby = {"state": "streaming", "lag_bytes": lag, "replay_lag_s": 0.0}
    return Reading(
        patroni={"members": members},
        history=[],
        nodes={
            "node1": NodeReading(
                writable=True, wal_position=position, replication={"node2": standby}
            ),
            "node2": NodeReading(writable=False, wal_position=position - lag),
        },
        proxy={"primary": {"node1": "UP", "node2": "DOWN"}, "be_replicas": {"node2": "UP"}},
    )


def failed_over_reading() -> Reading:
    """node1 is gone, node2 holds the leader key and HAProxy already routes writes to it."""
    reading = healthy_reading()
    reading.patroni["members"][0].update(role="replica", state="stopped")
    reading.patroni["members"][1].update(role="leader", state="running")
    reading.nodes = {"node1": NodeReading(), "node2": NodeReading(writable=True, wal_position=9)}
    reading.proxy = {"primary": {"node1": "DOWN", "node2": "UP"}, "be_replicas": {}}
    return reading


def one_wave(clusters: list[Cluster], reading: Reading) -> dict[int, str]:
    """Claim the clusters and record `reading` for each, as one batch and one wave."""
    lease, batches = monitor_claim_due()
    inventories = load_inventories([pk for batch in batches for pk in batch], lease)
    passes = [Pass(i, reading, to_view(i, reading)) for i in inventories]
    return record(passes, context_load([c.pk for c in clusters]), lease)
