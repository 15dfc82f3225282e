"""Failover benchmark on the lab: time from a fault to the first write acknowledged through the
proxy, per fault and failover profile; switchover write downtime; rebuild time by rejoin
(pg_rewind) and by full copy at the pgbench scales given, each step timed; and a loaded run
without faults that must see no failover.

A writer (tests/writer.py) inserts through HAProxy every 50 ms and records every acknowledged
commit with the node that answered. For each round: find the primary, inject the fault, wait
for the first acknowledged write after the first failed one, heal the host, and run the Rebuild
job if the old primary lost its role. Each profile gets a fresh lab and a fresh cluster.

Two paths to a failover (`--paths`): `lease`, Patroni's own (a standby takes over once the
leader key's lease expires), and `fast`, the fenced fast path of issue 21 (`fast_failover` on,
a Redfish fence device on each database node through the lab's BMC, tests/lab/bmc.py: the agent
on the proxy powers the dead primary off and hands the leader key over at once). Each path
gets its own fresh cluster and the same faults; the table puts them side by side, and each
fast-path round prints what the agent decided.

Run as root with Redis on localhost:
  .venv/bin/python -m bench.failover --rounds 5                      # faults, both profiles
  .venv/bin/python -m bench.failover --faults none --switchovers 5   # switchover only
  .venv/bin/python -m bench.failover --faults none --rebuild-scales 10,100,300
  .venv/bin/python -m bench.failover --faults none --rebuild-scales 300 \
      --rebuild-parameters wal_recycle=off   # pg_rewind copies the source's whole pg_wal
  .venv/bin/python -m bench.failover --faults none --profiles balanced --soak 600
  .venv/bin/python -m bench.failover --profiles balanced --paths lease,fast \
      --faults poweroff,netcut,freeze --rounds 5                     # lease and fast path
"""

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.database import use_fresh_database  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
use_fresh_database(f"hacenter_bench_failover_{os.getpid()}")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from clusters.inventory.fencing import fence_device_set  # noqa: E402
from clusters.models import Cluster, ClusterEvent  # noqa: E402
from jobs import patroni_api, services  # noqa: E402
from jobs.models import Job  # noqa: E402
from tests.chaos.fast_faults import (  # noqa: E402
    decisions_offset,
    decisions_since,
    restore_fenced,
)
from tests.integration.conftest import (  # noqa: E402
    lab_credential,
    leader_name,
    make_lab_cluster,
    patroni_at,
    streaming_standby,
)
from tests.lab import Lab, network  # noqa: E402
from tests.lab.bmc import LabBMC  # noqa: E402
from tests.lab_fixtures import lab_lock  # noqa: E402
from tests.workers import start_worker  # noqa: E402
from tests.writer import ProxyWriter  # noqa: E402

ADDRESS = {"node1": "198.18.0.11", "node2": "198.18.0.12"}
DATA = "/var/lib/postgresql/15/bench"
PG = "/usr/lib/postgresql/15/bin"
PATRONI_LOG = "/var/log/hacenter/patroni-bench.log"  # process mode: the lab has no systemd
BMC_PASSWORD = "bench bmc;pass='4242'"
# The fast path's rate limit here: a round takes longer, so every round may fence (the
# product's default is an hour); a round waits until this has passed since the last fault.
FAST_WINDOW_S = 30


def leader() -> str | None:
    return leader_name(*ADDRESS.values())


def standby_streams() -> bool:
    return streaming_standby(*ADDRESS.values())


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"gave up waiting {timeout:g} s for {what}")


def run_job(cluster: Cluster, kind: str, node: str | None = None, **params) -> tuple[float, Job]:
    cluster.refresh_from_db()
    begin = time.monotonic()
    job = services.job_start(
        cluster=cluster,
        kind=kind,
        node=cluster.nodes.get(name=node) if node else None,
        params=params,
    )
    while not job.is_terminal:
        time.sleep(0.2)
        job.refresh_from_db()
    if job.status != "succeeded":
        steps = "; ".join(f"{s.name}: {s.summary}" for s in job.steps.all())
        raise SystemExit(f"{kind} failed: {job.error} ({steps})")
    return time.monotonic() - begin, job


