"""What the monitor makes of one reading: the judgement-ready `ClusterView` of a cluster
(clusters.monitoring.health judges it). Pure apart from the clock: no network, no queries."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from clusters.models import Cluster, NodeStatus
from clusters.monitoring.failover_settings import failover_settings
from clusters.monitoring.health import (
    APP_BACKEND_PREFIX,
    RO_BACKEND,
    RO_FALLBACK_BACKEND,
    RW_BACKEND,
    ClusterView,
    MemberView,
)
from clusters.monitoring.reads import Inventory, NodeReading, Reading, leader_in

# The disk check runs every minute; a reading older than this says nothing about now.
DISK_READING_FRESH = timedelta(minutes=5)


def to_view(inventory: Inventory, reading: Reading) -> ClusterView:
    """The judgement-ready view of a reading (see clusters.monitoring.health)."""
    members = {m["name"]: m for m in (reading.patroni or {}).get("members", [])}
    leader = leader_in(reading.patroni or {})
    leader_reading = reading.nodes.get(leader or "", NodeReading())
    rw = (reading.proxy or {}).get(RW_BACKEND, {})
    ro = (reading.proxy or {}).get(RO_BACKEND, {})
    ro_fallback = (reading.proxy or {}).get(RO_FALLBACK_BACKEND, {})
    apps = {
        backend: servers
        for backend, servers in sorted((reading.proxy or {}).items())
        if backend.startswith(APP_BACKEND_PREFIX)
    }
    views = []
    for node in inventory.db_nodes:
        member = members.get(node.name, {})
        lag = leader_reading.replication.get(node.name, {})
        lag_bytes = lag.get("lag_bytes")
        if lag_bytes is None and isinstance(member.get("lag"), int):
            lag_bytes = member["lag"]  # Patroni's view when the primary could not be read
        lag_seconds = _lag_seconds(lag, lag_bytes, member, reading.nodes[node.name])
        views.append(
            MemberView(
                name=node.name,
                patroni_role=member.get("role"),
                patroni_state=_patroni_state(member, lag, node.name == leader),
                writable=reading.nodes[node.name].writable,
                timeline=member.get("timeline"),
                lag_bytes=lag_bytes if node.name != leader else None,
                lag_seconds=lag_seconds if node.name != leader else None,
                proxy_rw=rw.get(node.name) if reading.proxy is not None else None,
                proxy_ro=ro.get(node.name) if reading.proxy is not None else None,
                fenced=node.name in inventory.fenced,
                disk=_disk(inventory.statuses.get(node.name)),
                proxy_ro_fallback=(
                    ro_fallback.get(node.name) if reading.proxy is not None else None
                ),
                proxy_apps=tuple(
                    (backend, servers[node.name])
                    for backend, servers in apps.items()
                    if node.name in servers
                ),
            )
        )
    return ClusterView(
        members=tuple(views),
        patroni_answered=reading.patroni is not None,
        leader=leader,
        paused=bool((reading.patroni or {}).get("pause")),
        proxy_answered=reading.proxy is not None,
        lag_threshold_bytes=settings.LAG_ALERT_BYTES,
        synchronous=inventory.cluster.replication == Cluster.Replication.SYNC,
        failover_lag_limit=failover_settings(inventory.cluster)[1],
        proxy_expected=inventory.proxy is not None,
        archive=leader_reading.archiver,
        proxies_silent=reading.proxies_silent,
    )


def _disk(status: NodeStatus | None) -> tuple[str, int, int] | None:
    """The disk check's last reading of the node, if it is recent (monitoring.disk_space)."""
    if status is None or status.disk_checked is None or status.disk_total_bytes is None:
        return None
    if timezone.now() - status.disk_checked > DISK_READING_FRESH:
        return None
    return status.disk_mount, status.disk_free_bytes or 0, status.disk_total_bytes


def _patroni_state(member: dict, replication: dict, is_leader: bool) -> str | None:
    """The member's Patroni state, with Patroni before 3.0.4's "running" replica (Debian 12's
    3.0.2, on adopted clusters) read as "streaming" when the primary's pg_stat_replication
    shows its WAL sender streaming: those versions name no other replica state."""
    state = member.get("state")
    if state == "running" and not is_leader and replication.get("state") == "streaming":
        return "streaming"
    return state


def _lag_seconds(
    replication: dict, lag_bytes: int | None, member: dict, standby: NodeReading
) -> float | None:
    """A standby's replay lag in seconds: the primary's measure (pg_stat_replication.replay_lag)
    when it has one, else the standby's own (STANDBY_LAG_SQL), for any standby that streams.

    The primary's replay_lag can be NULL for a standby that does stream: PostgreSQL clears it
    once the standby has reported everything replayed twice, and measures again only when a
    reply of the standby passes a WAL position sent after that; a standby reports its replay
    with its next reply, which may be up to wal_receiver_status_interval (10 s) away. And with
    the primary unread, there is no row at all. 0 bytes behind is 0 s; otherwise only the
    standby can tell. A standby that does not stream has no meaningful figure (None), unless
    it is 0 bytes behind.
    """
    seconds = replication.get("replay_lag_s")
    if seconds is None and lag_bytes == 0:
        seconds = 0.0
    streams = bool(replication) or member.get("state") == "streaming"
    if seconds is None and streams:
        seconds = standby.standby_lag_s
    return seconds
