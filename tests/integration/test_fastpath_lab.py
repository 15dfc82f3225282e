"""The fenced fast path on the netns lab (issue 21, docs/fast-failover.md): a sync cluster whose
database nodes have redfish fence devices on the lab's BMC, fast failover on, a writer through
HAProxy. The primary loses power: the agent on the witness fences it through the BMC and hands
the leader key to the synchronous standby within seconds, with no acknowledged row lost and
never two writable nodes; again with its cable cut too. The witness cut off alone fences
nothing. Then the BMC cannot confirm (it refuses the password): the agent declines, and
Patroni's lease fails over as it always did, again without a split. Last, the console reads
the agent's decisions into events."""

import json
import time

import pytest

from clusters.inventory.fencing import fence_device_set
from clusters.models import Cluster, ClusterEvent
from clusters.monitoring.fastpath_decisions import fastpath_decisions_read_all
from jobs import services
from jobs.models import JobStatus
from tests.chaos.test_chaos import db_addresses, run_job
from tests.conftest import wait_for
from tests.integration.conftest import any_member, job_story, leader_name, wait_for_job
from tests.integration.test_setup_lab import define_cluster
from tests.lab import network
from tests.lab.bmc import LabBMC
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "bmc fast=path;'pass 7373"
SCOPE = "fastc"
DECISIONS = f"/var/lib/hacenter/fastpath/{SCOPE}.jsonl"
# Short enough that the second case is not refused by the rate limit (the first case's
# rebuild takes longer than this); the default is an hour.
WINDOW_S = 15


def decisions(lab) -> list[dict]:
    """The agent's decisions file on the witness (the proxy)."""
    out = lab.exec(lab.proxy.name, ["sh", "-c", f"cat {DECISIONS} 2>/dev/null || true"])
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def sync_standby_named(addresses: dict[str, str]) -> bool:
    return any_member(tuple(addresses.values()), lambda m: m.get("role") == "sync_standby")


def fence_tests_pass(cluster: Cluster) -> None:
    for node in cluster.nodes.filter(kind="database"):
        job = wait_for_job(services.job_start(cluster=cluster, kind="fence_test", node=node))
        assert job.status == JobStatus.SUCCEEDED, job_story(job)


def power_off_round(
    lab, cluster: Cluster, writer: ProxyWriter, bmc: LabBMC, *, cable: bool = False
) -> dict:
    """Power the primary off (as the chaos suite's poweroff fault does; with ``cable`` its
    link goes down too, so nothing answers at all); wait for a new leader and writes through
    the proxy again; the round's figures."""
    addresses = db_addresses(lab)
    primary = wait_for(lambda: leader_name(*addresses.values()), 60, "a leader")
    standby = next(n for n in addresses if n != primary)
    wait_for(lambda: sync_standby_named(addresses), 90, "a synchronous standby")
    seen_before = len(decisions(lab))
    bmc_seen = len(bmc.requests)
    time.sleep(3)  # a steady stream of writes before the fault
    started = time.monotonic()
    if cable:
        lab.cut_network(primary)
    lab.power_off(primary)
    wait_for(lambda: leader_name(addresses[standby]) == standby, 90, f"{standby} to lead")
    wait_for(
        lambda: (
            writer.acks
            and writer.acks[-1].at > started + 0.5
            and writer.acks[-1].server == addresses[standby]
        ),
        90,
        "writes on the new primary",
    )
    broke = next((at for at, _ in writer.errors if at > started), None)
    resumed = next((a.at for a in writer.acks if broke and a.at > broke), None)
    new = wait_for(lambda: decisions(lab)[seen_before:], 30, "the agent's decision")
    return {
        "started": started,
        "bmc_seen": bmc_seen,
        "old_primary": primary,
        "new_primary": standby,
        "first_write_s": round(resumed - started, 2) if resumed else None,
        "decisions": new,
    }


def acted_as_promised(lab, bmc: LabBMC, writer: ProxyWriter, fast: dict) -> None:
    """The agent fenced the old primary through the BMC and handed over to the standby;
    nothing lost, no split."""
    acted = fast["decisions"][0]
    assert acted["outcome"] == "acted", fast
    assert (acted["primary"], acted["candidate"]) == (fast["old_primary"], fast["new_primary"])
    assert "powered off" in acted["sentence"], acted
    assert set(acted["timings_ms"]) == {"detect", "fence", "handover", "total"}
    # The agent asked the BMC (fence_redfish skips the reset of a system already off) and the
    # device confirmed it off.
    asked = bmc.requests[fast["bmc_seen"] :]
    system = bmc.systems_uri(fast["old_primary"])
    assert any(path == system for _, path, _ in asked), bmc.requests
    assert not lab.is_powered(fast["old_primary"])
    no_loss_no_split(writer, fast["started"])


def rejoin(lab, cluster: Cluster, node: str) -> None:
    """The old primary back as a standby: powered on by the operator and rebuilt; setup again
    restarts its peer (a systemd server's enabled unit would at boot)."""
    lab.power_on(node)
    if lab.network_is_cut(node):
        lab.restore_network(node)
    run_job(cluster, "rebuild", node)
    run_job(cluster, "setup")


