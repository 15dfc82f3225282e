"""The chaos suite's faults: each breaks one thing in a running lab cluster, then heals it.

A fault knows whether it must move the primary (`failover`: True, False, or None for "either
is right", as a killed postmaster that Patroni restarts in place or not). Healing means putting
the hardware back (power, cable, SIGCONT); bringing a lost old primary back as a standby is HA
Center's job, which the round does with one Rebuild.
"""

import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.lab import Lab

if TYPE_CHECKING:
    from clusters.models import Cluster
    from tests.workers import WorkerSlot

DATA = "/var/lib/postgresql/15/{name}"
#: The console's side of the lab: traffic the worker and the monitor send; the writer only
#: talks to the proxy's PostgreSQL port, which stays open.
CONSOLE_CUT_RULES = (
    ["-d", "198.18.0.11/32"],
    ["-d", "198.18.0.12/32"],
    ["-d", "198.18.0.10/32", "-p", "tcp", "-m", "multiport", "--dports", "22,2379,7000,8008"],
)


@dataclass
class Target:
    """The cluster under fault: its lab, name, and which node is primary right now; for the
    faults that hit jobs also the cluster, the worker they may kill, and the round's number.
    A fault records what it saw in `findings`."""

    lab: Lab
    cluster_name: str
    primary: str
    standby: str
    cluster: "Cluster | None" = None
    workers: "WorkerSlot | None" = None
    round: int = 1
    findings: dict = field(default_factory=dict)
    _timers: list[threading.Thread] = field(default_factory=list)

    def postmaster(self, host: str) -> list[str]:
        data = DATA.format(name=self.cluster_name)
        return ["sh", "-c", f"kill -KILL $(head -n 1 {data}/postmaster.pid)"]

    def later(self, seconds: float, action: Callable[[], None]) -> None:
        """Run `action` after `seconds` in the background (heal waits for it)."""
        timer = threading.Timer(seconds, action)
        timer.start()
        self._timers.append(timer)

    def wait_timers(self) -> None:
        for timer in self._timers:
            timer.join()
        self._timers.clear()


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    inject: Callable[[Target], None]
    heal: Callable[[Target], None]
    failover: bool | None  # must the primary move?
    heal_after_s: float = 0  # hold the fault this long (or until the failover, if sooner)
    # `make test` runs each fault once, on the cluster where it tells most: faults that can
    # lose writes on the sync cluster (no acknowledged write may go missing there).
    quick_on: str = "async"
    hits_a_job: bool = False  # it breaks one of HA Center's jobs (see job_faults)
    # It needs hosts that boot systemd (tests/lab/systemd_lab.py): test_chaos_systemd runs it.
    systemd: bool = False
    # Only `make chaos` runs it (a long hold that would add minutes to `make test`).
    chaos_only: bool = False
    # It needs a cluster with two proxies and a floating address (test_chaos_vip runs it).
    two_proxies: bool = False
    # It needs database hosts with small data disks of their own (test_chaos_disk runs it).
    small_disks: bool = False
    # The admin's answer after the heal is a setup run (the lab has no systemd to restart
    # what the fault stopped, e.g. HAProxy or a powered-on proxy's daemons).
    heal_with_setup: bool = False


def _iptables(action: str) -> Callable[[Target], None]:
    def apply(target: Target) -> None:
        import subprocess

        for rule in CONSOLE_CUT_RULES:
            command = ["iptables", action, "OUTPUT", *rule, "-m", "comment"]
            command += ["--comment", "hclab-console-cut", "-j", "DROP"]
            result = subprocess.run(command, capture_output=True, text=True)
            if action == "-I" and result.returncode != 0:
                raise RuntimeError(result.stderr)

    return apply


def _freeze(target: Target) -> None:
    target.lab.exec(target.primary, ["pkill", "-STOP", "-u", "postgres"])
    target.later(30, lambda: target.lab.exec(target.primary, ["pkill", "-CONT", "-u", "postgres"]))


#: The etcd members stopped for the quorum fault: two of three, the primary's own kept.
ETCD_PROCESS = ["-x", "etcd"]
QUORUM_LOSS_S = 60


