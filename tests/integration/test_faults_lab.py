"""Rebuild after damage on a live lab cluster with the monitor running and a writer through the
proxy: a standby whose data diverged with its WAL gone (rewind impossible: full copy, old data
kept aside) and a standby whose disk was wiped. After each, Rebuild brings the node back as a
streaming standby. (Kill -9, power-off, network cut and freeze are in tests/chaos.)

One test, one cluster (a setup costs ~25 s); each fault starts from a healthy cluster."""

import pytest

from clusters.models import Cluster, NodeStatus
from jobs import services
from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.integration.conftest import leader_name, streaming_standby, wait_for_job
from tests.integration.test_operations_lab import run
from tests.integration.test_setup_lab import define_cluster
from tests.workers import start_beat
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ADDRESS = {"node1": "198.18.0.11", "node2": "198.18.0.12"}
DATA = "/var/lib/postgresql/15/faults"
PG_BIN = "/usr/lib/postgresql/15/bin"


def standby_now() -> str:
    """The database node that is not the primary, as every member agrees."""
    primary = wait_for(lambda: leader_name(*ADDRESS.values()), 60, "an agreed leader")
    return next(n for n in ADDRESS if n != primary)


def healthy_again(cluster: Cluster) -> None:
    wait_for(lambda: streaming_standby(*ADDRESS.values()), 120, "a streaming standby")
    wait_for(
        lambda: Cluster.objects.get(pk=cluster.pk).state == Cluster.State.HEALTHY,
        60,
        "the monitor to see the cluster healthy",
    )


def rebuild(cluster: Cluster, node: str) -> dict[str, str]:
    """Run Rebuild on `node`; the step verdicts by step name."""
    cluster.refresh_from_db()
    job = services.job_start(cluster=cluster, kind="rebuild", node=cluster.nodes.get(name=node))
    job = wait_for_job(job, timeout=600)
    summaries = {s.name: s.summary for s in job.steps.all()}
    print(f"rebuild of {node}: " + " | ".join(f"{k}: {v}" for k, v in summaries.items()))
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert summaries["verify"].startswith("streams from"), summaries
    return summaries


def as_postgres(lab, host: str, script: str):
    return lab.exec(host, ["su", "postgres", "-s", "/bin/sh", "-c", script], check=False)


@pytest.mark.timeout(1200)  # waits for the lab lock count too
def test_rebuild_after_diverged_data_and_a_wiped_disk(fresh_lab, worker):
    cluster = define_cluster(fresh_lab, "faults")
    run(cluster, "setup", timeout=600)
    secret = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@198.18.0.10:5432/postgres")
    beat = start_beat()
    writer.start()
    try:
        # The monitor's first passes set the baseline (setup itself marks the cluster healthy).
        wait_for(
            lambda: (
                NodeStatus.objects.filter(
                    node__cluster=cluster, postmaster_started__isnull=False
                ).count()
                == 2
            ),
            30,
            "the monitor's first pass",
        )
        healthy_again(cluster)

        # 1. A standby that diverged (promoted by hand, written to) and lost its WAL: pg_rewind
        #    cannot work, so Rebuild moves the data aside and copies the primary.
        standby = standby_now()
        fresh_lab.exec(
            standby,
            [
                "sh",
                "-c",
                "pkill -KILL -f '[b]in/patroni'; sleep 0.5; pkill -KILL -x postgres; true",
            ],
        )
        diverge = as_postgres(
            fresh_lab,
            standby,
            f"rm -f {DATA}/standby.signal && "
            f"{PG_BIN}/pg_ctl -D {DATA} -w -o \"-c port=5439 -c listen_addresses='' "
            f'-c unix_socket_directories=/tmp" start >/dev/null && '
            f"{PG_BIN}/psql -h /tmp -p 5439 -qc 'CREATE TABLE diverged (); CHECKPOINT;' && "
            f"{PG_BIN}/pg_ctl -D {DATA} -w stop >/dev/null && rm -f {DATA}/pg_wal/0000*",
        )
        assert diverge.returncode == 0, diverge.stderr
        summaries = rebuild(cluster, standby)
        assert summaries["rejoin"].startswith("did not rejoin"), summaries["rejoin"]
        assert "old data in" in summaries["reinitialise"], summaries["reinitialise"]
        kept = fresh_lab.exec(standby, ["sh", "-c", f"ls -d {DATA}.rebuild-*"], check=False)
        assert kept.returncode == 0 and kept.stdout.strip()
        healthy_again(cluster)

        # 2. A standby's disk wiped (packages stay, as on a reinstalled server with the same
        #    host key): Rebuild reinstalls Patroni, re-adds its etcd member and copies the data.
        standby = standby_now()
        fresh_lab.wipe(standby)
        summaries = rebuild(cluster, standby)
        assert (
            summaries["install_patroni"].startswith("installed")
            or "Patroni" in summaries["install_patroni"]
        )
        assert "etcd data was gone" in summaries["etcd_member"], summaries["etcd_member"]
        healthy_again(cluster)
    finally:
        writer.stop()
        beat.stop()
    assert NodeStatus.objects.filter(node__cluster=cluster, fenced=True).count() == 0
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    print(
        f"faults: {len(writer.acks)} writes acknowledged, {len(missing)} missing "
        "(async: a kill or cut may lose the last unreplicated ones)"
    )