def no_loss_no_split(writer: ProxyWriter, since: float) -> None:
    """Every acknowledged id is stored; within the round, writes never went back to a node
    once another took them (two writable nodes behind the proxy would interleave)."""
    order: list[str] = []
    for ack in writer.acks:
        if ack.at > since - 3 and (not order or order[-1] != ack.server):
            order.append(ack.server)
    assert len(order) == len(set(order)) <= 2, order
    acked = {a.id for a in writer.acks}
    assert acked and not acked - writer.stored_ids(), "acknowledged rows lost"


@pytest.mark.timeout(1800)
def test_fenced_fast_failover_then_a_device_that_cannot_confirm(fresh_lab, worker):
    lab = fresh_lab
    with LabBMC(lab, network.BRIDGE_ADDRESS, password=PASSWORD) as bmc:
        cluster = define_cluster(
            lab, SCOPE, replication="sync", fast_failover=True, fast_failover_window_s=WINDOW_S
        )
        for node in cluster.nodes.filter(kind="database"):
            fence_device_set(node=node, data=bmc.fence_device(node.name, PASSWORD))
        run_job(cluster, "setup")  # installs fence-agents on the witness
        fence_tests_pass(cluster)
        job = run_job(cluster, "setup")  # arms the agent with the tested devices
        armed = job.steps.get(name="fastpath", node__kind="proxy").summary
        assert "fence devices: node1, node2" in armed, armed
        # The secret is in the 0600 file only: never on a process's command line.
        ps = lab.exec(lab.proxy.name, ["ps", "-eo", "args"]).stdout
        assert "fastpath.py" in ps and PASSWORD not in ps
        mode = lab.exec(
            lab.proxy.name, ["stat", "-c", "%a %U", f"/etc/hacenter/fastpath-{SCOPE}.json"]
        )
        assert mode.stdout.split() == ["600", "root"]

        secret = cluster.secrets.get(name="superuser").value
        writer = ProxyWriter(f"postgresql://postgres:{secret}@{lab.proxy.address}:5432/postgres")
        writer.start()
        try:
            # 1. The fast path after the chaos suite's power-off (the host's processes die;
            # its kernel, still on the wire, refuses connections).
            fast = power_off_round(lab, cluster, writer, bmc)
            print("fast path, power-off:", json.dumps(fast))
            acted_as_promised(lab, bmc, writer, fast)
            rejoin(lab, cluster, fast["old_primary"])

            # 2. A server's real power-off: its cable goes dead with it, nothing answers.
            fast = power_off_round(lab, cluster, writer, bmc, cable=True)
            print("fast path, power-off with the cable:", json.dumps(fast))
            acted_as_promised(lab, bmc, writer, fast)
            rejoin(lab, cluster, fast["old_primary"])

            # 3. The witness cut off alone: nothing is fenced, the primary keeps leading.
            witness_cut_alone(lab, bmc)

            # 4. The BMC refuses the password: the device cannot confirm, the lease decides.
            bmc.password = "not-the-password-any-more"
            lease = power_off_round(lab, cluster, writer, bmc)
            print("device cannot confirm:", json.dumps(lease))
            declined = lease["decisions"][0]
            assert declined["outcome"] == "declined", lease
            assert "not fenced for certain" in declined["sentence"], declined
            assert len(lease["decisions"]) == 1, lease  # nothing acted after it
            no_loss_no_split(writer, lease["started"])
        finally:
            writer.stop()
        console_reads_the_decisions(lab, cluster)


def console_reads_the_decisions(lab, cluster: Cluster) -> None:
    """Beat's read of the witness's file over SSH: each decision one fast_failover event,
    once, and counted in /metrics."""
    written = [d["outcome"] for d in decisions(lab)]
    assert fastpath_decisions_read_all() == len(written)
    assert fastpath_decisions_read_all() == 0  # read again: nothing new
    events = ClusterEvent.objects.filter(cluster=cluster, kind="fast_failover").order_by("at")
    assert [e.details["outcome"] for e in events] == written
    acted = events.filter(details__outcome="acted").first()
    assert acted.old_primary and acted.new_primary and acted.severity == "warning"


def witness_cut_alone(lab, bmc: LabBMC) -> None:
    """The witness loses its cable: it sees the primary dead, but neither the peer nor etcd's
    majority is reachable, so nothing is fenced and the primary keeps leading."""
    addresses = db_addresses(lab)
    primary = wait_for(lambda: leader_name(*addresses.values()), 60, "a leader")
    resets_before = [r for r in bmc.requests if r[0] == "POST"]
    decided_before = len(decisions(lab))
    lab.cut_network(lab.proxy.name)
    try:
        time.sleep(10)  # the agent's misses, then its (declined) decision
    finally:
        lab.restore_network(lab.proxy.name)
    seen = decisions(lab)[decided_before:]
    print("witness cut off:", json.dumps(seen))
    assert seen and {d["outcome"] for d in seen} == {"declined"}, seen
    assert [r for r in bmc.requests if r[0] == "POST"] == resets_before  # no power-off
    assert all(lab.is_powered(n) for n in addresses)
    assert wait_for(lambda: leader_name(*addresses.values()), 60, "a leader") == primary
