"""Grouping a cluster's events into incidents: one failover, switchover or outage, one story.

How events become an incident:
- A hand-over (failover or switchover event) opens the cluster's incident, or joins the one
  already open (an outage the monitor opened while nobody held the leader key becomes this
  failover). The events just before it (LOOK_BACK: the old primary's node_down, an alarm, a
  restart) are attached to it too.
- A failover while a switchover's incident is still open (its healthy stretch not over) closes
  that one and opens its own, taking the events since the cluster was healthy again: a planned
  hand-over and a fault are two stories.
- While an incident is open, every new event of its cluster belongs to it: the old primary
  back, its rejoin or fence, lag, alarms, the rebuild job's failures.
- The monitor opens an outage when it finds writes reaching no primary with no hand-over
  (`incident_observe`), and closes any incident once the cluster has stayed healthy for
  CLOSE_AFTER.

At most one incident per cluster is open: a partial unique constraint holds it, and opening
one that another worker opened first finds and joins that one instead.

What is measured, and how exact it is (`incident_measure`):
- downtime: of a hand-over, the monitor's measure (its event's downtime_s): from the old
  primary's last healthy reading to the first reading where HAProxy routes writes to the new
  primary alone (without a proxy: where the new primary accepts writes). Both ends are
  monitor readings, so it is exact to within one monitor interval at each end (a few
  seconds), and tends to run long: writes may have stopped just before the next reading would
  have seen it. A switchover run by HA Center measures it with a write probe through the proxy
  instead (to 0.1 s), and that figure wins. Of an outage without a hand-over: from the last
  healthy reading to the first reading where writes reach a primary again, to the same
  precision. With several hand-overs in one incident, their downtimes add up.
- data loss: of a failover, the WAL the old primary had written by the monitor's last reading
  of it past the LSN where Patroni promoted the new primary (Patroni's /history). It counts
  WAL, not rows: unacknowledged writes and checkpoints count too, so it is an upper bound on
  the acknowledged writes lost (zero rows may be behind it) as of that reading; WAL the old
  primary wrote after the monitor's last reading is not counted (at most one interval's).
  Unknown (empty) when Patroni's history did not show the promotion or the old primary was
  never read.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from clusters.models import Cluster, ClusterEvent, Incident

Kind = ClusterEvent.Kind
HANDOVERS = (Kind.FAILOVER, Kind.SWITCHOVER)
# Events this long before a hand-over tell its start (the old primary stopped answering).
LOOK_BACK = timedelta(minutes=2)
# An incident closes once the cluster has been healthy this long without a break.
CLOSE_AFTER = timedelta(minutes=2)
# The monitor's states in which clients' writes reach no primary.
WRITES_DOWN = (Cluster.State.DOWN, Cluster.State.FAILING_OVER)


def incident_for_event(*, cluster: Cluster, kind: str, at: datetime) -> Incident | None:
    """The incident a new event of `cluster` belongs to: the open one; a hand-over opens one
    when none is open. None for an event outside any incident."""
    if kind == Kind.FAILOVER:
        _end_planned(cluster, at)
    if kind in HANDOVERS:
        return _open(cluster=cluster, kind=kind, at=at, title=f"{kind} of {cluster.name}")
    return Incident.objects.filter(cluster=cluster, closed__isnull=True).first()


def _end_planned(cluster: Cluster, at: datetime) -> None:
    """A fault after a planned switchover is a story of its own (its own old primary to bring
    back, its own measures): the switchover's incident ends where the failover begins, and
    the events since the cluster was healthy again (the fault's: the old primary's node_down)
    are let go, for the failover's incident to take in (`_attach_recent`)."""
    planned = Incident.objects.filter(
        cluster=cluster, closed__isnull=True, kind=Incident.Kind.SWITCHOVER
    ).first()
    if planned is None:
        return
    Incident.objects.filter(pk=planned.pk, closed__isnull=True).update(closed=at)
    healthy = planned.details.get("healthy_since")
    cut = datetime.fromisoformat(healthy) if healthy else at - LOOK_BACK
    ClusterEvent.objects.filter(incident=planned, at__gte=cut).exclude(kind__in=HANDOVERS).update(
        incident=None
    )


def incident_handover_joined(*, incident: Incident, event: ClusterEvent) -> None:
    """A hand-over joined `incident`: it names the incident (an outage becomes this failover;
    a second hand-over is told after the first), and the events just before it join too."""
    changes: dict = {}
    if incident.kind == Incident.Kind.OUTAGE or not incident.new_primary:
        changes = {
            "kind": event.kind,
            "title": event.summary[:300],
            "old_primary": event.old_primary,
            "new_primary": event.new_primary,
        }
    elif event.new_primary and event.new_primary != incident.new_primary:
        changes = {
            "title": f"{incident.title}, then to {event.new_primary}"[:300],
            "new_primary": event.new_primary,
        }
    if changes:
        Incident.objects.filter(pk=incident.pk).update(**changes)
        for name, value in changes.items():
            setattr(incident, name, value)
    _attach_recent(incident, before=event.at)
    incident_measure(incident_id=incident.pk)