def kill_postmaster(lab: Lab, host: str) -> None:
    lab.exec(host, ["sh", "-c", f"kill -KILL $(head -n 1 {DATA}/postmaster.pid)"])


def freeze(lab: Lab, host: str) -> None:
    """SIGSTOP of PostgreSQL and Patroni (a hung host); thawed by `thaw` after the failover."""
    lab.exec(host, ["pkill", "-STOP", "-u", "postgres"])


def thaw(lab: Lab, host: str) -> None:
    if lab.is_powered(host):  # the fast path's fence may have powered it off
        lab.exec(host, ["pkill", "-CONT", "-u", "postgres"])


FAULTS = {
    "kill": (kill_postmaster, lambda lab, host: None),
    "poweroff": (Lab.power_off, Lab.power_on),
    "netcut": (Lab.cut_network, Lab.restore_network),
    "freeze": (freeze, thaw),
}


def time_to_write(writer: ProxyWriter, fault: float, timeout: float = 180) -> float:
    """Seconds from the fault to the first acknowledged write after the first failed one."""
    failed = wait(
        lambda: next((t for t, _ in writer.errors if t > fault), None), 30, "a failed write"
    )
    ack = wait(
        lambda: next((a for a in writer.acks if a.at > failed), None), timeout, "a write again"
    )
    return ack.at - fault


def new_cluster(lab: Lab, profile: str, bmc: LabBMC | None = None) -> tuple[Cluster, ProxyWriter]:
    """A fresh lab and cluster with the writer running; with `bmc` (started here: it serves on
    the lab's bridge, which exists once the lab is up), the fast path armed (a tested fence
    device on each database node through it)."""
    lab.down(keep_data=False)
    lab.up(fresh=True)
    if bmc is not None:
        bmc.start()
    Cluster.objects.all().delete()
    credential = lab_credential(lab, name=f"cred-{time.monotonic_ns()}")  # names are unique
    cluster = make_lab_cluster(lab, credential, name="bench")
    Cluster.objects.filter(pk=cluster.pk).update(failover_profile=profile)
    if bmc is not None:
        Cluster.objects.filter(pk=cluster.pk).update(
            fast_failover=True, fast_failover_window_s=FAST_WINDOW_S
        )
        for node in cluster.nodes.filter(kind="database"):
            fence_device_set(node=node, data=bmc.fence_device(node.name, BMC_PASSWORD))
        run_job(cluster, "setup")  # installs fence-agents on the witness
        for node in cluster.nodes.filter(kind="database"):
            run_job(cluster, "fence_test", node=node.name)
    run_job(cluster, "setup")  # with `bmc`: arms the agent with the tested devices
    secret = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@198.18.0.10:5432/postgres")
    writer.start()
    wait(lambda: len(writer.acks) > 10, 30, "the writer")
    return cluster, writer


def heal(lab: Lab, cluster: Cluster, host: str, restore) -> str:
    """Bring the host back (and what a fence left off: the cable the lab BMC pulls with the
    power); rebuild it if it lost the primary role. What the rebuild did."""
    booted = lab.init_pid(host)
    restore(lab, host)
    restore_fenced(lab, [host])
    wait(leader, 120, "a leader")
    done = "restarted in place"
    if leader() != host:
        Cluster.objects.filter(pk=cluster.pk).update(state="degraded")
        seconds, job = run_job(cluster, "rebuild", node=host)
        rejoin = job.steps.get(name="rejoin").summary
        done = f"rebuilt in {seconds:.1f} s ({rejoin.split(':')[0]})"
    if cluster.fast_failover and lab.init_pid(host) != booted:
        # A host that was powered off runs its fast-path peer again once setup has run (a
        # systemd server's enabled unit would start it at boot; the netns lab has none).
        run_job(cluster, "setup")
    wait(standby_streams, 180, "a streaming standby")
    return done


