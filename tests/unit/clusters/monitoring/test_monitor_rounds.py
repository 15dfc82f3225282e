"""The monitor's rounds without the network: the fan-out's claim, batches, and what a wave of
readings writes (built by hand, as the readers would return them)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters.models import Cluster, ClusterEvent, Node, NodeStatus, StatusSample
from clusters.monitoring.batch import monitor_claim_due, split
from clusters.monitoring.observe import Pass, context_load, record
from clusters.monitoring.reads import NodeReading, load_inventories, read_patroni
from clusters.monitoring.view import to_view
from tests.unit.clusters.monitoring.monitor_waves import (
    failed_over_reading,
    healthy_reading,
    make_cluster,
    one_wave,
)

pytestmark = pytest.mark.django_db


def test_batches_are_as_equal_as_possible_and_never_above_the_size():
    assert split(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [len(b) for b in split(list(range(200)), 25)] == [25] * 8
    assert [len(b) for b in split(list(range(51)), 25)] == [17, 17, 17]
    assert split([], 25) == []


def test_a_claimed_cluster_is_not_queued_again_until_its_pass_frees_it_or_the_lease_ends(
    settings,
):
    settings.MONITOR_BATCH_SIZE = 2
    settings.MONITOR_LEASE_S = 20
    stale, fresh = make_cluster(), make_cluster()
    Cluster.objects.filter(pk=fresh.pk).update(last_checked=timezone.now())
    make_cluster(state=Cluster.State.NEW)  # setup owns it: never monitored
    assert monitor_claim_due()[1] == [[stale.pk, fresh.pk]]  # the longest unobserved first
    assert monitor_claim_due()[1] == []  # queued or being read: not claimed twice
    Cluster.objects.filter(pk=fresh.pk).update(monitor_lease=None)  # its pass ended
    assert monitor_claim_due()[1] == [[fresh.pk]]
    later = timezone.now() + timedelta(seconds=21)  # a lost batch: its lease runs out
    assert monitor_claim_due(now=later)[1] == [[stale.pk, fresh.pk]]


def test_a_batch_whose_lease_was_taken_over_reads_nothing():
    cluster = make_cluster()
    lease, _ = monitor_claim_due()
    later = timezone.now() + timedelta(seconds=3600)
    monitor_claim_due(now=later)  # another fan-out took it after the lease ran out
    assert load_inventories([cluster.pk], lease) == []


def test_a_wave_writes_statuses_samples_and_state_and_frees_the_leases():
    clusters = [make_cluster() for _ in range(3)]
    states = one_wave(clusters, healthy_reading())
    assert set(states.values()) == {"healthy"}
    for cluster in Cluster.objects.filter(pk__in=[c.pk for c in clusters]):
        assert cluster.state == "healthy" and cluster.last_checked is not None
        assert cluster.monitor_lease is None
    primary = NodeStatus.objects.get(node__cluster=clusters[0], node__name="node1")
    assert (primary.role, primary.writable, primary.proxy_status) == ("primary", True, "UP")
    standby = NodeStatus.objects.get(node__cluster=clusters[0], node__name="node2")
    assert (standby.role, standby.lag_bytes, standby.lag_seconds) == ("replica", 0, 0.0)
    assert [worst for _minute, worst in standby.lag_minutes] == [0]  # the sparkline's minute
    assert primary.lag_minutes == []
    assert StatusSample.objects.count() == 6


def test_an_unchanged_status_only_gets_last_seen_and_a_changed_one_all_its_fields():
    clusters = [make_cluster(), make_cluster()]
    one_wave(clusters, healthy_reading(position=1000))
    before = {s.pk: s for s in NodeStatus.objects.all()}
    one_wave(clusters, healthy_reading(position=1000))
    for status in NodeStatus.objects.all():
        assert status.last_seen > before[status.pk].last_seen
        assert status.wal_position == 1000
    one_wave(clusters, healthy_reading(position=5000, lag=100))
    standby = NodeStatus.objects.get(node__cluster=clusters[1], node__name="node2")
    assert (standby.wal_position, standby.lag_bytes) == (4900, 100)
    assert standby.lag_minutes[-1][1] == 100  # the minute's worst, for the sparkline


def test_queries_of_a_wave_do_not_grow_with_its_clusters():
    def queries(n: int) -> int:
        clusters = [make_cluster() for _ in range(n)]
        one_wave(clusters, healthy_reading())  # first pass: statuses created
        Cluster.objects.update(monitor_lease=None)
        with CaptureQueriesContext(connection) as captured:
            one_wave(clusters, healthy_reading(position=2000, lag=10))
        Cluster.objects.all().delete()
        return len(captured)

    assert queries(2) == queries(20)


def test_a_new_leader_is_a_failover_event_and_an_alarm_is_raised_once():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    flipped = healthy_reading()
    flipped.patroni["members"][0]["role"] = "replica"
    flipped.patroni["members"][1]["role"] = "leader"
    # Both accept writes: node1 has not noticed that it lost the leader key.
    flipped.nodes["node2"] = NodeReading(writable=True, wal_position=2000)
    one_wave([cluster], flipped)
    one_wave([cluster], flipped)
    failover = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    assert (failover.old_primary, failover.new_primary) == ("node1", "node2")
    assert cluster.alarms.filter(code="split_brain", cleared__isnull=True).count() == 1
    assert Cluster.objects.get(pk=cluster.pk).last_leader == "node2"


def test_a_cluster_whose_row_cannot_be_written_does_not_cost_the_others_theirs():
    good, bad = make_cluster(), make_cluster()
    lease, batches = monitor_claim_due()
    inventories = {i.cluster.pk: i for i in load_inventories(batches[0], lease)}
    readings = {good.pk: healthy_reading(), bad.pk: healthy_reading(lag=2**64)}  # not a bigint
    passes = [Pass(i, readings[pk], to_view(i, readings[pk])) for pk, i in inventories.items()]
    states = record(passes, context_load([good.pk, bad.pk]), lease)
    assert states == {good.pk: "healthy"}
    good, bad = Cluster.objects.get(pk=good.pk), Cluster.objects.get(pk=bad.pk)
    assert good.last_checked is not None and good.monitor_lease is None
    assert NodeStatus.objects.filter(node__cluster=good).count() == 2
    assert bad.last_checked is None and bad.monitor_lease is None  # tried again next round


@pytest.mark.parametrize(
    ("known_leader", "history", "reads_history"),
    [
        ("node1", False, False),  # nothing changed, no hand-over pending: /cluster only
        ("node2", False, True),  # the leader changed: the promotion time is in /history
        (None, False, True),  # first pass
        ("node1", True, True),  # a hand-over still waits for its promotion time
    ],
)
def test_patronis_history_is_read_only_when_a_hand_over_needs_it(
    monkeypatch, known_leader, history, reads_history
):
    asked = []

    def fake_get_json(node: Node, path: str, timeout: float) -> object:
        asked.append(path)
        if path == "/cluster":
            return healthy_reading().patroni
        return [[1, 100, "no recovery target specified", "2026-01-01T00:00:00+00:00", "node1"]]

    monkeypatch.setattr("clusters.monitoring.reads._get_json", fake_get_json)
    found, entries = read_patroni(
        [Node(name="node1", address="10.0.0.1")], 1.0, known_leader=known_leader, history=history
    )
    assert found["members"][0]["name"] == "node1"
    assert asked == (["/cluster", "/history"] if reads_history else ["/cluster"])
    assert bool(entries) == reads_history


def test_history_is_wanted_while_the_latest_hand_over_lacks_its_promotion_time():
    cluster = make_cluster()
    assert not context_load([cluster.pk]).history_wanted(cluster.pk)
    event = ClusterEvent.objects.create(
        cluster=cluster,
        kind="failover",
        at=timezone.now(),
        summary="failover from node1 to node2",
        details={"promoted_at": None},
    )
    assert context_load([cluster.pk]).history_wanted(cluster.pk)
    event.details["promoted_at"] = "2026-01-01T00:00:00+00:00"
    event.save()
    assert not context_load([cluster.pk]).history_wanted(cluster.pk)


def test_the_downtime_waits_for_the_promotion_time_when_haproxy_routes_first():
    """Patroni writes its history a loop after promoting; HAProxy may route writes before."""
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    promoted = failed_over_reading()
    one_wave([cluster], promoted)  # new leader, routed, but no promotion in the history yet
    event = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    assert event.details["proxy_routed_at"] and event.downtime_s is None
    promoted_at = (timezone.now() + timedelta(seconds=1)).isoformat()
    promoted.history = [[1, 5, "no recovery target specified", promoted_at, "node2"]]
    one_wave([cluster], promoted)
    event.refresh_from_db()
    assert event.details["promoted_at"] == promoted_at
    routed_at = parse_datetime(event.details["proxy_routed_at"])
    healthy = parse_datetime(event.details["old_last_healthy"])
    assert event.downtime_s == round((routed_at - healthy).total_seconds(), 1)


def test_an_earlier_promotion_of_the_same_node_is_not_taken_for_this_one():
    """Until Patroni writes this hand-over's entry, the newest one naming node2 is older than
    the old primary's last healthy reading: neither its time nor its LSN belong here."""
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    promoted = failed_over_reading()
    earlier = [2, 5, "no recovery target specified", "2026-01-01T00:00:00+00:00", "node2"]
    promoted.history = [earlier]
    one_wave([cluster], promoted)
    event = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    assert event.details["promoted_at"] is None and event.lost_bytes is None
    now = timezone.now().isoformat()
    promoted.history = [earlier, [3, 7, "no recovery target specified", now, "node2"]]
    one_wave([cluster], promoted)
    event.refresh_from_db()
    assert event.details["promoted_at"] == now


