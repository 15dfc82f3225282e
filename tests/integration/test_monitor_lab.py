"""The monitor on a lab cluster, with a real beat and worker: state, the split-brain sentinel
(alarm and fence) and a failover event with its timings, told as one incident."""

import time

import pytest
from django.conf import settings

from clusters.models import Cluster, ClusterAlarm, ClusterEvent, Incident, NodeStatus
from clusters.monitoring.disk_space import disk_space_check
from clusters.monitoring.reads import read_proxy
from clusters.web.incident_selectors import incident_story
from jobs import services
from jobs.models import Job, JobStatus
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job
from tests.integration.test_setup_lab import define_cluster
from tests.workers import start_beat
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def monitored(fresh_lab, worker):
    """A set-up async cluster with beat running the monitor every MONITOR_INTERVAL_S."""
    cluster = define_cluster(fresh_lab, "mon")
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    assert job.status == JobStatus.SUCCEEDED, job.error
    beat = start_beat()
    try:
        wait_for(
            lambda: Cluster.objects.get(pk=cluster.pk).last_checked, 30, "the monitor's first pass"
        )
        yield cluster
    finally:
        beat.stop()


def test_monitor_keeps_a_healthy_cluster_healthy_with_lag_figures(monitored):
    def healthy_with_lag() -> bool:
        cluster = Cluster.objects.get(pk=monitored.pk)
        standby = NodeStatus.objects.get(node__cluster=monitored, node__name="node2")
        return cluster.state == "healthy" and standby.lag_bytes is not None

    wait_for(healthy_with_lag, 30, "the monitor to call the cluster healthy with lag figures")
    statuses = {s.node.name: s for s in NodeStatus.objects.filter(node__cluster=monitored)}
    assert statuses["node1"].role == "primary" and statuses["node1"].writable is True
    assert statuses["node2"].role == "replica" and statuses["node2"].writable is False
    assert statuses["node1"].proxy_status.startswith("UP")
    assert statuses["node2"].lag_seconds is not None
    assert not ClusterAlarm.objects.filter(cluster=monitored, cleared__isnull=True).exists()

    # The disk check (beat runs it every minute): one `df` over SSH per database node.
    assert disk_space_check(monitored) == 2
    for status in NodeStatus.objects.filter(node__cluster=monitored):
        assert 0 < status.disk_free_bytes < status.disk_total_bytes, status.disk_mount
        assert status.disk_mount.startswith("/") and status.disk_checked is not None


def test_second_writable_node_raises_the_alarm_within_two_periods_and_is_fenced(
    monitored, fresh_lab
):
    wait_for(lambda: Cluster.objects.get(pk=monitored.pk).state == "healthy", 30, "healthy")
    # Freeze node2's Patroni first: a running Patroni demotes a hand-promoted standby within
    # a loop, racing the monitor. Frozen, it is the rogue node the sentinel exists for.
    patroni = fresh_lab.exec("node2", ["pgrep", "-f", "bin/patroni"]).stdout.split()
    fresh_lab.exec("node2", ["kill", "-STOP", *patroni])
    promoted_at = time.time()
    fresh_lab.exec(
        "node2",
        [
            "sh",
            "-c",
            "cd / && runuser -u postgres -- "
            "/usr/lib/postgresql/15/bin/pg_ctl promote -D /var/lib/postgresql/15/mon",
        ],
    )
    alarm = wait_for(
        lambda: ClusterAlarm.objects.filter(cluster=monitored, code="split_brain").first(),
        30,
        "the split-brain alarm",
    )
    delay = alarm.raised.timestamp() - promoted_at
    print(f"split-brain alarm {delay:.1f} s after the promotion")
    assert delay <= 2 * settings.MONITOR_INTERVAL_S + 1.0  # two periods, plus one pass's reads
    fence = wait_for_job(
        wait_for(
            lambda: Job.objects.filter(cluster=monitored, kind="fence").first(), 10, "a fence job"
        )
    )
    assert fence.status == JobStatus.SUCCEEDED, fence.error
    assert fence.node.name == "node2"
    assert NodeStatus.objects.get(node=fence.node).fenced
    assert ClusterEvent.objects.filter(cluster=monitored, kind="fenced", node="node2").exists()
    stats_password = monitored.secrets.get(name="haproxy_stats").value
    backends = read_proxy(monitored.proxy_node, stats_password, timeout=3)
    assert backends["primary"]["node2"] == "MAINT"
    assert backends["be_replicas"]["node2"] == "MAINT"
    assert fresh_lab.exec("node2", ["pgrep", "-x", "postgres"], check=False).returncode == 1
    secret = monitored.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@198.18.0.10:5432/postgres")
    writer.start()
    wait_for(lambda: len(writer.acks) >= 5, 20, "writes through the proxy")
    writer.stop()
    assert {a.server for a in writer.acks} == {"198.18.0.11"}


