"""The chaos suite: every fault in `faults.FAULTS`, `HACENTER_CHAOS_ROUNDS` rounds each on an
async and on a sync cluster (5 in `make chaos`; unset, as in `make test`, each fault runs once,
on the cluster its `quick_on` names), with the monitor running and a writer through the proxy
that records every acknowledged commit and the node that took it.

After each round: the cluster is healthy again with at most one Rebuild; on sync no
acknowledged write is missing (on async the loss is counted); writes never went back to a node
after another one took them (no two writable nodes behind the proxy); every job ended; a
failover is recorded as an event with its timings; a fault that hits one of HA Center's jobs
(job_faults) also keeps its own promises (lost and resumed, or a clear failure, then one retry
finishes it without re-running finished steps). Each round's figures go to
`var/chaos/results.jsonl`; `python -m tests.chaos.report` turns them into docs/reliability.md.

`test_chaos_fast` runs the fenced fast path (issue 21) as a profile of its own: a cluster with
`fast_failover` on and a Redfish fence device (the lab BMC) on each database node; the
faults the agent must win by a fence (power-off, network cut, freeze), then the same faults
with the fence broken (the lease must win, no split), and its false positives and the
witness's partition. Each round also records the agent's decisions (read on the witness) and
whether two PostgreSQL servers were writable at once.
"""

import collections
import dataclasses
import itertools
import json
import os
import time
from pathlib import Path

import pytest

from clusters.inventory.fencing import fence_device_set
from clusters.models import Cluster, ClusterEvent
from jobs import services
from jobs.models import Job, JobStatus
from tests.chaos.fast_faults import (
    FAST_PATH_FAULTS,
    WritableWatch,
    decisions_offset,
    decisions_since,
    fast_promises_broken,
    restore_fenced,
)
from tests.chaos.faults import FAULTS, Fault, Target, hold
from tests.chaos.job_faults import broken_promises
from tests.chaos.small_disks import small_data_disks
from tests.conftest import wait_for
from tests.integration.conftest import (
    lab_credential,
    leader_name,
    make_lab_cluster,
    streaming_standby,
    wait_for_job,
)
from tests.integration.test_setup_lab import define_cluster
from tests.lab import network
from tests.lab.bmc import LabBMC
from tests.lab.core import VIRTUAL_IP
from tests.workers import start_beat
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
# Unset (as in `make test`): each fault once, on one of the two clusters (Fault.quick_on).
ROUNDS = int(os.environ.get("HACENTER_CHAOS_ROUNDS", "0"))
ONLY = [f for f in os.environ.get("HACENTER_CHAOS_FAULTS", "").split(",") if f]
RESULTS = Path(os.environ.get("HACENTER_CHAOS_RESULTS", "var/chaos/results.jsonl"))
# The fast path's profiles (HACENTER_CHAOS_PATHS narrows them, e.g. "fence_broken"): the agent
# with working fence devices, and with devices that cannot confirm an off (LabBMC.broken; the
# rounds alternate between a BMC stuck on "On" and one that answers nothing but 503).
FAST_PATHS = ("fast", "fence_broken")
PATHS = [p for p in os.environ.get("HACENTER_CHAOS_PATHS", "").split(",") if p]
# (A BMC that only refuses the reset still tells a host that is already off as Off: the
# power-off fault is then rightly fenced. These two cannot confirm anything.)
BROKEN_MODES = ("stuck_on", "silent")
BMC_PASSWORD = "chaos bmc;pass='4242'"
# The fast path's rate limit in the suite: a round (fault, failover, Rebuild, healthy again)
# takes about a minute, so every round may fence; the product's default is an hour. A round
# starts no sooner than this after the previous one's fault (the agent's intent key lives
# that long in etcd).
FAST_WINDOW_S = 30


def db_addresses(lab) -> dict[str, str]:
    """The database hosts' addresses by name, on either lab."""
    return {h.name: h.address for h in lab.db_nodes}


