"""The disk check: how full the file system under each database node's data directory is.

Neither PostgreSQL nor Patroni says how much space is left, and a full disk is a common way for
a primary to stop taking writes (tables cannot grow, new WAL segments cannot be made). Beat runs
this every minute: one short SSH command per database node (`df` of the data directory and of
its pg_wal, which may be a file system of its own), the fuller of the two kept in the node's
status. The monitor's pass turns it into a reason and an alarm (monitoring.health).
"""

import logging
import shlex
from dataclasses import dataclass

from django.utils import timezone

from clusters.models import Cluster, Node, NodeStatus
from jobs.connections import ConnectionPool
from jobs.ssh import SSHError

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 15
CHECKED_STATES = (
    Cluster.State.HEALTHY,
    Cluster.State.DEGRADED,
    Cluster.State.DOWN,
    Cluster.State.FAILING_OVER,
    Cluster.State.MAINTENANCE,
)


@dataclass(frozen=True)
class FileSystem:
    """One `df -P -B1` line: where it is mounted, its size and what is free to PostgreSQL."""

    mount: str
    total_bytes: int
    free_bytes: int

    @property
    def free_fraction(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 0.0


def parse_df(lines: list[str]) -> list[FileSystem]:
    """`df -P -B1` output (a header, then `source size used available capacity mount`)."""
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or not fields[1].isdigit() or not fields[3].isdigit():
            continue  # the header, or a line that is not one file system
        found.append(FileSystem(" ".join(fields[5:]), int(fields[1]), int(fields[3])))
    return found


def fullest(file_systems: list[FileSystem]) -> FileSystem | None:
    return min(file_systems, key=lambda f: f.free_fraction, default=None)


def data_directory(cluster: Cluster) -> str | None:
    """Where PostgreSQL keeps the cluster's data on every node HA Center built; None for an
    adopted cluster (its own path, not kept by the console)."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        return None
    return f"/var/lib/postgresql/{cluster.postgres_version}/{cluster.name}"


def df_command(data_dir: str) -> str:
    # sudo: the data directory is postgres's alone (0700), and pg_wal is inside it.
    paths = " ".join(shlex.quote(p) for p in (data_dir, f"{data_dir}/pg_wal"))
    return f"df -P -B1 -- {paths}"


def node_disk_read(pool: ConnectionPool, node: Node, data_dir: str) -> FileSystem | None:
    """The node's fullest file system under the data directory; None when it cannot be read."""
    try:
        result = pool.get(node).run(df_command(data_dir), timeout=CHECK_TIMEOUT_S, sudo=True)
    except (SSHError, OSError) as exc:  # down, cut off, or its login refused: nothing to store
        log.info("disk check of %s: %s", node.name, exc)
        return None
    return fullest(parse_df(result.stdout_tail)) if result.ok else None


def disk_space_check(cluster: Cluster) -> int:
    """Read every database node's disk and store it in its status; the count read."""
    data_dir = data_directory(cluster)
    if data_dir is None:
        return 0
    read = 0
    pool = ConnectionPool(tag="hacenter-disk-check")
    try:
        for node in cluster.database_nodes.select_related("credential"):
            found = node_disk_read(pool, node, data_dir)
            if found is None:
                continue
            read += NodeStatus.objects.filter(node=node).update(
                disk_mount=found.mount[:200],
                disk_free_bytes=found.free_bytes,
                disk_total_bytes=found.total_bytes,
                disk_checked=timezone.now(),
            )
    finally:
        pool.close()
    return read


def disk_space_check_all() -> int:
    """The disk check of every running cluster HA Center built (beat, every minute)."""
    clusters = Cluster.objects.filter(state__in=CHECKED_STATES).exclude(
        origin=Cluster.Origin.ADOPTED
    )
    return sum(disk_space_check(cluster) for cluster in clusters)
