"""The chaos faults of issue 20, beyond the primary and the standby: etcd's quorum, an
asymmetric partition, a far-behind standby, a full data disk, the proxy that holds the floating
address. `faults.FAULTS` names them; each takes the round's `faults.Target`."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.chaos.faults import Target

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