def run_job(cluster: Cluster, kind: str, node: str | None = None) -> Job:
    """Run a job to its end; it must succeed (the message lists every step's verdict)."""
    cluster.refresh_from_db()
    job = services.job_start(
        cluster=cluster, kind=kind, node=cluster.nodes.get(name=node) if node else None
    )
    job = wait_for_job(job, timeout=600)
    steps = [(s.name, s.node.name if s.node else "", s.summary) for s in job.steps.all()]
    assert job.status == JobStatus.SUCCEEDED, (kind, job.error, steps)
    return job


def healthy(cluster: Cluster, addresses: dict[str, str]) -> None:
    wait_for(lambda: streaming_standby(*addresses.values()), 180, "a streaming standby")
    # On a sync cluster "healthy" includes a standby Patroni names synchronous: until then it
    # promotes nobody, and a freeze would end without a failover (clusters.monitoring.health).
    wait_for(
        lambda: Cluster.objects.get(pk=cluster.pk).state == Cluster.State.HEALTHY,
        90,
        "the monitor to see the cluster healthy",
    )


def longest_gap(writer: ProxyWriter, start: float, end: float) -> float:
    """The longest time without an acknowledged write between `start` and `end`."""
    times = [start, *(a.at for a in writer.acks if start < a.at < end), end]
    return max(b - a for a, b in itertools.pairwise(times))


def one_round(cluster: Cluster, writer: ProxyWriter, fault: Fault, target: Target) -> dict:
    """Inject, hold, heal, repair with at most one Rebuild, and measure. `target` comes with
    the lab, the worker and the round's number; the rest is filled in here."""
    begun = time.monotonic()
    addresses = db_addresses(target.lab)
    primary = leader_name(*addresses.values())
    target.primary, target.standby = primary, next(n for n in addresses if n != primary)
    jobs_before = set(Job.objects.values_list("pk", flat=True))
    time.sleep(2)  # a steady stream of writes before the fault
    started = time.monotonic()
    fault.inject(target)
    hold(fault, lambda: leader_name(addresses[target.standby]) == target.standby)
    fault.heal(target)
    if fault.heal_with_setup:
        run_job(cluster, "setup")
    # The leader all members agree on (a second read could catch them disagreeing again).
    new_primary = wait_for(lambda: leader_name(*addresses.values()), 120, "a leader")
    moved = new_primary != primary
    if moved:
        run_job(cluster, "rebuild", primary)
    healthy(cluster, addresses)
    # Who leads in the end: after a fault that took etcd away, the members may first agree on
    # the leader they knew and elect another one a moment later (its old primary then rejoins
    # by itself).
    new_primary = leader_name(*addresses.values()) or new_primary
    moved = new_primary != primary
    healed = time.monotonic()
    wait_for(lambda: writer.acks[-1].at > healed, 60, "writes through the proxy after the round")
    ended = time.monotonic()
    round_acks = [a for a in writer.acks if a.at > started - 2]
    node_of = {a: n for n, a in addresses.items()}
    servers = []
    for ack in round_acks:
        if not servers or servers[-1] != ack.server:
            servers.append(ack.server)
    event = None
    if moved:
        event = wait_for(
            lambda: (
                ClusterEvent.objects.filter(
                    cluster=cluster,
                    kind="failover",
                    new_primary=new_primary,
                    downtime_s__isnull=False,
                )
                .order_by("-at")
                .first()
            ),
            60,
            "the failover event with its timings",
        )
    # The first write after the fault broke one: an acknowledgement can still land just after
    # the fault (its answer was on its way), so the count starts at the writer's first error.
    broke = next((at for at, _ in writer.errors if at > started), None)
    resumed = next((a.at for a in writer.acks if broke and a.at > broke), None)
    round_jobs = Job.objects.exclude(pk__in=jobs_before)
    unfinished = round_jobs.filter(status__in=JobStatus.active())
    missing = {a.id for a in round_acks} - writer.stored_ids()
    return {
        "fault": fault.name,
        "replication": cluster.replication,
        "outage_s": round(longest_gap(writer, started, ended), 2),
        "first_write_s": round(resumed - started, 2) if resumed else None,
        "failover": moved,
        "old_primary": primary,
        "new_primary": new_primary,
        "event_downtime_s": event.downtime_s if event else None,
        "event_lost_bytes": event.lost_bytes if event else None,
        "missing_rows": len(missing),
        "acknowledged": len(round_acks),
        "rebuilds": round_jobs.filter(kind="rebuild").count(),
        "writers": [node_of.get(s, s) for s in servers],
        "unfinished_jobs": unfinished.count(),
        "round_s": round(time.monotonic() - begun, 1),
        **(
            {"job": target.findings, "broken": broken_promises(fault.name, target.findings)}
            if fault.hits_a_job
            else {"seen": target.findings}
            if target.findings
            else {}
        ),
    }