def faults(
    lab: Lab, profile: str, names: list[str], rounds: int, path: str = "lease"
) -> dict[str, list[float]]:
    """Each fault's rounds on a fresh cluster: the first write's time after each. On the fast
    path the agent is armed with the lab BMC's fence devices, and each round also prints the
    agent's decisions."""
    bmc = LabBMC(lab, network.BRIDGE_ADDRESS, password=BMC_PASSWORD) if path == "fast" else None
    try:
        return fault_rounds(lab, profile, names, rounds, bmc)
    finally:
        if bmc is not None:
            bmc.stop()


def fault_rounds(
    lab: Lab, profile: str, names: list[str], rounds: int, bmc: LabBMC | None
) -> dict[str, list[float]]:
    cluster, writer = new_cluster(lab, profile, bmc)
    path = "fast" if bmc else "lease"
    results: dict[str, list[float]] = {}
    last_fault = -FAST_WINDOW_S
    try:
        for name in names:
            inject, restore = FAULTS[name]
            for i in range(rounds):
                host = wait(leader, 60, "a leader")
                time.sleep(3)  # let the writer settle on the current primary
                if bmc:  # the agent's rate limit from the last round has passed
                    time.sleep(max(0.0, last_fault + FAST_WINDOW_S + 5 - time.monotonic()))
                    offset = decisions_offset(lab, cluster.name)
                fault = last_fault = time.monotonic()
                inject(lab, host)
                seconds = time_to_write(writer, fault)
                results.setdefault(name, []).append(seconds)
                outcome = heal(lab, cluster, host, restore)
                if bmc:
                    outcome += "; agent: " + decided(decisions_since(lab, cluster.name, offset))
                print(
                    f"  {profile} {path} {name} {i + 1}: first write after {seconds:.1f} s; "
                    f"{outcome}"
                )
    finally:
        writer.stop()
    missing = len({a.id for a in writer.acks} - writer.stored_ids())
    print(f"  {profile} {path}: {len(writer.acks)} writes acknowledged, {missing} missing (async)")
    return results


def decided(decisions: list[dict]) -> str:
    """The agent's decisions of a round in a few words: each outcome, with the acted one's
    timings (detection, fence, handover)."""
    if not decisions:
        return "no decision"
    said = []
    for d in decisions:
        timings = ", ".join(f"{k} {v / 1000:.1f} s" for k, v in d["timings_ms"].items())
        said.append(f"{d['outcome']} ({timings})" if d["outcome"] == "acted" else d["outcome"])
    return ", ".join(said)


def switchovers(lab: Lab, rounds: int) -> list[float]:
    cluster, writer = new_cluster(lab, "balanced")
    downtimes = []
    try:
        for _ in range(rounds):
            run_job(cluster, "switchover")
            event = ClusterEvent.objects.filter(kind="switchover").order_by("-at").first()
            downtimes.append(event.downtime_s)
            print(f"  switchover to {event.new_primary}: writes stopped {event.downtime_s:.2f} s")
            wait(standby_streams, 120, "a streaming standby")
    finally:
        writer.stop()
    return downtimes


def pgbench(secret: str, *args: str) -> None:
    env = {**os.environ, "PGPASSWORD": secret}
    base = ["-h", "198.18.0.10", "-p", "5432", "-U", "postgres", "postgres"]
    subprocess.run([f"{PG}/pgbench", *args, *base], env=env, check=True, capture_output=True)


def psql_as_superuser(secret: str, sql: str) -> None:
    env = {**os.environ, "PGPASSWORD": secret}
    command = [f"{PG}/psql", "-h", "198.18.0.10", "-U", "postgres", "-d", "postgres", "-c", sql]
    subprocess.run(command, env=env, check=True, capture_output=True)


def pgbench_ok(secret: str, *args: str) -> bool:
    try:
        pgbench(secret, *args)
    except subprocess.CalledProcessError:
        return False
    return True