def _etcd_quorum_loss(target: Target) -> None:
    """Freeze etcd (SIGSTOP) on the standby and the proxy: the primary's member is alone, a
    minority; they are thawed after QUORUM_LOSS_S."""
    frozen = (target.standby, "proxy")
    for host in frozen:
        target.lab.exec(host, ["pkill", "-STOP", *ETCD_PROCESS])

    def thaw() -> None:
        for host in frozen:
            target.lab.exec(host, ["pkill", "-CONT", *ETCD_PROCESS])

    target.later(QUORUM_LOSS_S, thaw)


#: The asymmetric partition: the primary loses its peer and etcd (client 2379, peers 2380),
#: while the proxy still reaches its PostgreSQL (5432) and Patroni (8008) as before.
PARTITION_COMMENT = "hclab-partition"


def _partition_rules(target: Target) -> list[list[str]]:
    peer = target.lab.host(target.standby).address
    proxy = target.lab.proxy.address
    etcd_ports = ["-p", "tcp", "-m", "multiport", "--ports", "2379,2380"]
    return [
        ["INPUT", "-s", peer],
        ["OUTPUT", "-d", peer],
        ["INPUT", "-s", proxy, *etcd_ports],
        ["OUTPUT", "-d", proxy, *etcd_ports],
    ]


def _partition(action: str) -> Callable[[Target], None]:
    """Insert ("-I") or delete ("-D") the partition's DROP rules inside the primary's own
    network namespace (its host firewall stays as HA Center set it)."""

    def apply(target: Target) -> None:
        for chain, *match in _partition_rules(target):
            command = ["iptables", action, chain, *match, "-m", "comment"]
            command += ["--comment", PARTITION_COMMENT, "-j", "DROP"]
            target.lab.exec(target.primary, command, check=action == "-I")

    return apply


def _vip_holder_off(target: Target) -> None:
    """Power off the proxy holding the floating address. Its cable goes dead with it: a netns
    keeps its addresses after its processes die and would go on answering ARP for the VIP."""
    from tests.lab.core import VIRTUAL_IP
    from tests.lab.probes import vip_holder

    holder = vip_holder(target.lab, VIRTUAL_IP)
    if holder is None:
        raise RuntimeError("no single proxy holds the floating address before the fault")
    target.findings["vip_holder"] = holder
    target.lab.cut_network(holder)
    target.lab.power_off(holder)


def _vip_holder_on(target: Target) -> None:
    holder = target.findings["vip_holder"]
    target.lab.restore_network(holder)
    target.lab.power_on(holder)


#: The far-behind standby: its WAL receiver is stopped while the primary writes this much,
#: well past maximum_lag_on_failover (1 MiB), then the primary loses power.
BEHIND_SQL = (
    "DROP TABLE IF EXISTS chaos_behind; CREATE TABLE chaos_behind AS "
    "SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 150000) g"  # ~40 MB of WAL
)
NO_CANDIDATE = "No standby will be promoted"


