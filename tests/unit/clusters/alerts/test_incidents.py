"""Incidents: the events of one failover told as one story, fed by the monitor's waves as the
readers would return them (no network)."""

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from clusters.alerts import incidents
from clusters.alerts.events import event_record
from clusters.models import Cluster, ClusterEvent, Incident
from clusters.monitoring.reads import NodeReading
from jobs.models import Job, JobStatus
from jobs.playbooks import operations
from tests.unit.clusters.monitoring.test_monitor_rounds import (
    failed_over_reading,
    healthy_reading,
    make_cluster,
    one_wave,
)

pytestmark = pytest.mark.django_db


def primary_silent_reading():
    """node1 (the leader) powered off: its PostgreSQL does not answer; node2's Patroni still
    lists it as leader until the key expires; HAProxy's check has not failed yet."""
    reading = healthy_reading()
    reading.nodes["node1"] = NodeReading()
    return reading


def node1_back_reading(state: str = "streaming"):
    """After the failover: node1 answers again as a replica (streaming, or not)."""
    reading = failed_over_reading()
    reading.patroni["members"][0].update(role="replica", state=state)
    reading.nodes["node1"] = NodeReading(writable=False, wal_position=9)
    sender = {"state": "streaming", "lag_bytes": 0, "replay_lag_s": 0.0}
    reading.nodes["node2"] = NodeReading(
        writable=True,
        wal_position=9,
        replication={"node1": sender} if state == "streaming" else {},
    )
    reading.proxy = {"primary": {"node1": "DOWN", "node2": "UP"}, "be_replicas": {"node1": "UP"}}
    return reading


def promoted_reading(promoted_at: str):
    reading = failed_over_reading()
    reading.history = [[2, 5, "no recovery target specified", promoted_at, "node2"]]
    return reading


def handover(cluster: Cluster, kind: str, old: str, new: str) -> ClusterEvent:
    """A hand-over recorded as the monitor or a switchover job records one."""
    return event_record(
        cluster, kind, f"{kind} from {old} to {new}", old_primary=old, new_primary=new
    )


def age_healthy_stretch(incident: Incident, by: timedelta) -> None:
    """Pretend the healthy stretch started `by` earlier (the monitor's clock is the real one)."""
    incident.refresh_from_db()
    started = timezone.now() - by
    incident.details = {**incident.details, "healthy_since": started.isoformat()}
    incident.save(update_fields=["details"])


def test_a_power_off_failover_is_one_incident_from_the_down_to_the_rejoin():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading(position=1000))
    one_wave([cluster], primary_silent_reading())  # node_down; writes go nowhere: an outage
    outage = Incident.objects.get(cluster=cluster)
    assert outage.kind == "outage" and outage.is_open
    assert outage.details["last_healthy"]
    one_wave([cluster], failed_over_reading())  # the failover joins it
    one_wave([cluster], promoted_reading(timezone.now().isoformat()))
    one_wave([cluster], node1_back_reading(state="running"))  # back, not streaming yet
    one_wave([cluster], node1_back_reading())  # streams: a rejoin

    incident = Incident.objects.get(cluster=cluster)  # still one
    assert (incident.kind, incident.old_primary, incident.new_primary) == (
        "failover",
        "node1",
        "node2",
    )
    assert incident.title == "failover from node1 to node2"
    kinds = list(incident.events.order_by("at", "pk").values_list("kind", flat=True))
    # The state changes it went through fold under it too (down, failing over, …).
    assert "state_changed" in kinds
    assert [k for k in kinds if k != "state_changed"][:2] == ["node_down", "failover"]
    assert "node_up" in kinds and "rejoin" in kinds
    assert ClusterEvent.objects.filter(cluster=cluster, incident__isnull=True).count() == 0
    failover = ClusterEvent.objects.get(cluster=cluster, kind="failover")
    assert failover.downtime_s is not None
    assert incident.downtime_s == failover.downtime_s
    assert incident.lost_bytes == failover.lost_bytes == 1000 - 5


def test_the_incident_closes_after_the_cluster_stays_healthy_and_later_events_stay_loose():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    one_wave([cluster], failed_over_reading())
    incident = Incident.objects.get(cluster=cluster)
    one_wave([cluster], node1_back_reading())  # healthy: the stretch starts
    incident.refresh_from_db()
    assert incident.is_open and incident.details["healthy_since"]
    age_healthy_stretch(incident, incidents.CLOSE_AFTER - timedelta(seconds=10))
    one_wave([cluster], node1_back_reading())
    incident.refresh_from_db()
    assert incident.is_open  # not long enough yet
    age_healthy_stretch(incident, incidents.CLOSE_AFTER)
    one_wave([cluster], node1_back_reading())
    incident.refresh_from_db()
    assert not incident.is_open
    later = event_record(cluster, "lag_high", "node1 lags")
    assert later.incident_id is None