def rebuilds(lab: Lab, scales: list[int], parameters: dict[str, str]) -> dict[str, float]:
    """At each pgbench scale: power off the primary, fail over, power it on, and time Rebuild
    (rejoin by pg_rewind); then time Rebuild with a full copy of the same node. `parameters`
    (PostgreSQL settings, say wal_recycle=off) are set first with the change_parameters job,
    as an operator would."""
    results = {}
    for scale in scales:
        cluster, writer = new_cluster(lab, "balanced")
        writer.stop()
        if parameters:
            run_job(cluster, "change_parameters", parameters=parameters)
            print(f"  PostgreSQL parameters set: {parameters}")
        secret = cluster.secrets.get(name="superuser").value
        started = time.monotonic()
        pgbench(secret, "-i", "-q", "-s", str(scale))
        print(f"  pgbench scale {scale}: loaded in {time.monotonic() - started:.0f} s")
        wait(standby_streams, 300, "the standby to catch up")
        # As a checkpoint would have within minutes of the load: the rejoin then times the
        # rewind, not the crash recovery of a whole bulk load (up to max_wal_size of WAL).
        psql_as_superuser(secret, "CHECKPOINT")
        host = leader()
        lab.power_off(host)
        wait(lambda old=host: leader() not in (None, old), 120, "the failover")
        # The new primary moves on, once HAProxy routes writes to it.
        wait(lambda s=secret: pgbench_ok(s, "-T", "10", "-c", "2"), 90, "pgbench on the new one")
        # pg_rewind (PostgreSQL 15) copies the source's whole pg_wal: how much that is.
        wal = wal_bytes(lab, leader())
        lab.power_on(host)
        Cluster.objects.filter(pk=cluster.pk).update(state="degraded")
        seconds, job = run_job(cluster, "rebuild", node=host)
        step = job.steps.get(name="rejoin")
        rewind = pg_rewind_seconds(lab, host)
        results[f"rejoin, scale {scale}"] = seconds
        results[f"  of which the rejoin step, scale {scale}"] = step_seconds(step)
        results[f"  of which pg_rewind itself, scale {scale}"] = rewind
        print(
            f"  rejoin at scale {scale}: {seconds:.1f} s (step {step_seconds(step):.1f} s, "
            f"pg_rewind {rewind:.1f} s; the new primary's pg_wal {wal // 1024**2} MB; "
            f"{load()}); {step.summary}"
        )
        print(f"    steps: {step_breakdown(job)}")
        if os.environ.get("HACENTER_BENCH_JOB_LOG"):
            print_job_log(job)
        seconds, job = run_job(cluster, "rebuild", node=host, full_copy=True)
        step = job.steps.get(name="reinitialise")
        results[f"full copy, scale {scale}"] = seconds
        results[f"  of which the copy step, scale {scale}"] = step_seconds(step)
        print(
            f"  full copy at scale {scale}: {seconds:.1f} s (step {step_seconds(step):.1f} s; "
            f"{load()}); {step.summary}"
        )
        print(f"    steps: {step_breakdown(job)}")
    return results


def load() -> str:
    """This machine's load average over the last minute, against its CPUs: the lab's hosts
    share them with whatever else runs, and a busy machine stretches every figure."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def wal_bytes(lab: Lab, host: str) -> int:
    """The size of `host`'s pg_wal directory."""
    done = lab.exec(host, ["du", "-sb", f"{DATA}/pg_wal"])
    return int(done.stdout.split()[0])


def pg_rewind_seconds(lab: Lab, host: str) -> float:
    """How long the last pg_rewind took on `host`, by Patroni's log (its start and exit lines);
    NaN when the log shows none (Patroni rejoined without a rewind)."""
    log = lab.exec(host, ["sh", "-c", f"grep -a pg_rewind {PATRONI_LOG} || true"]).stdout
    begun = [line for line in log.splitlines() if "running pg_rewind from dbname" in line]
    ended = [line for line in log.splitlines() if "pg_rewind exit code" in line]
    if not begun or not ended:
        return float("nan")
    stamp = "%Y-%m-%d %H:%M:%S,%f"
    first = datetime.strptime(begun[-1][:23], stamp)
    return (datetime.strptime(ended[-1][:23], stamp) - first).total_seconds()


def step_seconds(step) -> float:
    return (step.finished - step.started).total_seconds()


def print_job_log(job: Job) -> None:
    """The job's log lines, each with its second since the job started: what happens inside
    a step (set HACENTER_BENCH_JOB_LOG=1)."""
    for line in job.log_lines.all():
        offset = (line.ts - job.started).total_seconds()
        print(f"      {offset:6.2f} [{line.host}] {line.text[:150]}")


