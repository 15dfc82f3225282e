"""What the monitor concludes from a reading: statuses, history, state, alarms and events.

Pure judgement lives in `health`; this module compares with what the database held before (the
previous pass, and a batch's Context) and decides what to write: events and alarms at once (they
are rare), statuses, samples and the cluster row into the wave's Writes (`observe_writes`), which
are flushed together. Fencing is the sentinel's (`sentinel`, which starts a fence job).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters.alerts.events import event_record
from clusters.alerts.incidents import incident_measure, incident_observe
from clusters.inventory.units import size_text
from clusters.models import Cluster, ClusterAlarm, ClusterEvent, NodeStatus, StatusSample
from clusters.monitoring import health
from clusters.monitoring.lag_history import lag_minutes_add
from clusters.monitoring.observe_writes import STATUS_FIELDS, Context, Writes, context_load
from clusters.monitoring.reads import Inventory, Reading
from clusters.monitoring.state_changes import state_changes
from jobs.models import Job, JobStatus

__all__ = ["Context", "Pass", "context_load", "record"]

logger = logging.getLogger(__name__)
Kind, Severity = ClusterEvent.Kind, ClusterEvent.Severity


def _is_up(member: health.MemberView) -> bool:
    """Up means its PostgreSQL answered the monitor itself. Patroni's member list is second hand:
    a powered-off node stays listed as "running" until its member key expires (ttl)."""
    return member.writable is not None


@dataclass
class Pass:
    """One cluster's pass: what was known before, what was read, and its judgement-ready view."""

    inventory: Inventory
    reading: Reading
    view: health.ClusterView

    @property
    def cluster(self) -> Cluster:
        return self.inventory.cluster


def record(
    passes: list[Pass], context: Context, lease: datetime | None, *, failed: Sequence[int] = ()
) -> dict[int, str]:
    """Write a wave of passes' results and free their leases; returns each cluster's derived
    state. A cluster whose judgement fails (or whose reading failed: `failed`) is logged and
    skipped, so it cannot cost the others their write."""
    now = timezone.now()
    writes, states = Writes(failed_clusters=list(failed)), {}
    each: dict[int, Writes] = {}
    for one in passes:
        try:
            mine = Writes()
            states[one.cluster.pk] = _judge(one, context, mine, now)
            writes.add(mine)
            each[one.cluster.pk] = mine
        except Exception:
            logger.exception("monitor pass over cluster %s failed", one.cluster.name)
            writes.failed_clusters.append(one.cluster.pk)
    try:
        writes.flush(now, lease)
    except Exception:
        # One cluster's bad row must not cost the wave its write: each cluster on its own.
        logger.exception("a monitor wave's write failed; writing its clusters one by one")
        for pk, mine in [*each.items(), (None, Writes(failed_clusters=writes.failed_clusters))]:
            try:
                mine.flush(now, lease)
            except Exception:
                logger.exception("monitor write of cluster %s failed", pk)
                Cluster.objects.filter(pk=pk, monitor_lease=lease).update(monitor_lease=None)
                states.pop(pk, None)
    return states


def _status_values(status: NodeStatus) -> tuple:
    return tuple(getattr(status, name) for name in STATUS_FIELDS if name != "last_seen")


def _judge(one: Pass, context: Context, writes: Writes, now: datetime) -> str:
    """One cluster: compare with the previous pass, record events and alarms at once (they are
    rare), and put the status, sample and cluster rows into `writes`."""
    cluster, inventory, reading, view = one.cluster, one.inventory, one.reading, one.view
    nodes = {n.name: n for n in inventory.db_nodes}
    before = inventory.statuses
    old_primary = cluster.last_leader or None
    state, reasons = health.derive_state(view)
    for member in view.members:
        status = before.get(member.name) or NodeStatus(node=nodes[member.name])
        previous = _status_values(status)
        up = _is_up(member)
        if up and status.state == "down" and _down_recorded(cluster, member.name):
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
        lag_known = up and status.role != NodeStatus.Role.PRIMARY
        status.lag_minutes = lag_minutes_add(
            status.lag_minutes, now, member.lag_bytes if lag_known else None
        )
        status.proxy_status = member.proxy_rw or ""
        status.proxy_backends = member.proxy_backends
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
        host_up = not up and reading.nodes[member.name].host_answers
        status.host_up_since = (status.host_up_since or now) if host_up else None
        _track_lag(cluster, status, now)
        if not status.pk:
            writes.new_statuses.append(status)
        elif _status_values(status) != previous:
            writes.changed_statuses.append(status)
        elif up:
            writes.seen_statuses.append(status.pk)
        writes.samples.append(
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
    handover = context.handovers.get(cluster.pk)
    if view.leader and old_primary and view.leader != old_primary:
        handover = _primary_changed(cluster, old_primary, view.leader, before, now)
        context.handovers[cluster.pk] = handover
    if handover is not None:
        _complete_failover_timings(handover, reading, view, now)
        _rejoins(cluster, handover, view, now, context.rejoins.setdefault(cluster.pk, []))
    active = context.alarms.setdefault(cluster.pk, {})
    _alarms(cluster, _alarms_found(view, handover, active, now), now, active)
    changes: dict = {}
    if view.leader and view.leader != cluster.last_leader:
        changes["last_leader"] = cluster.last_leader = view.leader
    holder = reading.vip_holder or ""
    if cluster.virtual_ip and holder != cluster.vip_holder:
        changes["vip_holder"] = cluster.vip_holder = holder
    setup_owns_state = cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING)
    if not setup_owns_state:
        # The incident first: it reads the state before this pass; the state change's event
        # then joins the incident it opened.
        _incident(one, context, state, reasons, now)
        changes.update(state_changes(cluster, state, reasons, view.paused, now))
    if changes:
        writes.cluster_changes[cluster.pk] = {**changes, "last_checked": now}
    else:
        writes.quiet_clusters.append(cluster.pk)
    return state