def failed_jobs_told(last: int = 2, lines: int = 30) -> list[dict]:
    """The latest failed or unfinished jobs' steps and log tails, kept with a failed round: the
    test database, where they live, is gone once the run ends."""
    told = []
    ended_badly = [JobStatus.FAILED, JobStatus.ERRORED, JobStatus.LOST]
    failed = Job.objects.filter(status__in=[*ended_badly, *JobStatus.active()])
    for job in failed.order_by("-pk")[:last]:
        tail = job.log_lines.order_by("-seq")[:lines]
        told.append(
            {
                "job": job.pk,
                "kind": job.kind,
                "status": job.status,
                "error": job.error[:500],
                "steps": [f"{s.name} {s.status}: {s.summary}"[:300] for s in job.steps.all()],
                "log": [f"{line.host}: {line.text}"[:300] for line in reversed(tail)],
            }
        )
    return told


def node_logs(lab, lines: int = 40) -> dict[str, list[str]]:
    """The tail of every HA Center daemon log (Patroni, etcd, HAProxy) and the Patroni and
    PostgreSQL processes on every running lab host, kept with a failed round: the next test
    wipes the hosts."""
    script = (
        f'for f in /var/log/hacenter/*.log; do echo "== $f"; tail -n {lines} "$f"; done; '
        # Under systemd the daemons log to the journal.
        f"journalctl -u 'hacenter-*' -n {lines} --no-pager 2>/dev/null; "
        # Whether Patroni still runs, and in what state (a hung one logs nothing).
        'echo "== processes"; ps -eo pid,stat,etime,args | grep -E "[p]atroni|[p]ostgres:? "'
    )
    told = {}
    for host in lab.hosts:
        if lab.is_powered(host.name):
            out = lab.exec(host.name, ["sh", "-c", script], check=False)
            told[host.name] = out.stdout.splitlines()
    return told


def check(result: dict, fault: Fault) -> None:
    """The suite's promises for one round."""
    if fault.failover is not None:
        assert result["failover"] == fault.failover, result
    # Writes went to the old primary, then (after a failover) the new one; never back.
    assert len(result["writers"]) == len(set(result["writers"])) <= 2, result
    if result["replication"] == "sync":
        assert result["missing_rows"] == 0, result
    assert result["unfinished_jobs"] == 0 and result["rebuilds"] <= 1, result
    assert not result.get("broken"), result  # a job fault's own promises
    assert not fast_promises_broken(result), result  # the fast path's, on its rounds


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("replication", ["async", "sync"])
def test_chaos(fresh_lab, workers, replication):
    cluster = define_cluster(fresh_lab, f"chaos{replication[0]}", replication=replication)
    run_job(cluster, "setup")
    faults = [f for f in FAULTS if not (f.systemd or f.two_proxies or f.small_disks)]
    chaos_rounds(fresh_lab, cluster, workers, [f for f in faults if not f.fast_path])


