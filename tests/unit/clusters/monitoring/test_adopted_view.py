"""An adopted Patroni cluster as the monitor sees it: no proxy (its silence is not a problem
then), and Patroni before 3.0.4 (Debian 12's 3.0.2), which calls a streaming replica "running"."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters.models import Cluster, ClusterEvent, Node
from clusters.monitoring.health import derive_state, find_alarms
from clusters.monitoring.reads import Inventory, NodeReading, Reading
from clusters.monitoring.view import to_view
from jobs import patroni_api
from tests.unit.clusters.monitoring.health_views import primary, standby, view
from tests.unit.clusters.monitoring.test_monitor_rounds import (
    failed_over_reading,
    healthy_reading,
    make_cluster,
    one_wave,
)

NO_PROXY = {"proxy_rw": None, "proxy_ro": None}


def test_a_cluster_without_a_proxy_is_healthy_when_haproxy_is_silent():
    members = (primary(**NO_PROXY), standby(**NO_PROXY))
    state, reasons = derive_state(view(*members, proxy_answered=False, proxy_expected=False))
    assert (state, reasons) == ("healthy", [])


def test_a_cluster_with_a_proxy_is_degraded_when_haproxy_is_silent():
    members = (primary(**NO_PROXY), standby(**NO_PROXY))
    state, reasons = derive_state(view(*members, proxy_answered=False, proxy_expected=True))
    assert state == "degraded"
    assert any("HAProxy" in r for r in reasons)


def _inventory(proxy: bool) -> Inventory:
    return Inventory(
        cluster=Cluster(name="shop", last_leader="node1"),
        db_nodes=[Node(name="node1"), Node(name="node2")],
        proxy=Node(name="proxy") if proxy else None,
        secrets={},
        statuses={},
    )


def _reading(sender_state: str | None) -> Reading:
    """Patroni 3.0.2's /cluster: the leader and a replica both "running"; node2's WAL sender
    on node1 in `sender_state` (None: node1 lists no sender for it)."""
    members = [
        {"name": "node1", "role": "leader", "state": "running", "timeline": 1},
        {"name": "node2", "role": "replica", "state": "running", "timeline": 1, "lag": 0},
    ]
    row = {"state": sender_state, "lag_bytes": 0, "replay_lag_s": 0.0}
    return Reading(
        patroni={"members": members},
        history=[],
        nodes={
            "node1": NodeReading(
                writable=True, wal_position=9, replication={"node2": row} if sender_state else {}
            ),
            "node2": NodeReading(writable=False, wal_position=9),
        },
        proxy=None,
    )


def test_an_old_patronis_running_replica_streams_when_the_primary_sends_to_it():
    seen = to_view(_inventory(proxy=False), _reading("streaming"))
    assert [m.patroni_state for m in seen.members] == ["running", "streaming"]
    assert seen.proxy_expected is False
    assert derive_state(seen) == ("healthy", [])
    assert find_alarms(seen) == {}


@pytest.mark.parametrize("sender_state", [None, "catchup", "startup"])
def test_an_old_patronis_running_replica_without_a_streaming_sender_is_not_streaming(
    sender_state,
):
    seen = to_view(_inventory(proxy=False), _reading(sender_state))
    assert seen.members[1].patroni_state == "running"
    state, reasons = derive_state(seen)
    assert state == "degraded" and any(
        r.startswith("node2 does not stream from the primary (Patroni: running)") for r in reasons
    )
    assert "standby_not_streaming" in find_alarms(seen)


def _cluster_json(node2_state: str = "running") -> dict:
    return {
        "members": [
            {
                "name": "node1",
                "role": "leader",
                "state": "running",
                "api_url": "http://198.19.0.11:8008/patroni",
                "host": "198.19.0.11",
            },
            {"name": "node2", "role": "replica", "state": node2_state, "lag": 0},
            {"name": "node3", "role": "replica", "state": "running", "lag": 0},
        ]
    }


def test_patroni_api_marks_old_patronis_replicas_streaming_from_the_leaders_senders(
    monkeypatch,
):
    asked = []

    def request(address, path, **kw):
        asked.append((address, path))
        if path == "/cluster":
            return 200, _cluster_json()
        senders = [
            {"application_name": "node2", "state": "streaming"},
            {"application_name": "node3", "state": "catchup"},
        ]
        return 200, {"state": "running", "role": "master", "replication": senders}

    monkeypatch.setattr(patroni_api, "_request", request)
    members = patroni_api.cluster("198.19.0.12")["members"]
    assert [m["state"] for m in members] == ["running", "streaming", "running"]
    # The leader was asked at its REST address, once.
    assert asked == [("198.19.0.12", "/cluster"), ("198.19.0.11", "/patroni")]


def test_patroni_api_asks_nothing_more_of_a_new_patroni_or_without_a_leader(monkeypatch):
    asked = []
    answers = {
        "new": {"members": [{"name": "node1", "role": "leader", "state": "running"}]},
        "leaderless": {"members": [{"name": "node2", "role": "replica", "state": "running"}]},
    }
    for body in answers.values():
        monkeypatch.setattr(
            patroni_api, "_request", lambda a, p, body=body, **kw: asked.append(p) or (200, body)
        )
        patroni_api.cluster("198.19.0.12")
    assert asked == ["/cluster", "/cluster"]


def test_patroni_api_leaves_running_when_the_leader_does_not_answer(monkeypatch):
    def request(address, path, **kw):
        if path == "/cluster":
            return 200, _cluster_json()
        raise patroni_api.PatroniUnavailable("no answer")

    monkeypatch.setattr(patroni_api, "_request", request)
    members = patroni_api.cluster("198.19.0.12")["members"]
    assert [m["state"] for m in members] == ["running", "running", "running"]


@pytest.mark.django_db
def test_a_failover_without_a_proxy_gets_its_downtime_from_when_the_new_primary_takes_writes():
    cluster = make_cluster()
    cluster.nodes.filter(kind="proxy").delete()
    before = healthy_reading()
    before.proxy = None
    one_wave([cluster], before)
    after = failed_over_reading()
    after.proxy = None
    promoted_at = (timezone.now() + timedelta(seconds=1)).isoformat()
    after.history = [[1, 5, "no recovery target specified", promoted_at, "node2"]]
    one_wave([cluster], after)
    event = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    assert event.details["proxy_routed_at"] and event.details["promoted_at"] == promoted_at
    routed_at = parse_datetime(event.details["proxy_routed_at"])
    healthy = parse_datetime(event.details["old_last_healthy"])
    assert event.downtime_s == round((routed_at - healthy).total_seconds(), 1)


@pytest.mark.django_db
def test_without_a_proxy_a_new_leader_that_takes_no_writes_yet_has_no_downtime():
    cluster = make_cluster()
    cluster.nodes.filter(kind="proxy").delete()
    before = healthy_reading()
    before.proxy = None
    one_wave([cluster], before)
    after = failed_over_reading()
    after.proxy = None
    after.nodes["node2"] = NodeReading(writable=False, wal_position=9)  # still in recovery
    one_wave([cluster], after)
    event = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    assert not event.details.get("proxy_routed_at") and event.downtime_s is None