def _down_recorded(cluster: Cluster, node: str) -> bool:
    """Whether the node's latest up/down event is a "down": a node marked down without one (it
    never answered since setup, or the monitor's first pass missed it) comes back silently.
    Asked only when a down node answers again, which is rare."""
    last = (
        cluster.events.filter(kind__in=[Kind.NODE_DOWN, Kind.NODE_UP], node=node)
        .order_by("-at", "-pk")
        .values_list("kind", flat=True)
        .first()
    )
    return last == Kind.NODE_DOWN


# After a hand-over, HAProxy routes writes to the new primary once its checks see it promoted
# (two checks a second apart: jobs/configs/haproxy.py); until then writes go nowhere, which the
# hand-over's own event already tells. Only past this long is it an alarm of its own.
ROUTE_GRACE_S = 10.0


def _alarms_found(
    view: health.ClusterView,
    handover: ClusterEvent | None,
    active: dict[str, ClusterAlarm],
    now: datetime,
) -> dict[str, str]:
    """The reading's alarms, less a new "writes_nowhere" while HAProxy catches up with a
    hand-over (ROUTE_GRACE_S). One already raised stays: writes still go nowhere."""
    found = health.find_alarms(view)
    catching_up = (
        handover is not None
        and not handover.details.get("proxy_routed_at")
        and (now - handover.at).total_seconds() < ROUTE_GRACE_S
    )
    if catching_up and "writes_nowhere" not in active:
        found.pop("writes_nowhere", None)
    return found


def _incident(one: Pass, context: Context, state: str, reasons: list[str], now: datetime) -> None:
    """Open an outage, end one, or close the cluster's incident after a healthy stretch
    (clusters.alerts.incidents); reads the cluster's state and last check before this pass
    writes them."""
    cluster = one.cluster
    found = incident_observe(
        cluster=cluster,
        state=state,
        reasons=reasons,
        previous_state=cluster.state,
        last_checked=cluster.last_checked,
        now=now,
        open_incident=context.incidents.get(cluster.pk),
    )
    if found is None:
        context.incidents.pop(cluster.pk, None)
    else:
        context.incidents[cluster.pk] = found


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
                f"{status.node.name} lags {size_text(status.lag_bytes)} for "
                f"{settings.LAG_ALERT_AFTER_S:g} s "
                f"(alert threshold {size_text(settings.LAG_ALERT_BYTES)})",
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


def _last_seen_leading(status: NodeStatus | None) -> datetime | None:
    """When the old primary was last seen taking writes: its last reading, unless it had
    already stopped leading when the new leader came (it demoted itself: etcd lost its quorum,
    or its Patroni lost etcd), then the last sample that had it primary. Its last reading would
    make a failover after a long wait without a leader look seconds short."""
    if status is None:
        return None
    if status.role == NodeStatus.Role.PRIMARY and status.writable is not False:
        return status.last_seen
    sample = (
        StatusSample.objects.filter(node_id=status.node_id, up=True, role=NodeStatus.Role.PRIMARY)
        .order_by("-at")
        .first()
    )
    return sample.at if sample else status.last_seen


