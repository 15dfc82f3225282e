"""Recording a cluster event: the one way jobs and the monitor write to a cluster's history.

Every event may be alerted on and sent to event subscriptions, so recording one also queues
its alerts and its deliveries."""

from datetime import datetime

from django.utils import timezone

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
    """Store an event and queue its alerts and subscription deliveries once the transaction
    commits."""
    event = ClusterEvent.objects.create(
        cluster=cluster,
        kind=kind,
        severity=severity,
        at=at or timezone.now(),
        summary=summary[:300],
        **fields,
    )
    alerts_enqueue(event=event)
    subscriptions_enqueue(event=event)
    return event