def step_breakdown(job: Job) -> str:
    """Each step's duration, in order, and the time outside every step (queueing, the
    worker's own bookkeeping between steps): where a job's time goes."""
    steps = [s for s in job.steps.order_by("position") if s.started and s.finished]
    parts = [f"queued {(job.started - job.created).total_seconds():.1f}"] if job.started else []
    parts += [f"{s.name} {step_seconds(s):.1f}" for s in steps]
    if steps and job.started and job.finished:
        inside = sum(step_seconds(s) for s in steps)
        parts.append(f"outside steps {(job.finished - job.started).total_seconds() - inside:.1f}")
    return ", ".join(parts)


def history_length(node: str) -> int:
    """Entries in Patroni's /history: every promotion adds one (asked as the workers ask,
    over https once the node speaks TLS)."""
    return len(patroni_api.history(patroni_at(ADDRESS[node]), timeout=3))


def soak(lab: Lab, seconds: int) -> None:
    cluster, writer = new_cluster(lab, "balanced")
    writer.stop()
    secret = cluster.secrets.get(name="superuser").value
    pgbench(secret, "-i", "-q", "-s", "10")
    before, promotions = leader(), history_length(leader())
    pgbench(secret, "-T", str(seconds), "-c", "4", "-j", "2")
    after = leader()
    more = history_length(after) - promotions
    verdict = "no failover" if not more and before == after else "FAILOVER"
    print(
        f"  {seconds} s of pgbench (4 clients, scale 10) with balanced: leader {before} -> "
        f"{after}, {more} promotions: {verdict}"
    )


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--faults", default="kill,poweroff,netcut", help="or none")
    parser.add_argument("--profiles", default="balanced,defaults")
    parser.add_argument(
        "--paths", default="lease", help="lease, fast (the fenced fast path), or both: lease,fast"
    )
    parser.add_argument("--switchovers", type=int, default=0)
    parser.add_argument("--rebuild-scales", default="")
    parser.add_argument(
        "--rebuild-parameters",
        default="",
        help="PostgreSQL settings for the rebuild runs, name=value,... (say wal_recycle=off)",
    )
    parser.add_argument("--soak", type=int, default=0, help="seconds of load without faults")
    args = parser.parse_args()
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    lab = Lab(n_db=2)
    names = [] if args.faults == "none" else args.faults.split(",")
    paths = args.paths.split(",")
    if set(paths) - {"lease", "fast"}:
        parser.error("--paths: lease, fast, or lease,fast")
    table: dict[tuple[str, str, str], list[float]] = {}
    with lab_lock():
        worker = start_worker(name="bench-failover")
        try:
            for profile in args.profiles.split(",") if names else []:
                for path in paths:
                    for name, values in faults(lab, profile, names, args.rounds, path).items():
                        table[(name, profile, path)] = values
            downtimes = switchovers(lab, args.switchovers) if args.switchovers else []
            scales = [int(s) for s in args.rebuild_scales.split(",") if s]
            parameters = dict(p.split("=", 1) for p in args.rebuild_parameters.split(",") if p)
            rebuild_times = rebuilds(lab, scales, parameters) if scales else {}
            if args.soak:
                soak(lab, args.soak)
        finally:
            worker.stop()
            lab.down(keep_data=False)
    if table:
        print("\nfault -> first write through the proxy (s), each path beside the other")
        print("| fault | profile | path | rounds | p50 | p95 | min | max |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, profile, path in sorted(table, key=lambda k: (names.index(k[0]), k[1:])):
            values = table[(name, profile, path)]
            print(
                f"| {name} | {profile} | {path} | {len(values)} | "
                f"{statistics.median(values):.1f} | {p(values, 0.95):.1f} | {min(values):.1f} | "
                f"{max(values):.1f} |"
            )
    if downtimes:
        print(
            f"\nswitchover write downtime: median {statistics.median(downtimes):.2f} s, "
            f"max {max(downtimes):.2f} s over {len(downtimes)} (goal <= 3 s)"
        )
    for label, seconds in rebuild_times.items():
        print(f"rebuild, {label}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