def test_failover_is_recorded_as_an_event_with_timings(monitored, fresh_lab):
    wait_for(lambda: Cluster.objects.get(pk=monitored.pk).state == "healthy", 30, "healthy")
    fresh_lab.power_off("node1")
    event = wait_for(
        lambda: ClusterEvent.objects.filter(
            cluster=monitored, kind="failover", downtime_s__isnull=False
        ).first(),
        90,
        "a failover event with its downtime",
    )
    assert (event.old_primary, event.new_primary) == ("node1", "node2")
    assert event.details["old_last_healthy"] and event.details["proxy_routed_at"]
    assert event.details["promoted_at"]
    assert 5 < event.downtime_s < 60
    print(f"failover: downtime {event.downtime_s} s, promoted at {event.details['promoted_at']}")
    assert ClusterEvent.objects.filter(cluster=monitored, kind="node_down", node="node1").exists()

    # One incident tells it: the node_down before the failover and the failover in it, the
    # downtime and the loss measured, node1 to be brought back.
    incident = wait_for(
        lambda: Incident.objects.filter(cluster=monitored, downtime_s__isnull=False).first(),
        10,
        "the incident's measures",
    )
    assert Incident.objects.filter(cluster=monitored).count() == 1
    assert (incident.kind, incident.old_primary, incident.new_primary) == (
        "failover",
        "node1",
        "node2",
    )
    event.refresh_from_db()
    assert incident.is_open and incident.downtime_s == event.downtime_s
    assert incident.lost_bytes == event.lost_bytes  # async: WAL past the promotion, if any
    kinds = set(incident.events.values_list("kind", flat=True))
    assert {"node_down", "failover"} <= kinds
    story = incident_story(incident)
    done = {m.key for m in story["timeline"] if m.state == "done"}
    assert {"last_healthy", "detected", "promoted", "routed"} <= done
    assert story["recommendation"].code == "bring_back"
    print(
        f"incident: {incident.title}; downtime {incident.downtime_s} s, lost "
        f"{incident.lost_bytes} bytes; "
        + "; ".join(f"{m.key} +{m.after_s} s" for m in story["timeline"] if m.at)
    )

    # Back on, rebuilt as the recommendation says once it answers: the story ends.
    fresh_lab.power_on("node1")
    monitored.refresh_from_db()  # the rebuild's plan checks the state the monitor keeps
    node1 = monitored.nodes.get(name="node1")
    rebuild = wait_for_job(
        services.job_start(cluster=monitored, kind="rebuild", node=node1), timeout=600
    )
    assert rebuild.status == JobStatus.SUCCEEDED, rebuild.error

    def told_to_the_end():
        story = incident_story(Incident.objects.get(pk=incident.pk))
        states = {m.key: m.state for m in story["timeline"]}
        if states["old_back"] == "done" and states["rebuilt"] == "done":
            return story
        return None

    story = wait_for(told_to_the_end, 60, "node1 back and rebuilt in the incident's timeline")
    assert story["recommendation"].code in ("wait", "none")
    assert Incident.objects.filter(cluster=monitored).count() == 1
    print("incident after the rebuild: " + story["recommendation"].text)
