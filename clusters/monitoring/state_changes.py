"""What the monitor keeps of a cluster's judged state: the state, why (the reasons
`health.derive_state` gives, shown on the cluster page, the dashboard and in the API), since
when, and one event per change of state, which alert channels deliver by its severity."""

from datetime import datetime

from clusters.alerts.events import event_record
from clusters.models import Cluster, ClusterEvent
from clusters.monitoring import health

Kind, Severity = ClusterEvent.Kind, ClusterEvent.Severity


# A state change's event severity, by the new state: an outage pages someone, trouble that still
# takes writes warns, the way back (or a pause an operator chose) informs.
STATE_SEVERITY = {
    health.DOWN: Severity.CRITICAL,
    health.FAILING_OVER: Severity.CRITICAL,  # nobody takes writes until Patroni elects
    health.DEGRADED: Severity.WARNING,
    health.UNKNOWN: Severity.WARNING,  # perhaps the console's own network: it cannot tell
    health.MAINTENANCE: Severity.INFO,
    health.HEALTHY: Severity.INFO,
}


def state_changes(
    cluster: Cluster, state: str, reasons: list[str], paused: bool, now: datetime
) -> dict:
    """The cluster row's changes for this judgement (state, reasons, since when, pause), kept on
    `cluster` too; a change of state is an event.

    A cluster never judged before (`state_since` empty: just set up or adopted, or judged
    before the field existed) gets no event: its first state is not a change the monitor saw,
    and setup's own "healthy" → first reading would otherwise page on every new cluster."""
    changes: dict = {}
    if cluster.state_since is None:
        changes.update(state=state, state_since=now)
    elif state != cluster.state:
        _state_changed_event(cluster, state, reasons, now)
        changes.update(state=state, state_since=now)
    if paused != cluster.maintenance:
        changes["maintenance"] = paused
    if reasons != cluster.state_reasons:
        changes["state_reasons"] = reasons
    for name, value in changes.items():
        setattr(cluster, name, value)
    return changes


def _state_changed_event(cluster: Cluster, state: str, reasons: list[str], now: datetime) -> None:
    """One event per change of state, its summary the new state and the first reason:
    "Down (was healthy for 3 h): HAProxy routes writes to no server: clients cannot write."."""
    old = cluster.state
    lasted = (now - cluster.state_since).total_seconds()
    was = f"was {old.replace('_', ' ')} for {duration_text(lasted)}"
    label = state.replace("_", " ").capitalize()
    summary = f"{label} ({was}): {reasons[0]}" if reasons else f"{label} again ({was})."
    event_record(
        cluster,
        Kind.STATE_CHANGED,
        summary,
        severity=STATE_SEVERITY.get(state, Severity.WARNING),
        at=now,
        details={"from": old, "to": state, "reasons": reasons, "lasted_s": round(lasted, 1)},
    )


def duration_text(seconds: float) -> str:
    """A lapse for people: "40 s", "4 min", "3 h", "2 days" (events and the "Why" box)."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {'day' if unit == 'days' and count == 1 else unit}"
    return f"{int(seconds)} s"
