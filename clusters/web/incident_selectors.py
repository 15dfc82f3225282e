"""An incident told for the page and the API: its timeline, its measures and the one recommended
next action, from the database only (clusters.alerts.incidents groups the events)."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters.alerts.incidents import CLOSE_AFTER, HANDOVERS
from clusters.models import ClusterEvent, Incident, NodeStatus
from jobs.models import Job, JobStatus

Kind = ClusterEvent.Kind
MILESTONE_KEYS = ("last_healthy", "detected", "promoted", "routed", "old_back", "rebuilt")
MILESTONE_STATES = ("done", "not_yet", "not_recorded", "not_needed")
RECOMMENDATIONS = ("rebuild", "bring_back", "replace", "wait", "investigate", "none")
# A node back this recently and not streaming yet may still be rejoining (Patroni rewinds it):
# give it this long before recommending a rebuild.
REJOIN_GRACE = timedelta(seconds=90)
# A server that answers again starts its Patroni within seconds of sshd (the units start at
# boot): past this long, with PostgreSQL still silent, it will not come back by itself.
HOST_UP_GRACE = timedelta(seconds=60)
# A node silent this long is more likely gone than rebooting: replacing it comes first.
REPLACE_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class Milestone:
    """One step of an incident's story: when, and how long after the fault."""

    key: str  # last_healthy, detected, promoted, routed, old_back, rebuilt
    label: str
    at: datetime | None
    after_s: float | None  # seconds since the fault (the last healthy reading)
    # done; not_yet (open, still to come); not_recorded (closed, never seen); not_needed
    state: str
    note: str = ""


@dataclass(frozen=True)
class Recommendation:
    """The one next action an operator should take, in words, with where to take it."""

    code: str  # rebuild, bring_back, replace, wait, investigate, none
    text: str
    node: str | None = None
    url: str | None = None  # the console's page for it (a confirmation page)
    job_kind: str | None = None  # the job it starts (POST /api/v1/clusters/{id}/jobs/)


def _time(value: str | None) -> datetime | None:
    """A time the monitor stored in a JSON detail (ISO 8601), or None."""
    return parse_datetime(value) if value else None


def incident_events(incident: Incident) -> list[ClusterEvent]:
    """The incident's events, oldest first."""
    return list(incident.events.order_by("at", "pk"))


def incident_timeline(
    incident: Incident, events: list[ClusterEvent], rebuilt: Job | None
) -> list[Milestone]:
    """last healthy → detected → promoted → HAProxy routed writes → old primary back →
    rebuilt. Times come from the monitor's readings (its hand-over event's details, its
    events), the rebuild from the job that finished it. The fault is placed at the last
    healthy reading (it happened between that reading and the next), so `after_s` counts from
    there; without it, from the detection."""
    handover = next((e for e in events if e.kind in HANDOVERS), None)
    details = handover.details if handover else {}
    old, new = incident.old_primary, incident.new_primary
    last_healthy = _time(details.get("old_last_healthy")) or _time(
        incident.details.get("last_healthy")
    )
    downs = [e.at for e in events if e.kind == Kind.NODE_DOWN and (not old or e.node == old)]
    detected = min(
        [*downs, *filter(None, [_time(details.get("detected_at")), incident.opened])],
        default=None,
    )
    steps: list[tuple[str, str, datetime | None, str]] = [
        ("last_healthy", f"{old or 'the cluster'} last seen healthy", last_healthy, ""),
        ("detected", "fault detected by the monitor", detected, ""),
    ]
    if incident.kind == Incident.Kind.OUTAGE:
        writes_back = _time(incident.details.get("writes_back_at"))
        steps.append(("routed", "writes reach a primary again", writes_back, ""))
    else:
        promoted_label = (
            f"leader key expired, {new} promoted"
            if incident.kind == Incident.Kind.FAILOVER
            else f"{new} promoted"
        )
        steps.append(("promoted", promoted_label, _time(details.get("promoted_at")), ""))
        routed_label = f"HAProxy routes writes to {new}"
        steps.append(("routed", routed_label, _time(details.get("proxy_routed_at")), ""))
        back = next(
            (
                e
                for e in events
                if e.kind in (Kind.NODE_UP, Kind.REJOIN)
                and e.node == old
                and (handover is None or e.at >= handover.at)
            ),
            None,
        )
        note = ""
        if back is not None:
            note = "streams as a standby" if back.kind == Kind.REJOIN else "answers again"
        steps.append(("old_back", f"{old} back", back.at if back else None, note))
        rejoined = any(e.kind == Kind.REJOIN and e.node == old for e in events)
        if rebuilt is not None:
            rebuild_step = (rebuilt.finished, f"job #{rebuilt.pk}")
        else:  # a note without a time: the rebuild was not needed
            rebuild_step = (None, "it rejoined by itself" if rejoined else "")
        steps.append(("rebuilt", f"{old} rebuilt as a standby", *rebuild_step))
    start = last_healthy or detected
    milestones = []
    for key, label, at, note in steps:
        if at is not None:
            state = "done"
        elif key == "rebuilt" and note:
            state = "not_needed"
        else:
            state = "not_yet" if incident.is_open else "not_recorded"
        after = round((at - start).total_seconds(), 1) if at and start else None
        milestones.append(Milestone(key, label, at, after, state, note))
    return milestones


