"""Setup benchmark: time from job start to a healthy lab cluster (packages already installed),
each step's time, and the bare commands (initdb + start, base backup + start) on the same lab;
then setup on fresh systemd hosts (tests/lab/systemd_lab.py) that install every package with
apt, through the lab's caching proxy (warm after its first run, as a site's mirror would be).

Run as root: `make bench-setup` (or `.venv/bin/python -m bench.setup --rounds 3`).
Needs Redis on localhost (a real Celery worker runs the job). Uses its own SQLite database.
"""

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.database import use_fresh_database  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
use_fresh_database(f"hacenter_bench_setup_{os.getpid()}")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from clusters.models import Cluster  # noqa: E402
from jobs import services  # noqa: E402
from jobs.models import Job  # noqa: E402
from tests.integration.conftest import lab_credential, make_lab_cluster  # noqa: E402
from tests.lab import Lab  # noqa: E402
from tests.lab.systemd_lab import SystemdLab  # noqa: E402
from tests.workers import start_worker  # noqa: E402

PG = "/usr/lib/postgresql/15/bin"


def start_postgres(lab: Lab, host: str, address: str, data: str) -> None:
    """pg_ctl start on a lab host, listening on its lab address, waiting until it is up."""
    options = f"-c listen_addresses={address} -c unix_socket_directories=/run/postgresql"
    log = "/var/log/postgresql/bare.log"
    lab.exec(
        host,
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            f"{PG}/pg_ctl",
            "-D",
            data,
            "-w",
            "-l",
            log,
            "-o",
            options,
            "start",
        ],
    )


def bare_commands(lab: Lab) -> float:
    """initdb + start on node1, then pg_basebackup + start on node2: the floor of any setup."""
    as_pg = ["runuser", "-u", "postgres", "--"]
    data = "/var/lib/postgresql/15/bare"
    begin = time.monotonic()
    lab.exec("node1", [*as_pg, f"{PG}/initdb", "-D", data, "--auth=trust", "-k", "-E", "UTF8"])
    lab.exec(
        "node1",
        ["sh", "-c", f"echo 'host replication all 198.18.0.0/24 trust' >> {data}/pg_hba.conf"],
    )
    start_postgres(lab, "node1", "198.18.0.11", data)
    lab.exec(
        "node2",
        [
            *as_pg,
            f"{PG}/pg_basebackup",
            "-h",
            "198.18.0.11",
            "-U",
            "postgres",
            "-D",
            data,
            "-X",
            "stream",
            "-c",
            "fast",
            "-R",
        ],
    )
    start_postgres(lab, "node2", "198.18.0.12", data)
    return time.monotonic() - begin


def run_job(cluster: Cluster, kind: str, **params) -> tuple[float, Job]:
    begin = time.monotonic()
    job = services.job_start(cluster=cluster, kind=kind, params=params)
    while True:
        job.refresh_from_db()
        if job.is_terminal:
            break
        time.sleep(0.2)
    if job.status != "succeeded":
        raise SystemExit(f"{kind} failed: {job.error}")
    return time.monotonic() - begin, job


def step_times(job: Job) -> dict[str, float]:
    steps: dict[str, float] = {}
    for step in job.steps.all():
        seconds = (step.finished - step.started).total_seconds()
        steps[step.title] = steps.get(step.title, 0.0) + seconds
    return steps


def systemd_rounds(rounds: int) -> None:
    """Setup on fresh systemd hosts, apt included: total, and the package installs' share."""
    reason = SystemdLab.preflight()
    if reason:
        print(f"\nsystemd hosts: skipped ({reason})")
        return
    lab = SystemdLab(n_db=2)
    worker = start_worker(name="bench-systemd")
    totals, installs = [], []
    try:
        for i in range(rounds):
            lab.up(fresh=True)
            Cluster.objects.all().delete()
            cluster = make_lab_cluster(lab, lab_credential(lab, name=f"sd{i}"), name=f"sd{i}")
            Cluster.objects.filter(pk=cluster.pk).update(apt_proxy=lab.apt_proxy_url)
            seconds, job = run_job(cluster, "setup")
            totals.append(seconds)
            # All nodes install at once inside the first node's step: its time is the wall time.
            installs.append(max(step_times_by_node(job, "install_packages").values()))
            print(
                f"systemd round {i + 1}: setup {seconds:.1f} s on fresh hosts, of which "
                f"{installs[-1]:.1f} s installing packages with apt on all nodes at once"
            )
            lab.down(keep_data=False)
    finally:
        worker.stop()
        lab.down(keep_data=False)
    print(
        f"\nsetup to healthy on fresh systemd hosts (apt included): median "
        f"{statistics.median(totals):.1f} s (min {min(totals):.1f}, max {max(totals):.1f}); "
        f"packages {statistics.median(installs):.1f} s of it"
    )


def step_times_by_node(job: Job, name: str) -> dict[str, float]:
    return {
        step.node.name: (step.finished - step.started).total_seconds()
        for step in job.steps.filter(name=name).select_related("node")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="netns lab rounds (0: none)")
    parser.add_argument("--systemd-rounds", type=int, default=1, help="systemd lab rounds")
    args = parser.parse_args()
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    if args.rounds:
        netns_rounds(args.rounds)
    if args.systemd_rounds:
        systemd_rounds(args.systemd_rounds)


def netns_rounds(rounds: int) -> None:
    """Setup on the network-namespace lab (packages shared with this machine), and the bare
    commands on the same hosts."""
    lab = Lab(n_db=2)
    worker = start_worker(name="bench")
    cold, warm, bares, per_step = [], [], [], {}
    try:
        for i in range(rounds):
            lab.down(keep_data=False)
            lab.up(fresh=True)
            bares.append(bare_commands(lab))
            lab.down(keep_data=False)
            lab.up(fresh=True)
            Cluster.objects.all().delete()  # its addresses are free for the next round
            cluster = make_lab_cluster(lab, lab_credential(lab, name=f"cred{i}"), name=f"b{i}")
            seconds, job = run_job(cluster, "setup")
            cold.append(seconds)
            # Again on the same servers, Patroni now installed: remove, then set up anew.
            run_job(cluster, "remove_cluster", confirm=cluster.name)
            seconds, job = run_job(cluster, "setup")
            warm.append(seconds)
            for key, value in step_times(job).items():
                per_step.setdefault(key, []).append(value)
            print(
                f"round {i + 1}: setup {cold[-1]:.1f} s on new servers, {warm[-1]:.1f} s with "
                f"Patroni installed; bare commands {bares[-1]:.1f} s"
            )
    finally:
        worker.stop()
        lab.down(keep_data=False)
    print("\nper step of the setup with Patroni installed (median, summed over nodes):")
    for key, values in per_step.items():
        print(f"  {statistics.median(values):6.2f} s  {key}")
    bare = statistics.median(bares)
    for label, values in (
        ("on new servers (installs Patroni)", cold),
        ("with packages and Patroni installed", warm),
    ):
        median = statistics.median(values)
        print(
            f"\nsetup to healthy {label}: median {median:.1f} s "
            f"(min {min(values):.1f}, max {max(values):.1f}); {median / bare:.1f}x the bare"
        )
    print(f"bare initdb + base backup + start: median {bare:.1f} s")
    print("goal: setup <= 30 s and <= 4x the bare commands")


if __name__ == "__main__":
    main()