def test_the_downtime_is_recorded_without_a_promotion_time_after_a_wait(settings):
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    promoted = failed_over_reading()
    one_wave([cluster], promoted)
    event = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    routed_at = timezone.now() - timedelta(seconds=31)  # Patroni's history never showed it
    event.details["proxy_routed_at"] = routed_at.isoformat()
    event.save()
    one_wave([cluster], promoted)
    event.refresh_from_db()
    assert event.details["promoted_at"] is None and event.downtime_s is not None


def test_a_standby_above_the_lag_threshold_is_told_in_binary_units(settings):
    settings.LAG_ALERT_AFTER_S = 0  # the second pass above the threshold raises the event
    cluster = make_cluster()
    for _ in range(2):
        one_wave([cluster], healthy_reading(position=300_000_000, lag=223_772_447))
    event = ClusterEvent.objects.get(cluster=cluster, kind="lag_high")
    assert event.summary == "node2 lags 213 MiB for 0 s (alert threshold 16 MiB)"


def test_a_server_up_with_its_postgres_silent_is_remembered_from_its_first_reading():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    status = NodeStatus.objects.get(node__cluster=cluster, node__name="node2")
    assert status.host_up_since is None  # PostgreSQL answers

    def node2_silent(server_answers: bool):
        reading = healthy_reading()
        reading.nodes["node2"] = NodeReading(host_answers=server_answers)
        return reading

    one_wave([cluster], node2_silent(server_answers=True))
    since = NodeStatus.objects.get(pk=status.pk).host_up_since
    assert since is not None
    one_wave([cluster], node2_silent(server_answers=True))
    assert NodeStatus.objects.get(pk=status.pk).host_up_since == since  # since, not last seen
    one_wave([cluster], node2_silent(server_answers=False))
    assert NodeStatus.objects.get(pk=status.pk).host_up_since is None  # the server went too
    one_wave([cluster], node2_silent(server_answers=True))
    one_wave([cluster], healthy_reading())
    assert NodeStatus.objects.get(pk=status.pk).host_up_since is None  # PostgreSQL is back


def test_a_primary_that_demoted_itself_long_before_the_new_leader_counts_from_its_last_lead():
    """etcd lost its quorum: node1 demoted itself and answers read-only for a minute before
    node2 is elected. The outage began when node1 stopped leading, not at its last answer."""
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    led = StatusSample.objects.filter(node__name="node1", role="primary").latest("at").at
    demoted = healthy_reading()
    demoted.patroni["members"][0].update(role="replica", state="running")
    demoted.nodes["node1"] = NodeReading(writable=False, wal_position=1000)
    one_wave([cluster], demoted)
    elected = failed_over_reading()
    elected.nodes["node1"] = NodeReading(writable=False, wal_position=1000)
    one_wave([cluster], elected)
    event = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    assert parse_datetime(event.details["old_last_healthy"]) == led
    assert NodeStatus.objects.get(node__name="node1").last_seen > led