def incident_rebuild(incident: Incident) -> Job | None:
    """The rebuild of the old primary that succeeded after the incident opened, if any."""
    if not incident.old_primary:
        return None
    return (
        Job.objects.filter(
            cluster_id=incident.cluster_id,
            kind="rebuild",
            node__name=incident.old_primary,
            status=JobStatus.SUCCEEDED,
            finished__gte=incident.opened,
        )
        .order_by("finished")
        .first()
    )


def incident_recommendation(
    incident: Incident,
    old_status: NodeStatus | None,
    timeline: list[Milestone],
    now: datetime | None = None,
) -> Recommendation:
    """The next action from the current facts: resolved when closed; the old primary fenced,
    or back but not streaming (past a rejoin's grace) → rebuild it; not back → bring it back
    (or, silent for long, replace it); streaming again → wait for the incident to close; an
    outage with no hand-over → look at why writes reach no primary. A server that answers
    while its PostgreSQL does not (past a boot's grace) → rebuild it."""
    now = now or timezone.now()
    pk, old = incident.cluster_id, incident.old_primary
    if not incident.is_open:
        return Recommendation("none", "Resolved: nothing to do.")
    if not old or old_status is None:
        if incident.kind == Incident.Kind.OUTAGE:
            return Recommendation(
                "investigate",
                "Writes reach no primary: see why in the cluster's state; Patroni promotes a "
                "standby by itself if one qualifies.",
            )
        return Recommendation("wait", "Waiting for the monitor's next reading.")
    rebuild = Recommendation(
        "rebuild",
        f"Rebuild {old} as standby",
        node=old,
        url=reverse("cluster-action-confirm", args=[pk, "rebuild"]) + f"?node={old}",
        job_kind="rebuild",
    )
    if old_status.fenced:
        reason = old_status.fence_reason or "kept out by the sentinel"
        return replace(rebuild, text=f"Rebuild {old} as standby: it is fenced ({reason}).")
    if old_status.state == "down" and old_status.host_up_since is not None:
        up_for = now - old_status.host_up_since
        if up_for < HOST_UP_GRACE:
            return Recommendation(
                "wait",
                f"{old}'s server answers again; waiting for its Patroni to start. Rebuild it if "
                f"PostgreSQL does not answer within {int(HOST_UP_GRACE.total_seconds())} s.",
                node=old,
            )
        return replace(
            rebuild,
            text=f"Rebuild {old} as standby: its server answers but Patroni and PostgreSQL have "
            f"not started for {int(up_for.total_seconds())} s.",
        )
    if old_status.state == "down" or old_status.last_seen is None:
        silent = now - old_status.last_seen if old_status.last_seen else None
        if silent is not None and silent >= REPLACE_AFTER:
            minutes = int(silent.total_seconds() // 60)
            return Recommendation(
                "replace",
                f"Replace {old}: it has not answered for {minutes} min (or bring it back: it "
                "will rejoin by itself).",
                node=old,
                url=reverse("node-replace", args=[pk, old]),
                job_kind="replace_node",
            )
        return Recommendation(
            "bring_back",
            f"Bring {old} back (power, network); it will rejoin by itself.",
            node=old,
        )
    if old_status.role == NodeStatus.Role.PRIMARY:
        return Recommendation("wait", f"{old} leads again; waiting for the cluster to settle.")
    if old_status.state != "streaming":
        if any(m.key == "rebuilt" and m.state == "done" for m in timeline):
            # The job verified it streams; the monitor's reading of it may be a pass behind.
            return Recommendation(
                "wait", f"{old} was rebuilt; waiting for the monitor to see it stream.", node=old
            )
        back = next((m.at for m in timeline if m.key == "old_back" and m.at), None)
        if back is not None and now - back < REJOIN_GRACE:
            return Recommendation(
                "wait",
                f"{old} is back; Patroni is rejoining it. Rebuild it if it does not stream "
                f"within {int(REJOIN_GRACE.total_seconds())} s.",
                node=old,
            )
        return replace(rebuild, text=f"Rebuild {old} as standby: it is back but does not stream.")
    minutes = int(CLOSE_AFTER.total_seconds() // 60)
    return Recommendation(
        "wait",
        f"Nothing to do: {old} streams again. The incident closes after {minutes} min healthy.",
        node=old,
    )


def incident_story(incident: Incident, now: datetime | None = None) -> dict:
    """Everything the page and the API tell of one incident."""
    events = incident_events(incident)
    timeline = incident_timeline(incident, events, incident_rebuild(incident))
    old_status = None
    if incident.old_primary:
        old_status = NodeStatus.objects.filter(
            node__cluster_id=incident.cluster_id, node__name=incident.old_primary
        ).first()
    return {
        "incident": incident,
        "events": events,
        "timeline": timeline,
        "recommendation": incident_recommendation(incident, old_status, timeline, now),
    }


def latest_incident(cluster_id: int) -> Incident | None:
    """The cluster's open incident, else its latest closed one."""
    found = Incident.objects.filter(cluster_id=cluster_id)
    return found.filter(closed__isnull=True).first() or found.order_by("-opened").first()


def events_grouped(events: list[ClusterEvent]) -> list[dict]:
    """The events list with each incident as one row (placed at its newest event) and its
    events under it; loose events stay rows of their own. `events` is newest first."""
    rows: list[dict] = []
    groups: dict[int, dict] = {}
    for event in events:
        if event.incident_id is None:
            rows.append({"event": event})
        elif event.incident_id in groups:
            groups[event.incident_id]["events"].append(event)
        else:
            groups[event.incident_id] = {"incident": event.incident, "events": [event]}
            rows.append(groups[event.incident_id])
    return rows