@pytest.mark.timeout(7200)
@pytest.mark.parametrize("replication", ["async", "sync"])
def test_chaos_fast(fresh_lab, workers, replication):
    """The fenced fast path as a profile: `make chaos` runs FAST_PATH_FAULTS and the fast
    path's own faults with working fence devices, then FAST_PATH_FAULTS with broken ones.
    Not in `make test`: tests/integration/test_fastpath_lab.py runs its power-off, cable,
    witness-cut and broken-device cases there on one cluster."""
    by_name = {f.name: f for f in FAULTS}
    faults = [by_name[n] for n in FAST_PATH_FAULTS] + [f for f in FAULTS if f.fast_path]
    paths = [p for p in FAST_PATHS if p in PATHS or not PATHS]
    if not ROUNDS:
        pytest.skip("chaos only: `make test` runs tests/integration/test_fastpath_lab.py")
    with LabBMC(fresh_lab, network.BRIDGE_ADDRESS, password=BMC_PASSWORD) as bmc:
        cluster = define_cluster(
            fresh_lab,
            f"chaosf{replication[0]}",
            replication=replication,
            fast_failover=True,
            fast_failover_window_s=FAST_WINDOW_S,
        )
        for node in cluster.nodes.filter(kind="database"):
            fence_device_set(node=node, data=bmc.fence_device(node.name, BMC_PASSWORD))
        run_job(cluster, "setup")  # installs fence-agents on the witness
        for node in cluster.nodes.filter(kind="database"):
            run_job(cluster, "fence_test", node.name)
        job = run_job(cluster, "setup")  # arms the agent with the tested devices
        armed = job.steps.get(name="fastpath", node__kind="proxy").summary
        assert "fence devices: node1, node2" in armed, armed
        chaos_rounds(fresh_lab, cluster, workers, faults, paths=paths, bmc=bmc)


def fast_round(
    cluster: Cluster, writer: ProxyWriter, fault: Fault, target: Target, path: str
) -> dict:
    """One round with the fast-path agent armed: as `one_round`, the hosts a fence left off
    brought back before the Rebuild (as the operator does), and what the agent decided and
    whether two servers were writable at once recorded with the round."""
    lab = target.lab
    names = list(db_addresses(lab))
    offset = decisions_offset(lab, cluster.name)
    booted = {name: lab.init_pid(name) for name in names}

    def heal(t: Target) -> None:
        fault.heal(t)
        t.findings["restored"] = restore_fenced(t.lab, names)

    watch = WritableWatch(lab, names)
    watch.start()
    try:
        result = one_round(cluster, writer, dataclasses.replace(fault, heal=heal), target)
    finally:
        two_writable = watch.stop()
    decisions = decisions_since(lab, cluster.name, offset)
    if any(lab.init_pid(name) != pid for name, pid in booted.items()):
        # A host that was powered off runs its fast-path peer again once setup has run (a
        # systemd server's enabled unit would start it at boot; the netns lab has none).
        run_job(cluster, "setup")
        healthy(cluster, db_addresses(lab))
    acted = next((d for d in decisions if d["outcome"] == "acted"), None)
    return {
        **result,
        "decided": dict(collections.Counter(d["outcome"] for d in decisions)),
        "fast_timings_ms": acted["timings_ms"] if acted else None,
        "decisions": decisions[:6],
        "two_writable": two_writable,
        "two_writable_hosts": watch.two_writable[:3],
    }


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("replication", ["async", "sync"])
def test_chaos_disk(fresh_lab, workers, replication):
    """The faults that fill a disk, on database hosts with small data disks of their own."""
    faults = [f for f in FAULTS if f.small_disks and (f.name in ONLY or not ONLY)]
    if not ROUNDS or not faults:
        pytest.skip("only `make chaos` runs the disk faults")
    with small_data_disks(fresh_lab, [h.name for h in fresh_lab.db_nodes]):
        cluster = define_cluster(fresh_lab, f"chaosd{replication[0]}", replication=replication)
        run_job(cluster, "setup")
        chaos_rounds(fresh_lab, cluster, workers, faults)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("replication", ["async", "sync"])
