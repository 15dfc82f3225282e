"""Recording a cluster event: the one way jobs and the monitor write to a cluster's history.

Every event may be alerted on and sent to event subscriptions, so recording one also queues
its alerts and its deliveries; and it joins the cluster's open incident, a hand-over opening
one (clusters.alerts.incidents)."""

from datetime import datetime

from django.utils import timezone

from clusters.alerts.incidents import HANDOVERS, incident_for_event, incident_handover_joined
from clusters.alerts.tasks import alerts_enqueue
from clusters.models import Cluster, ClusterEvent
from clusters.subscriptions.tasks import subscriptions_enqueue


def event_record(
    cluster: Cluster,
    kind: str,
    summary: str,
    *,
    severity: str = ClusterEvent.Severity.INFO,
    at: datetime | None = None,
    **fields,
) -> ClusterEvent:
    """Store an event in its incident (if any) and queue its alerts and subscription
    deliveries once the transaction commits."""
    at = at or timezone.now()
    incident = incident_for_event(cluster=cluster, kind=kind, at=at)
    event = ClusterEvent.objects.create(
        cluster=cluster,
        kind=kind,
        severity=severity,
        at=at,
        summary=summary[:300],
        incident=incident,
        **fields,
    )
    if incident is not None and kind in HANDOVERS:
        incident_handover_joined(incident=incident, event=event)
    alerts_enqueue(event=event)
    subscriptions_enqueue(event=event)
    return event