def test_a_reading_that_is_not_healthy_breaks_the_healthy_stretch():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    one_wave([cluster], failed_over_reading())
    one_wave([cluster], node1_back_reading())
    incident = Incident.objects.get(cluster=cluster)
    age_healthy_stretch(incident, timedelta(minutes=10))
    one_wave([cluster], node1_back_reading(state="running"))  # degraded again
    incident.refresh_from_db()
    assert incident.is_open and "healthy_since" not in incident.details


def test_two_failovers_far_apart_are_two_incidents():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    one_wave([cluster], failed_over_reading())
    one_wave([cluster], node1_back_reading())
    first = Incident.objects.get(cluster=cluster)
    age_healthy_stretch(first, incidents.CLOSE_AFTER)
    one_wave([cluster], node1_back_reading())
    # Back to node1, much later.
    back = healthy_reading()
    one_wave([cluster], back)
    found = list(Incident.objects.filter(cluster=cluster).order_by("opened"))
    assert len(found) == 2
    assert [i.new_primary for i in found] == ["node2", "node1"]
    assert not found[0].is_open and found[1].is_open


def test_a_switchover_run_by_a_job_is_a_switchover_incident():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    Job.objects.create(kind="switchover", cluster=cluster, status=JobStatus.RUNNING)
    one_wave([cluster], failed_over_reading())
    incident = Incident.objects.get(cluster=cluster)
    assert incident.kind == "switchover" and incident.title == "switchover from node1 to node2"


def test_a_second_hand_over_while_open_joins_the_incident_and_is_told_after_the_first():
    cluster = make_cluster()
    first = event_record(
        cluster,
        "failover",
        "failover from node1 to node2",
        old_primary="node1",
        new_primary="node2",
    )
    second = event_record(
        cluster,
        "switchover",
        "switchover from node2 to node1",
        old_primary="node2",
        new_primary="node1",
    )
    assert first.incident_id == second.incident_id
    incident = Incident.objects.get(pk=first.incident_id)
    assert incident.title == "failover from node1 to node2, then to node1"
    assert incident.new_primary == "node1"


def test_a_failover_soon_after_a_switchover_is_an_incident_of_its_own():
    cluster = make_cluster()
    planned = event_record(
        cluster,
        "switchover",
        "switchover from node1 to node2",
        old_primary="node1",
        new_primary="node2",
    )
    restart = event_record(cluster, "node_restarted", "PostgreSQL on node1 started again")
    Incident.objects.filter(pk=planned.incident_id).update(
        details={"healthy_since": timezone.now().isoformat()}
    )
    down = event_record(cluster, "node_down", "node2 stopped answering", node="node2")
    assert down.incident_id == planned.incident_id  # the switchover's, while it is open
    fault = event_record(
        cluster,
        "failover",
        "failover from node2 to node1",
        old_primary="node2",
        new_primary="node1",
    )
    switchover, failover = Incident.objects.get(pk=planned.incident_id), fault.incident
    # The fault's first sign, recorded while the switchover's incident was still open, is told
    # with the failover; the switchover's own events stay with it.
    kinds = ClusterEvent.objects.get(pk=down.pk).incident.events.values_list("kind", flat=True)
    assert set(kinds) == {"node_down", "failover"}
    assert ClusterEvent.objects.get(pk=restart.pk).incident_id == switchover.pk
    assert switchover.pk != failover.pk and not switchover.is_open and failover.is_open
    assert (failover.kind, failover.old_primary, failover.new_primary) == (
        "failover",
        "node2",
        "node1",
    )
    assert switchover.closed == fault.at


def test_only_the_look_back_before_a_hand_over_joins_it():
    cluster = make_cluster()
    now = timezone.now()
    old = event_record(
        cluster, "node_down", "node2 stopped answering", at=now - timedelta(minutes=9)
    )
    near = event_record(
        cluster, "node_down", "node1 stopped answering", at=now - timedelta(seconds=40)
    )
    assert old.incident_id is None and near.incident_id is None  # nothing open yet
    failover = event_record(
        cluster,
        "failover",
        "failover from node1 to node2",
        old_primary="node1",
        new_primary="node2",
    )
    old.refresh_from_db()
    near.refresh_from_db()
    assert near.incident_id == failover.incident_id
    assert old.incident_id is None


