"""What the monitor keeps of a judgement: the reasons and since when the state holds, an event per
change of state, the alarm for writes routed nowhere, and no "back" without a "down" (readings
built by hand, as the readers would return them; the database is real)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from clusters.alerts.rules import alerts_dispatch
from clusters.models import AlertChannel, Cluster, ClusterEvent, NodeStatus
from clusters.monitoring.health import NOTHING_ANSWERED, WRITES_NOWHERE
from clusters.monitoring.reads import NodeReading, Reading
from tests.unit.clusters.monitoring.monitor_waves import (
    failed_over_reading,
    healthy_reading,
    make_cluster,
    one_wave,
)

pytestmark = pytest.mark.django_db


def nowhere_reading() -> Reading:
    """node1 holds the key and takes writes, but HAProxy routes writes to no server."""
    reading = healthy_reading()
    reading.proxy = {"primary": {"node1": "DOWN", "node2": "DOWN"}, "be_replicas": {"node2": "UP"}}
    return reading


def lagging_reading(lag: int) -> Reading:
    return healthy_reading(position=10**9, lag=lag)


def silent_reading() -> Reading:
    """Nothing answered: not Patroni, not HAProxy, not PostgreSQL."""
    return Reading(
        patroni=None, history=[], nodes={"node1": NodeReading(), "node2": NodeReading()}, proxy=None
    )


def stopped_standby_reading() -> Reading:
    reading = healthy_reading()
    reading.patroni["members"][1]["state"] = "stopped"
    reading.nodes["node2"] = NodeReading()
    return reading


def fresh(cluster: Cluster) -> Cluster:
    return Cluster.objects.get(pk=cluster.pk)


def state_events(cluster: Cluster) -> list[ClusterEvent]:
    return list(cluster.events.filter(kind="state_changed").order_by("at", "pk"))


def test_the_reasons_are_stored_in_words_an_operator_acts_on():
    cluster = make_cluster()
    one_wave([cluster], nowhere_reading())
    cluster = fresh(cluster)
    assert cluster.state == "down"
    assert cluster.state_reasons == [WRITES_NOWHERE]
    assert cluster.state_reasons[0] == "HAProxy routes writes to no server: clients cannot write."
    one_wave([cluster], healthy_reading())
    assert fresh(cluster).state_reasons == []  # healthy: nothing to explain


def test_the_first_judgement_of_a_cluster_is_no_event():
    """Setup sets "healthy" and the monitor's first pass may find otherwise: not a change it saw
    (and every new cluster would page someone)."""
    cluster = make_cluster()
    assert cluster.state_since is None
    one_wave([cluster], stopped_standby_reading())
    cluster = fresh(cluster)
    assert cluster.state == "degraded" and cluster.state_since is not None
    assert state_events(cluster) == []


def test_state_since_holds_while_the_state_holds_and_the_reasons_follow_the_reading():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    since = fresh(cluster).state_since
    one_wave([cluster], healthy_reading())
    assert fresh(cluster).state_since == since
    one_wave([cluster], lagging_reading(40 * 1024 * 1024))
    degraded = fresh(cluster)
    assert degraded.state == "degraded" and degraded.state_since > since
    assert degraded.state_reasons[0].startswith("node2 lags 40.0 MiB")
    one_wave([cluster], lagging_reading(50 * 1024 * 1024))
    still = fresh(cluster)
    assert still.state_since == degraded.state_since  # still degraded: the start stays
    assert still.state_reasons[0].startswith("node2 lags 50.0 MiB")  # the reason is current
    assert len(state_events(cluster)) == 1


@pytest.mark.parametrize(
    ("reading", "state", "severity", "summary"),
    [
        (nowhere_reading, "down", "critical", "Down (was healthy for "),
        (stopped_standby_reading, "degraded", "warning", "Degraded (was healthy for "),
        (silent_reading, "unknown", "warning", "Unknown (was healthy for "),
    ],
)
def test_a_change_of_state_is_one_event_whose_severity_follows_the_new_state(
    reading, state, severity, summary
):
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    one_wave([cluster], reading())
    one_wave([cluster], reading())  # the state holds: no second event
    [event] = state_events(cluster)
    assert (event.severity, event.details["from"], event.details["to"]) == (
        severity,
        "healthy",
        state,
    )
    assert event.summary.startswith(summary)
    assert event.summary.endswith(fresh(cluster).state_reasons[0])  # the first reason says why
    one_wave([cluster], healthy_reading())
    back = state_events(cluster)[-1]
    assert back.severity == "info"
    assert back.summary.startswith(f"Healthy again (was {state} for ")


def test_an_unknown_cluster_says_nothing_answered_first():
    cluster = make_cluster()
    one_wave([cluster], silent_reading())
    assert fresh(cluster).state_reasons[0] == NOTHING_ANSWERED


def test_writes_routed_nowhere_raise_a_critical_alarm_that_alert_channels_deliver(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    AlertChannel.objects.create(kind="email", target="ops@example.com", min_severity="critical")
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    one_wave([cluster], nowhere_reading())
    alarm = cluster.alarms.get(code="writes_nowhere", cleared__isnull=True)
    assert alarm.message == WRITES_NOWHERE
    raised = cluster.events.get(kind="alarm_raised", details__code="writes_nowhere")
    assert raised.severity == "critical"
    assert [d.status for d in alerts_dispatch(event_id=raised.pk)] == ["sent"]
    assert "routes writes to no server" in mail.outbox[-1].subject
    one_wave([cluster], healthy_reading())
    alarm.refresh_from_db()
    assert alarm.cleared is not None


def test_writes_routed_nowhere_just_after_a_hand_over_wait_for_haproxys_checks():
    """HAProxy needs two checks to route writes to a new primary; the failover event already
    tells. Still nowhere ROUTE_GRACE_S later, it is an alarm."""
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    promoted = failed_over_reading()
    promoted.proxy = {"primary": {"node1": "DOWN", "node2": "DOWN"}, "be_replicas": {}}
    one_wave([cluster], promoted)
    assert cluster.events.filter(kind="failover").exists()
    assert not cluster.alarms.filter(code="writes_nowhere").exists()
    cluster.events.filter(kind="failover").update(at=timezone.now() - timedelta(seconds=11))
    one_wave([cluster], promoted)
    assert cluster.alarms.filter(code="writes_nowhere", cleared__isnull=True).exists()


def test_an_alarm_raised_before_a_hand_over_is_not_cleared_while_writes_still_go_nowhere():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    dead = nowhere_reading()
    dead.nodes["node1"] = NodeReading()  # the primary died; its leader key has not expired
    one_wave([cluster], dead)
    assert cluster.alarms.filter(code="writes_nowhere", cleared__isnull=True).exists()
    promoted = failed_over_reading()
    promoted.proxy = {"primary": {"node1": "DOWN", "node2": "DOWN"}, "be_replicas": {}}
    one_wave([cluster], promoted)  # node2 promoted, HAProxy not routing to it yet
    assert cluster.alarms.filter(code="writes_nowhere", cleared__isnull=True).exists()
    one_wave([cluster], failed_over_reading())  # routed: cleared
    assert not cluster.alarms.filter(code="writes_nowhere", cleared__isnull=True).exists()


def test_a_node_never_seen_down_comes_back_without_a_back_event():
    """A fresh install: the first pass finds node2 silent (no "stopped answering": it never
    answered the monitor) and the next one finds it up."""
    cluster = make_cluster()
    one_wave([cluster], stopped_standby_reading())
    assert NodeStatus.objects.get(node__cluster=cluster, node__name="node2").state == "down"
    one_wave([cluster], healthy_reading())
    assert not cluster.events.filter(kind__in=["node_up", "node_down"]).exists()


def test_a_node_recorded_down_is_back_once():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    one_wave([cluster], stopped_standby_reading())
    one_wave([cluster], healthy_reading())
    one_wave([cluster], healthy_reading())
    kinds = list(
        cluster.events.filter(kind__in=["node_up", "node_down"])
        .order_by("at", "pk")
        .values_list("kind", "summary")
    )
    assert kinds == [("node_down", "node2 stopped answering"), ("node_up", "node2 is back")]