def _primary_changed(
    cluster: Cluster, old: str, new: str, before: dict[str, NodeStatus], now: datetime
) -> ClusterEvent:
    """A new leader: a switchover when a switchover job runs, else a failover. Timings that are
    not known yet (promotion in Patroni's history, HAProxy's first route) are filled in by
    later passes."""
    planned = Job.objects.filter(
        cluster=cluster, kind="switchover", status__in=JobStatus.active()
    ).exists()
    old_status = before.get(old)
    last_healthy = _last_seen_leading(old_status)
    return event_record(
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


def _promotion(
    history: list, new: str, after: datetime | None = None
) -> tuple[str | None, int | None]:
    """When and at which LSN Patroni promoted `new`, from its /history entries
    [timeline, lsn, reason, timestamp, new_leader], counting only a promotion after `after`
    (the old primary's last healthy reading). Patroni writes the entry a loop after promoting:
    until then the newest entry naming `new` is an earlier hand-over to the same node, and its
    time and LSN would be taken for this one's (a likely cause of the ~20 MB of "WAL lost" the
    chaos suite's freeze rounds reported with no row lost)."""
    for entry in reversed(history):
        if isinstance(entry, list) and len(entry) >= 5 and entry[4] == new:
            at = parse_datetime(str(entry[3]))
            if after is not None and at is not None and at < after:
                return None, None  # this promotion is not in the history yet
            return entry[3], entry[1] if isinstance(entry[1], int) else None
    return None, None


def _complete_failover_timings(
    pending: ClusterEvent, reading: Reading, view: health.ClusterView, now: datetime
) -> None:
    """Fill in the latest hand-over's promotion time, the writes it may have lost, when HAProxy
    first routes writes to the new primary (without a proxy: when it first accepts writes), and
    then the downtime, which marks the timings complete: Patroni writes its history a loop after
    promoting, and HAProxy may route first."""
    details = pending.details
    if details.get("promoted_at") and details.get("proxy_routed_at"):
        return  # complete
    if view.leader != pending.new_primary:
        return
    details, changed = dict(pending.details), []
    if details.get("promoted_at") is None:
        after = parse_datetime(details.get("old_last_healthy") or "")
        promoted_at, lsn = _promotion(reading.history, pending.new_primary, after)
        if promoted_at:
            details["promoted_at"] = promoted_at
            old_position = details.get("old_wal_position")
            if lsn is not None and old_position is not None:
                # Async: what the old primary had written past the promotion point is lost.
                pending.lost_bytes = max(0, old_position - lsn)
                changed.append("lost_bytes")
    if view.proxy_expected:
        routed = [m.name for m in view.members if (m.proxy_rw or "").startswith("UP")]
    else:
        # No proxy (an adopted cluster may have none): clients connect to the nodes, so writes
        # are back when the new primary accepts them.
        routed = [m.name for m in view.members if m.writable is True]
    if details.get("proxy_routed_at") is None and routed == [pending.new_primary]:
        details["proxy_routed_at"] = now.isoformat()
    if details != pending.details:
        pending.details = details
        pending.save(update_fields=["details", *changed])
        if changed:  # the loss is measured: the incident tells it too
            incident_measure(incident_id=pending.incident_id)
    if details.get("proxy_routed_at") and pending.downtime_s is None:
        _downtime(pending, now)


# Without Patroni's promotion time this long after HAProxy routed writes, the downtime is
# recorded anyway (Patroni's history unreadable, say): the timings stay incomplete, not unknown.
PROMOTION_WAIT_S = 30.0


def _downtime(pending: ClusterEvent, now: datetime) -> None:
    """Writes were down from the old primary's last healthy reading until HAProxy routed them
    to the new one; recorded once the promotion time is known, or PROMOTION_WAIT_S later."""
    details = pending.details
    routed_at = parse_datetime(details["proxy_routed_at"])
    waited = (now - routed_at).total_seconds() >= PROMOTION_WAIT_S
    if not (details.get("promoted_at") or waited):
        return
    start = parse_datetime(details.get("old_last_healthy") or "") or pending.at
    pending.downtime_s = round((routed_at - start).total_seconds(), 1)
    pending.save(update_fields=["downtime_s"])
    incident_measure(incident_id=pending.incident_id)


def _rejoins(
    cluster: Cluster,
    last: ClusterEvent,
    view: health.ClusterView,
    now: datetime,
    rejoins: list[tuple[str, datetime]],
) -> None:
    """The old primary of the last hand-over streams again: record when, once. `rejoins` holds
    the cluster's rejoin events since its latest hand-over (Context), and gets the new one."""
    member = next((m for m in view.members if m.name == last.old_primary), None)
    if not (member and member.patroni_state == "streaming" and member.writable is False):
        return
    if not any(node == member.name and at >= last.at for node, at in rejoins):
        rejoins.append((member.name, now))
        event_record(
            cluster,
            Kind.REJOIN,
            f"{member.name} streams again as a standby",
            node=member.name,
            details={"after_s": round((now - last.at).total_seconds(), 1)},
        )


def _alarms(
    cluster: Cluster, found: dict[str, str], now: datetime, active: dict[str, ClusterAlarm]
) -> None:
    """Raise new alarm codes, clear those that went away; each transition is an event. `active`
    is the cluster's active alarms by code (Context), kept up to date here."""
    for code, message in list(found.items()):
        if code not in active:
            active[code] = ClusterAlarm.objects.create(
                cluster=cluster, code=code, message=message[:300], raised=now
            )
            event_record(
                cluster,
                Kind.ALARM_RAISED,
                message,
                severity=Severity.CRITICAL,
                details={"code": code},
            )
    for code, alarm in list(active.items()):
        if code not in found:
            del active[code]
            ClusterAlarm.objects.filter(pk=alarm.pk).update(cleared=now)
            event_record(
                cluster,
                Kind.ALARM_CLEARED,
                f"cleared: {alarm.message}",
                details={"code": code, "lasted_s": round((now - alarm.raised).total_seconds(), 1)},
            )