def test_a_hand_over_recorded_twice_opens_one_incident():
    cluster = make_cluster()
    a = incidents.incident_for_event(cluster=cluster, kind="failover", at=timezone.now())
    b = incidents.incident_for_event(cluster=cluster, kind="failover", at=timezone.now())
    assert a.pk == b.pk and Incident.objects.count() == 1


def test_a_worker_that_loses_the_race_to_open_joins_the_winners_incident(monkeypatch):
    """The other worker inserted between this one's look and its insert: the constraint refuses
    the second open incident, and this one joins the first."""
    cluster = make_cluster()
    winner = Incident.objects.create(cluster=cluster, kind="failover", opened=timezone.now())
    real_filter = Incident.objects.filter
    looks = []

    def blind_first_look(*args, **kwargs):
        found = real_filter(*args, **kwargs)
        if not looks:  # the first look misses the winner's row
            looks.append(1)
            return found.none()
        return found

    monkeypatch.setattr(Incident.objects, "filter", blind_first_look)
    found = incidents.incident_for_event(cluster=cluster, kind="failover", at=timezone.now())
    assert found.pk == winner.pk
    assert real_filter(cluster=cluster).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_monitor_passes_at_once_open_one_outage():
    cluster = make_cluster()
    Cluster.objects.filter(pk=cluster.pk).update(state="healthy", last_checked=timezone.now())
    cluster.refresh_from_db()
    barrier, found, errors = threading.Barrier(2), [], []

    def one_pass():
        try:
            barrier.wait(timeout=10)
            incident = incidents.incident_observe(
                cluster=cluster,
                state="down",
                reasons=["HAProxy routes writes to no server."],
                previous_state="healthy",
                last_checked=cluster.last_checked,
                now=timezone.now(),
                open_incident=None,
            )
            found.append(incident.pk)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert len(set(found)) == 1 and Incident.objects.filter(cluster=cluster).count() == 1


def test_an_outage_without_a_hand_over_measures_its_downtime_and_closes():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    nowhere = healthy_reading()
    nowhere.proxy = {"primary": {"node1": "DOWN", "node2": "DOWN"}, "be_replicas": {"node2": "UP"}}
    one_wave([cluster], nowhere)
    incident = Incident.objects.get(cluster=cluster)
    assert incident.kind == "outage" and incident.title.startswith("outage: HAProxy routes")
    one_wave([cluster], healthy_reading())
    incident.refresh_from_db()
    assert incident.details["writes_back_at"] and incident.downtime_s is not None
    assert incident.downtime_s >= 0 and incident.lost_bytes is None


def test_a_probe_measured_switchover_downtime_is_the_incidents():
    cluster = make_cluster()
    event = event_record(
        cluster,
        "switchover",
        "switchover from node1 to node2",
        old_primary="node1",
        new_primary="node2",
    )
    ClusterEvent.objects.filter(pk=event.pk).update(downtime_s=1.4, lost_bytes=0)
    incidents.incident_measure(incident_id=event.incident_id)
    incident = Incident.objects.get(pk=event.incident_id)
    assert (incident.downtime_s, incident.lost_bytes) == (1.4, 0)


def test_a_switchover_the_job_records_first_gets_its_loss_measured_by_the_monitor():
    """The job records the switchover (and moves last_leader) before the monitor sees the new
    leader: the event carries the old primary's last reading, so the monitor's next passes
    find this promotion (not an earlier one to the same node) and the WAL past it."""
    cluster = make_cluster()
    one_wave([cluster], healthy_reading(position=1000))
    job = Job.objects.create(
        kind="switchover", cluster=cluster, status=JobStatus.RUNNING, started=timezone.now()
    )
    ctx = SimpleNamespace(cluster=cluster, job=job)
    operations._record_switchover(ctx, "node1", "node2", 1.23)
    event = ClusterEvent.objects.get(cluster=cluster, kind="switchover")
    assert event.details["old_wal_position"] == 1000 and event.details["old_last_healthy"]
    earlier = [1, 400, "no recovery target specified", "2026-01-01T00:00:00+00:00", "node2"]
    reading = failed_over_reading()
    reading.history = [earlier]
    one_wave([cluster], reading)
    event.refresh_from_db()
    assert event.details["promoted_at"] is None and event.lost_bytes is None
    reading.history = [earlier, [2, 1000, "switchover", timezone.now().isoformat(), "node2"]]
    one_wave([cluster], reading)
    event.refresh_from_db()
    assert event.lost_bytes == 0 and event.downtime_s == 1.2  # the probe's figure stays
    incident = Incident.objects.get(pk=event.incident_id)
    assert (incident.kind, incident.downtime_s, incident.lost_bytes) == ("switchover", 1.2, 0)
