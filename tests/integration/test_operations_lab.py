"""Operations on a live lab cluster with a writer through the proxy: switchover both ways,
maintenance mode, and a powered-off primary rebuilt as a standby after the failover.

One test, one cluster: transactional tests empty the database between tests, and a setup
costs ~25 s."""

import time

import pytest

from clusters.models import Cluster, ClusterEvent, NodeStatus
from jobs import services
from jobs.errors import JobRefused
from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.integration.conftest import leader_name, streaming_standby, wait_for_job
from tests.integration.test_setup_lab import define_cluster
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ADDRESSES = ("198.18.0.11", "198.18.0.12")


def run(cluster, kind: str, node: str | None = None, timeout: float = 300, **params):
    cluster.refresh_from_db()  # plans check the state the previous job left
    job = services.job_start(
        cluster=cluster,
        kind=kind,
        node=cluster.nodes.get(name=node) if node else None,
        params=params,
    )
    job = wait_for_job(job, timeout=timeout)
    assert job.status == JobStatus.SUCCEEDED, (
        job.error,
        [(s.title, s.summary) for s in job.steps.all()],
    )
    return job


def test_switchover_maintenance_and_rebuild_after_a_power_off(fresh_lab, worker):
    cluster = define_cluster(fresh_lab, "ops")
    run(cluster, "setup", timeout=600)
    secret = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@198.18.0.10:5432/postgres")
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) >= 10, 20, "the writer to get going")

        run(cluster, "switchover", node="node2")
        assert leader_name(*ADDRESSES) == "node2"
        event = ClusterEvent.objects.get(cluster=cluster, kind="switchover", new_primary="node2")
        assert event.downtime_s is not None and event.downtime_s < 30
        print(f"switchover to node2: writes stopped {event.downtime_s} s")
        run(cluster, "switchover")  # no target: the best standby, node1
        assert leader_name(*ADDRESSES) == "node1"

        Cluster.objects.filter(pk=cluster.pk).update(state="degraded")
        with pytest.raises(JobRefused, match="needs a healthy cluster"):
            services.job_start(cluster=Cluster.objects.get(pk=cluster.pk), kind="switchover")
        Cluster.objects.filter(pk=cluster.pk).update(state="healthy")

        restart = run(cluster, "restart")  # the primary's PostgreSQL, under pause
        assert leader_name(*ADDRESSES) == "node1"
        assert "still the primary" in restart.steps.get(name="restart").summary
        assert not Cluster.objects.get(pk=cluster.pk).maintenance

        with pytest.raises(JobRefused, match="loses every write"):
            services.job_start(
                cluster=cluster, kind="failover", node=cluster.nodes.get(name="node2")
            )
        run(cluster, "failover", node="node2", confirm="ops")
        assert leader_name(*ADDRESSES) == "node2"
        # The old primary rejoins (Patroni rewinds it, or the rebuild does); then back.
        rejoined = run(cluster, "rebuild", node="node1")
        assert rejoined.steps.get(name="verify").summary.startswith("streams from node2")
        run(cluster, "switchover", node="node1")

        run(cluster, "maintenance_on")
        assert Cluster.objects.get(pk=cluster.pk).maintenance
        fresh_lab.exec("node1", ["sh", "-c", "pkill -KILL -o -x postgres || true"])
        time.sleep(25)  # longer than ttl 20: a paused Patroni must not fail over
        # node1's PostgreSQL is down (so it may not show as leader), but nobody took over.
        assert leader_name(*ADDRESSES) in (None, "node1")
        run(cluster, "maintenance_off")
        resumed = time.monotonic()
        wait_for(lambda: writer.acks[-1].at > resumed, 60, "writes after maintenance mode")

        # After the resume Patroni may have failed over instead of restarting the killed
        # PostgreSQL; either way wait until a standby streams again before the next fault.
        wait_for(lambda: streaming_standby(*ADDRESSES), 120, "a streaming standby")
        primary = leader_name(*ADDRESSES)
        other = "node2" if primary == "node1" else "node1"
        other_address = ADDRESSES[int(other[-1]) - 1]
        fresh_lab.power_off(primary)
        wait_for(lambda: leader_name(other_address) == other, 90, f"the failover to {other}")
        wait_for(lambda: writer.acks[-1].server == other_address, 30, f"writes on {other}")
        fresh_lab.power_on(primary)
        Cluster.objects.filter(pk=cluster.pk).update(state="degraded")
        rebuild = run(cluster, "rebuild", node=primary, timeout=600)
        summaries = {s.name: s.summary for s in rebuild.steps.all()}
        assert summaries["rejoin"].startswith(("rejoined", "already streaming"))
        assert summaries["verify"].startswith(f"streams from {other}")
        print(f"rebuild of {primary}: " + "; ".join(summaries.values()))
    finally:
        writer.stop()
    assert leader_name(*ADDRESSES) == other
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    print(
        f"operations: {len(writer.acks)} writes acknowledged, {len(missing)} missing "
        "(async: a power-off may lose the last unreplicated ones)"
    )
    assert writer.servers_in_order()[-1] == other_address
    assert NodeStatus.objects.filter(node__cluster=cluster, fenced=True).count() == 0