def test_chaos_vip(fresh_lab, workers, replication):
    """The faults of a cluster with two proxies and a floating address; the writer on it."""
    faults = [f for f in FAULTS if f.two_proxies and (f.name in ONLY or not ONLY)]
    if not ROUNDS or not faults:
        pytest.skip("only `make chaos` runs the two-proxy faults")
    proxy2 = fresh_lab.add_second_proxy()
    cluster = make_lab_cluster(
        fresh_lab,
        lab_credential(fresh_lab),
        name=f"chaosv{replication[0]}",
        hosts=[*fresh_lab.hosts, proxy2],
        virtual_ip=f"{VIRTUAL_IP}/24",
        replication=replication,
    )
    run_job(cluster, "setup")
    chaos_rounds(fresh_lab, cluster, workers, faults, address=VIRTUAL_IP)


def chaos_rounds(
    lab,
    cluster: Cluster,
    workers,
    faults: list[Fault],
    address: str | None = None,
    paths: list[str] | tuple[str, ...] = ("lease",),
    bmc: LabBMC | None = None,
) -> None:
    """On a cluster that is set up: each fault's rounds with the monitor and a writer running
    (through the proxy, or `address`), every round recorded in RESULTS and checked against the
    suite's promises. With the fast path's `paths` (and the `bmc` of its fence devices): the
    rounds of each path in turn; the broken fence only under FAST_PATH_FAULTS."""
    secret = cluster.secrets.get(name="superuser").value
    host = address or lab.proxy.address
    writer = ProxyWriter(f"postgresql://postgres:{secret}@{host}:5432/postgres")
    beat = start_beat()
    writer.start()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    replication = cluster.replication
    try:
        healthy(cluster, db_addresses(lab))
        faults = [f for f in faults if (f.name in ONLY if ONLY else True)]
        if not ROUNDS:
            faults = [f for f in faults if f.quick_on == replication and not f.chaos_only]
        plan = [
            (path, fault)
            for path in paths
            for fault in faults
            if path != "fence_broken" or fault.name in FAST_PATH_FAULTS
        ]
        last_fault = -FAST_WINDOW_S
        for path, fault in plan:
            for i in range(ROUNDS or 1):
                target = Target(lab, cluster.name, "", "", cluster, workers, i + 1)
                labels = {"path": path} if path != "lease" else {}
                if path == "fence_broken":
                    labels["bmc"] = BROKEN_MODES[i % len(BROKEN_MODES)]
                if bmc is not None:
                    bmc.break_as(labels.get("bmc", ""))
                    # The agent's intent key (its rate limit) from the last round is gone.
                    time.sleep(max(0.0, last_fault + FAST_WINDOW_S + 5 - time.monotonic()))
                    last_fault = time.monotonic()
                try:
                    if path == "lease":
                        result = one_round(cluster, writer, fault, target)
                    else:
                        result = fast_round(cluster, writer, fault, target, path)
                    result = {**result, **labels, "round": i + 1}
                # BaseException: a wait_for deadline is pytest's Failed, which is not an Exception.
                except BaseException as exc:  # recorded as a failed round, then the test fails
                    result = {"fault": fault.name, "replication": replication, "round": i + 1}
                    result.update(labels)
                    result["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
                    if fault.hits_a_job:
                        result["job"] = target.findings
                    result["failed_jobs"] = failed_jobs_told()
                    result["node_logs"] = node_logs(lab)
                    raise
                finally:
                    print(json.dumps(result))
                    with RESULTS.open("a") as out:
                        out.write(json.dumps(result) + "\n")
                check(result, fault)
    finally:
        writer.stop()
        beat.stop()
