"""What the monitor concludes from a reading: statuses, history, state, alarms and events.

Pure judgement lives in clusters.health; this module compares with what the database held
before (the previous pass) and writes the differences. Fencing is delegated to jobs.fencing
(it needs SSH), imported lazily because clusters never imports jobs at module level.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import health
from .alerts import alerts_enqueue
from .models import Cluster, ClusterAlarm, ClusterEvent, NodeStatus, StatusSample
from .monitor import Inventory, Reading

logger = logging.getLogger(__name__)
Kind, Severity = ClusterEvent.Kind, ClusterEvent.Severity


STATUS_FIELDS = [
    "role",
    "state",
    "timeline",
    "writable",
    "lag_bytes",
    "lag_seconds",
    "proxy_status",
    "wal_position",
    "postmaster_started",
    "last_seen",
    "lag_high_since",
]


def event_record(
    cluster: Cluster,
    kind: str,
    summary: str,
    *,
    severity: str = Severity.INFO,
    at: datetime | None = None,
    **fields,
) -> ClusterEvent:
    """Store an event and queue its alerts once the transaction commits."""
    event = ClusterEvent.objects.create(
        cluster=cluster,
        kind=kind,
        severity=severity,
        at=at or timezone.now(),
        summary=summary[:300],
        **fields,
    )
    alerts_enqueue(event=event)
    return event


def _is_up(member: health.MemberView) -> bool:
    """Up means its PostgreSQL answered the monitor itself. Patroni's member list is second hand:
    a powered-off node stays listed as "running" until its member key expires (ttl)."""
    return member.writable is not None


def record(
    cluster: Cluster, inventory: Inventory, reading: Reading, view: health.ClusterView
) -> str:
    """Write one pass's results; returns the cluster's derived state."""
    now = timezone.now()
    nodes = {n.name: n for n in inventory.db_nodes}
    before = inventory.statuses
    old_primary = cluster.last_leader or None
    state, reasons = health.derive_state(view)
    samples, changed_statuses, new_statuses = [], [], []
    for member in view.members:
        status = before.get(member.name) or NodeStatus(node=nodes[member.name])
        up = _is_up(member)
        if up and status.state == "down":
            event_record(cluster, Kind.NODE_UP, f"{member.name} is back", node=member.name)
        elif not up and status.pk and status.state != "down" and status.last_seen:
            event_record(
                cluster,
                Kind.NODE_DOWN,
                f"{member.name} stopped answering",
                node=member.name,
                severity=Severity.WARNING,
                details={"last_seen": status.last_seen.isoformat()},
            )
        status.role = health.role_of(member) if up else NodeStatus.Role.UNKNOWN
        status.state = (member.patroni_state or ("running" if up else "")) if up else "down"
        status.timeline, status.writable = member.timeline, member.writable
        status.lag_bytes, status.lag_seconds = member.lag_bytes, member.lag_seconds
        status.proxy_status = member.proxy_rw or ""
        status.wal_position = reading.nodes[member.name].wal_position or status.wal_position
        started = reading.nodes[member.name].started
        if up and started and status.postmaster_started and started != status.postmaster_started:
            event_record(
                cluster,
                Kind.NODE_RESTARTED,
                f"PostgreSQL on {member.name} started again at {started:%H:%M:%S} "
                "(a crash Patroni recovered from, or a restart)",
                node=member.name,
                severity=Severity.WARNING,
                details={"started": started.isoformat()},
            )
        status.postmaster_started = started or status.postmaster_started
        if up:
            status.last_seen = now
        _track_lag(cluster, status, now)
        (changed_statuses if status.pk else new_statuses).append(status)
        samples.append(
            StatusSample(
                node=nodes[member.name],
                at=now,
                up=up,
                role=status.role,
                timeline=member.timeline,
                lag_bytes=member.lag_bytes,
                lag_seconds=member.lag_seconds,
            )
        )
    # Plain UPDATEs of the observed fields: bulk_update's CASE expressions cost more CPU than
    # they save for two or three rows, and `fenced` (the sentinel's) is never overwritten.
    NodeStatus.objects.bulk_create(new_statuses)
    for status in changed_statuses:
        status.save(update_fields=STATUS_FIELDS)
    StatusSample.objects.bulk_create(samples)
    if view.leader and old_primary and view.leader != old_primary:
        _primary_changed(cluster, old_primary, view.leader, before, now)
    handover = (
        cluster.events.filter(kind__in=[Kind.FAILOVER, Kind.SWITCHOVER]).order_by("-at").first()
    )
    if handover is not None:
        _complete_failover_timings(handover, reading, view, now)
        _rejoins(cluster, handover, view, now)
    _alarms(cluster, health.find_alarms(view), now)
    changes: dict = {"last_checked": now}
    if view.leader:
        changes["last_leader"] = view.leader
    if cluster.state not in (Cluster.State.NEW, Cluster.State.PROVISIONING):
        changes.update(state=state, maintenance=view.paused)  # setup owns the state until done
    Cluster.objects.filter(pk=cluster.pk).update(**changes)
    if reasons:
        logger.debug("cluster %s is %s: %s", cluster.name, state, "; ".join(reasons))
    return state


def _track_lag(cluster: Cluster, status: NodeStatus, now: datetime) -> None:
    """A standby above the lag threshold for LAG_ALERT_AFTER_S raises one event; back under,
    one more."""
    high = status.lag_bytes is not None and status.lag_bytes > settings.LAG_ALERT_BYTES
    if high and status.lag_high_since is None:
        status.lag_high_since = now
    elif high and now - status.lag_high_since >= timedelta(seconds=settings.LAG_ALERT_AFTER_S):
        if not cluster.events.filter(
            kind=Kind.LAG_HIGH, node=status.node.name, at__gte=status.lag_high_since
        ).exists():
            event_record(
                cluster,
                Kind.LAG_HIGH,
                f"{status.node.name} lags "
                f"{status.lag_bytes} bytes for {settings.LAG_ALERT_AFTER_S:g} s",
                node=status.node.name,
                severity=Severity.WARNING,
            )
    elif not high and status.lag_high_since is not None:
        if cluster.events.filter(
            kind=Kind.LAG_HIGH, node=status.node.name, at__gte=status.lag_high_since
        ).exists():
            event_record(
                cluster, Kind.LAG_OK, f"{status.node.name} caught up", node=status.node.name
            )
        status.lag_high_since = None


def _primary_changed(
    cluster: Cluster, old: str, new: str, before: dict[str, NodeStatus], now: datetime
) -> None:
    """A new leader: a switchover when a switchover job runs, else a failover. Timings that are
    not known yet (promotion in Patroni's history, HAProxy's first route) are filled in by
    later passes."""
    from jobs.models import Job, JobStatus  # lazy: clusters never imports jobs at import time

    planned = Job.objects.filter(
        cluster=cluster, kind="switchover", status__in=JobStatus.active()
    ).exists()
    old_status = before.get(old)
    last_healthy = old_status.last_seen if old_status else None
    event_record(
        cluster,
        Kind.SWITCHOVER if planned else Kind.FAILOVER,
        f"{'switchover' if planned else 'failover'} from {old} to {new}",
        severity=Severity.INFO if planned else Severity.CRITICAL,
        at=now,
        old_primary=old,
        new_primary=new,
        details={
            "old_last_healthy": last_healthy.isoformat() if last_healthy else None,
            "old_wal_position": old_status.wal_position if old_status else None,
            "detected_at": now.isoformat(),
            "promoted_at": None,
            "proxy_routed_at": None,
        },
    )


def _promotion(history: list, new: str) -> tuple[str | None, int | None]:
    """When and at which LSN Patroni promoted `new`, from its /history entries
    [timeline, lsn, reason, timestamp, new_leader]."""
    for entry in reversed(history):
        if isinstance(entry, list) and len(entry) >= 5 and entry[4] == new:
            return entry[3], entry[1] if isinstance(entry[1], int) else None
    return None, None


def _complete_failover_timings(
    pending: ClusterEvent, reading: Reading, view: health.ClusterView, now: datetime
) -> None:
    """Fill in the latest hand-over's promotion time, the writes it may have lost, and, once
    HAProxy routes writes to the new primary, the downtime."""
    details = pending.details
    if details.get("promoted_at") and details.get("proxy_routed_at"):
        return  # complete
    if view.leader != pending.new_primary:
        return
    details, changed = dict(pending.details), []
    if details.get("promoted_at") is None:
        promoted_at, lsn = _promotion(reading.history, pending.new_primary)
        if promoted_at:
            details["promoted_at"] = promoted_at
            old_position = details.get("old_wal_position")
            if lsn is not None and old_position is not None:
                # Async: what the old primary had written past the promotion point is lost.
                pending.lost_bytes = max(0, old_position - lsn)
                changed.append("lost_bytes")
    routed = [m.name for m in view.members if (m.proxy_rw or "").startswith("UP")]
    if details.get("proxy_routed_at") is None and routed == [pending.new_primary]:
        details["proxy_routed_at"] = now.isoformat()
        start = parse_datetime(details.get("old_last_healthy") or "") or pending.at
        pending.downtime_s = round((now - start).total_seconds(), 1)
        changed.append("downtime_s")
    if details != pending.details:
        pending.details = details
        pending.save(update_fields=["details", *changed])


def _rejoins(cluster: Cluster, last: ClusterEvent, view: health.ClusterView, now: datetime) -> None:
    """The old primary of the last hand-over streams again: record when, once."""
    member = next((m for m in view.members if m.name == last.old_primary), None)
    if not (member and member.patroni_state == "streaming" and member.writable is False):
        return
    if not cluster.events.filter(kind=Kind.REJOIN, at__gte=last.at, node=member.name).exists():
        event_record(
            cluster,
            Kind.REJOIN,
            f"{member.name} streams again as a standby",
            node=member.name,
            details={"after_s": round((now - last.at).total_seconds(), 1)},
        )


def _alarms(cluster: Cluster, found: dict[str, str], now: datetime) -> None:
    """Raise new alarm codes, clear those that went away; each transition is an event."""
    active = {a.code: a for a in cluster.alarms.filter(cleared__isnull=True)}
    for code, message in found.items():
        if code not in active:
            ClusterAlarm.objects.create(
                cluster=cluster, code=code, message=message[:300], raised=now
            )
            event_record(
                cluster,
                Kind.ALARM_RAISED,
                message,
                severity=Severity.CRITICAL,
                details={"code": code},
            )
    for code, alarm in active.items():
        if code not in found:
            ClusterAlarm.objects.filter(pk=alarm.pk).update(cleared=now)
            event_record(
                cluster,
                Kind.ALARM_CLEARED,
                f"cleared: {alarm.message}",
                details={"code": code, "lasted_s": round((now - alarm.raised).total_seconds(), 1)},
            )
