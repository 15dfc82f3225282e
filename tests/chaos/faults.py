"""The chaos suite's faults: each breaks one thing in a running lab cluster, then heals it.

A fault knows whether it must move the primary (`failover`: True, False, or None for "either
is right", as a killed postmaster that Patroni restarts in place or not). Healing means putting
the hardware back (power, cable, SIGCONT); bringing a lost old primary back as a standby is HA
Center's job, which the round does with one Rebuild.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.chaos.fast_faults import (
    SLOW_PRIMARY_S,
    WITNESS_CUT_S,
    _agent_starved,
    _witness_back,
    _witness_cut,
    freeze_for,
)
from tests.chaos.infra_faults import (
    QUORUM_LOSS_S,
    _console_says_disk_full_then_free,
    _console_says_why_then_power_on,
    _etcd_quorum_loss,
    _fill_disk,
    _partition,
    _standby_behind_then_primary_off,
    _vip_holder_off,
    _vip_holder_on,
)
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
    # A fault of the fenced fast path only (test_chaos_fast runs it, with FAST_PATH_FAULTS).
    fast_path: bool = False


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


# The primary frozen 30 s; not thawed if the fast path's fence powered it off meanwhile.
_freeze = freeze_for(30)


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
        "primary_slow",
        f"false positive: the primary slow but alive (PostgreSQL and Patroni stopped "
        f"{SLOW_PRIMARY_S:g} s, then SIGCONT)",
        freeze_for(SLOW_PRIMARY_S),
        Target.wait_timers,
        # The agent may fence it (once), or not; the lease never moves it.
        failover=None,
        heal_after_s=10,
        fast_path=True,
    ),
    Fault(
        "agent_starved",
        "false positive: the fast-path agent starved of CPU (SIGSTOP 3 s, three times)",
        _agent_starved,
        Target.wait_timers,
        failover=None,
        heal_after_s=12,
        fast_path=True,
    ),
    Fault(
        "witness_cut",
        f"the witness (the proxy, with the agent and the third etcd member) cut off alone "
        f"for {WITNESS_CUT_S} s",
        _witness_cut,
        _witness_back,
        failover=False,
        heal_after_s=WITNESS_CUT_S,
        fast_path=True,
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