def _as_postgres_sql(sql: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", "psql", "-h", "/run/postgresql", "-XAtqc", sql]


def _standby_behind_then_primary_off(target: Target) -> None:
    """Stop the standby's WAL receiver (SIGSTOP: what a stalled disk does to it), write
    BEHIND_SQL's rows on the primary, wait until Patroni's record of the leader's position has
    moved past them (it updates it every loop), then power the primary off."""
    target.lab.exec(target.standby, ["pkill", "-STOP", "-f", "walreceiver"])
    # In the background and bounded: on a sync cluster the commit waits for the stopped standby.
    _in_background(target, target.primary, BEHIND_SQL)
    time.sleep(8)
    target.lab.power_off(target.primary)
    target.lab.exec(target.standby, ["pkill", "-CONT", "-f", "walreceiver"])


def _console_says(target: Target, fragment: str, timeout: float = 60) -> list[str]:
    """The cluster's state reasons that contain `fragment`, waiting up to `timeout` for one
    (kept in the round's findings)."""
    from clusters.models import Cluster

    def said() -> list[str]:
        reasons = Cluster.objects.get(pk=target.cluster.pk).state_reasons
        return [r for r in reasons if fragment in r]

    deadline = time.monotonic() + timeout
    while not (found := said()) and time.monotonic() < deadline:
        time.sleep(1)
    target.findings["console_said"] = found
    return found


def _console_says_why_then_power_on(target: Target) -> None:
    """The console must say why nobody took over (the monitor reads Patroni's lag), then the
    old primary comes back."""
    found = _console_says(target, NO_CANDIDATE)
    target.lab.power_on(target.primary)
    if not found and target.cluster.replication == "async":
        raise AssertionError("the console did not say why no standby was promoted")


DISK_REASON = "data directory disk"


def _fill_disk(target: Target) -> None:
    """Fill the primary's data disk, then have a batch write that needs new WAL segments and
    table space (the writer's small rows fit in what is already allocated for a long time)."""
    from tests.chaos.small_disks import fill

    target.findings["filled"] = target.primary
    fill(target.lab, target.primary)
    batch = target.lab.exec(
        target.primary, ["timeout", "60", *_as_postgres_sql(BEHIND_SQL)], check=False, timeout=90
    )
    target.findings["batch"] = (batch.stderr.strip().splitlines() or ["succeeded"])[-1][:300]


def _in_background(target: Target, host: str, sql: str, seconds: int = 30) -> None:
    """`sql` as postgres on `host`, not waited for, and stopped after `seconds` at most."""
    command = " ".join(shlex.quote(a) for a in ["timeout", str(seconds), *_as_postgres_sql(sql)])
    target.lab.exec(host, ["sh", "-c", f"{command} >/dev/null 2>&1 &"])


def _console_says_disk_full_then_free(target: Target) -> None:
    """The console must name the full disk (the disk check runs every minute), then the space
    is freed on the host that was filled."""
    from tests.chaos.small_disks import free

    found = _console_says(target, DISK_REASON, timeout=150)
    free(target.lab, target.findings["filled"])
    if not found:
        raise AssertionError("the console did not say that the primary's disk is full")


def _nothing(target: Target) -> None:
    return None


def _reboot(target: Target) -> None:
    target.lab.reboot(target.primary)


def _shutdown(target: Target) -> None:
    target.lab.shutdown(target.primary)


def _power_on(target: Target) -> None:
    target.lab.power_on(target.primary)


def _job_fault(name: str) -> Callable[[Target], None]:
    """A fault from job_faults, imported when it runs: that module needs Django, and the report
    reads FAULTS without it."""

    def inject(target: Target) -> None:
        from tests.chaos import job_faults

        getattr(job_faults, name)(target)

    return inject


FAULTS: tuple[Fault, ...] = (
    Fault(
        "kill",
        "kill -9 of the primary's postmaster",
        lambda t: t.lab.exec(t.primary, t.postmaster(t.primary)),
        _nothing,
        failover=None,
    ),
    Fault(
        "poweroff",
        "power-off of the primary host",
        lambda t: t.lab.power_off(t.primary),
        lambda t: t.lab.power_on(t.primary),
        failover=True,
        heal_after_s=90,
        quick_on="sync",
    ),
    Fault(
        "netcut",
        "the primary's network cut",
        lambda t: t.lab.cut_network(t.primary),
        lambda t: t.lab.restore_network(t.primary),
        failover=True,
        heal_after_s=90,
        quick_on="sync",
    ),
    Fault(
        "freeze",
        "the primary frozen 30 s (SIGSTOP of PostgreSQL and Patroni, then SIGCONT)",
        _freeze,
        Target.wait_timers,
        failover=True,
        heal_after_s=90,
        quick_on="sync",
    ),
    Fault(
        "standby_kill",
        "kill -9 of the standby's postmaster",
        lambda t: t.lab.exec(t.standby, t.postmaster(t.standby)),
        _nothing,
        failover=False,
    ),
    Fault(
        "haproxy_kill",
        "HAProxy killed (kill -9), restarted 5 s later",
        lambda t: t.lab.exec("proxy", ["pkill", "-KILL", "-x", "haproxy"]),
        _nothing,
        failover=False,
        heal_after_s=5,
        heal_with_setup=True,
    ),
    Fault(
        "console_cut",
        "the console cut off from the cluster for 20 s (SSH, Patroni, etcd, stats, PostgreSQL)",
        _iptables("-I"),
        _iptables("-D"),
        failover=False,
        heal_after_s=20,
    ),
    Fault(
        "worker_kill_setup",
        "the Celery worker killed (SIGKILL) during a setup run, then the job retried",
        _job_fault("worker_kill_setup"),
        _nothing,
        failover=False,
        hits_a_job=True,
    ),
    Fault(
        "worker_kill_rebuild",
        "the Celery worker killed during a full-copy Rebuild of the standby, then retried",
        _job_fault("worker_kill_rebuild"),
        _nothing,
        failover=False,
        # On sync the standby's copy must not cost an acknowledged write.
        quick_on="sync",
        hits_a_job=True,
    ),
    Fault(
        "ssh_drop",
        "an SSH connection dropped mid-step (its sshd killed) during a setup run, then retried",
        _job_fault("ssh_drop"),
        _nothing,
        failover=False,
        hits_a_job=True,
    ),
    Fault(
        "etcd_quorum",
        f"etcd quorum lost for {QUORUM_LOSS_S} s (the standby's and the proxy's members "
        "frozen with SIGSTOP), then back",
        _etcd_quorum_loss,
        Target.wait_timers,
        # Either node may lead once quorum is back: the leader key expired meanwhile.
        failover=None,
        heal_after_s=QUORUM_LOSS_S,
        quick_on="sync",
        chaos_only=True,
    ),
    Fault(
        "asym_partition",
        "asymmetric partition: the primary cut off from its peer and from etcd, still "
        "reachable from the proxy",
        _partition("-I"),
        _partition("-D"),
        failover=True,
        heal_after_s=90,
        quick_on="sync",
        chaos_only=True,
    ),
    Fault(
        "vip_poweroff",
        "power-off of the proxy that holds the floating address (two proxies, keepalived)",
        _vip_holder_off,
        _vip_holder_on,
        failover=False,
        heal_after_s=20,
        quick_on="sync",
        chaos_only=True,
        two_proxies=True,
        heal_with_setup=True,
    ),
    Fault(
        "standby_behind",
        "the standby far behind (its WAL receiver stopped while ~40 MB are written), then the "
        "primary powered off",
        _standby_behind_then_primary_off,
        _console_says_why_then_power_on,
        # Async: Patroni promotes no standby beyond maximum_lag_on_failover; writes wait.
        failover=None,
        heal_after_s=40,
        chaos_only=True,
        heal_with_setup=True,
    ),
    Fault(
        "disk_full",
        "the primary's data disk full (a file takes every free block, then a 40 MB batch "
        "write), freed once the console names it",
        _fill_disk,
        _console_says_disk_full_then_free,
        # PostgreSQL cannot write new WAL: it may stop, and Patroni may promote the standby.
        failover=None,
        heal_after_s=5,
        chaos_only=True,
        small_disks=True,
    ),
    Fault(
        "reboot",
        "reboot of the primary (systemd host: clean stop, boot, services back by themselves)",
        _reboot,
        _nothing,
        failover=True,
        quick_on="sync",
        systemd=True,
    ),
    Fault(
        "shutdown",
        "clean shutdown of the primary (systemd host), powered on once the standby took over",
        _shutdown,
        _power_on,
        failover=True,
        heal_after_s=10,
        quick_on="sync",
        systemd=True,
    ),
)


def hold(fault: Fault, moved: Callable[[], bool]) -> None:
    """Keep the fault for `heal_after_s`, ending early once the primary moved (a failover
    fault has done its work then)."""
    deadline = time.monotonic() + fault.heal_after_s
    while time.monotonic() < deadline:
        if fault.failover and moved():
            return
        time.sleep(0.5)