def incident_measure(*, incident_id: int | None) -> None:
    """Store the incident's downtime and data loss from its hand-overs' measures (see the
    module's docstring); an outage with no hand-over keeps what the monitor measured."""
    if incident_id is None:
        return
    handovers = list(
        ClusterEvent.objects.filter(incident_id=incident_id, kind__in=HANDOVERS).values_list(
            "downtime_s", "lost_bytes"
        )
    )
    if not handovers:
        return
    downtimes = [d for d, _ in handovers if d is not None]
    losses = [lost for _, lost in handovers if lost is not None]
    Incident.objects.filter(pk=incident_id).update(
        downtime_s=round(sum(downtimes), 1) if downtimes else None,
        lost_bytes=sum(losses) if losses else None,
    )


def incident_observe(
    *,
    cluster: Cluster,
    state: str,
    reasons: list[str],
    previous_state: str,
    last_checked: datetime | None,
    now: datetime,
    open_incident: Incident | None,
) -> Incident | None:
    """The monitor's pass over one cluster's incident; returns the incident open after it.

    Writes reaching no primary with none open opens an outage (its last healthy reading is
    the previous pass, when that one was not down). Writes back ends an outage's downtime. A
    healthy reading starts (or continues) the healthy stretch, CLOSE_AFTER of which closes the
    incident; any other state breaks the stretch. Costs no query unless something changes."""
    incident = open_incident
    if incident is None:
        if state not in WRITES_DOWN:
            return None
        was_up = previous_state not in (*WRITES_DOWN, Cluster.State.UNKNOWN)
        incident = _open(
            cluster=cluster,
            kind=Incident.Kind.OUTAGE,
            at=now,
            title=f"outage: {reasons[0]}" if reasons else "outage: writes reach no primary",
            details={"last_healthy": last_checked.isoformat() if was_up and last_checked else None},
        )
        _attach_recent(incident, before=now)
    details = dict(incident.details)
    closed = None
    if state in WRITES_DOWN:
        details.pop("healthy_since", None)
    else:
        if incident.kind == Incident.Kind.OUTAGE and not details.get("writes_back_at"):
            details["writes_back_at"] = now.isoformat()
        if state != Cluster.State.HEALTHY:
            details.pop("healthy_since", None)
        elif not details.get("healthy_since"):
            details["healthy_since"] = now.isoformat()
        elif now - datetime.fromisoformat(details["healthy_since"]) >= CLOSE_AFTER:
            closed = now
    if details == incident.details and closed is None:
        return incident
    changes: dict = {"details": details}
    if closed is not None:
        changes["closed"] = closed
    if incident.kind == Incident.Kind.OUTAGE and details.get("writes_back_at"):
        changes["downtime_s"] = _outage_downtime(details)
    # Conditional: a pass that outlived its lease must not reopen or rewrite a closed one.
    Incident.objects.filter(pk=incident.pk, closed__isnull=True).update(**changes)
    for name, value in changes.items():
        setattr(incident, name, value)
    return None if closed is not None else incident


def _outage_downtime(details: dict) -> float | None:
    """An outage's downtime: last healthy reading to the first with writes back."""
    if not details.get("last_healthy"):
        return None
    start = datetime.fromisoformat(details["last_healthy"])
    end = datetime.fromisoformat(details["writes_back_at"])
    return round((end - start).total_seconds(), 1)


def _open(
    *, cluster: Cluster, kind: str, at: datetime, title: str, details: dict | None = None
) -> Incident:
    """The cluster's open incident, opened now if there is none. Two workers racing: the
    partial unique constraint refuses the second insert, which then joins the first's."""
    found = Incident.objects.filter(cluster=cluster, closed__isnull=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():  # a savepoint: the refused insert leaves the caller's intact
            return Incident.objects.create(
                cluster=cluster, kind=kind, opened=at, title=title[:300], details=details or {}
            )
    except IntegrityError:
        return Incident.objects.get(cluster=cluster, closed__isnull=True)


def _attach_recent(incident: Incident, *, before: datetime) -> None:
    """Attach the cluster's loose events of the LOOK_BACK before `before` (the old primary's
    node_down, an alarm) and those since, not already in an incident; hand-overs that are
    not in an incident are history before incidents existed, and stay apart."""
    ClusterEvent.objects.filter(
        Q(at__gte=before - LOOK_BACK),
        cluster_id=incident.cluster_id,
        incident__isnull=True,
    ).exclude(kind__in=HANDOVERS).update(incident=incident)
