"""The JSON an event subscription receives: the event's public fields (as the API's events
answer shows them), its cluster by id and name, the time in ISO 8601 UTC."""

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from clusters.models import ClusterEvent, EventSubscription

TEST_KIND = "test"  # EventDelivery.kind and the payload's kind of a test delivery


def iso_utc(at: datetime) -> str:
    """2026-01-31T14:05:00.123456Z: UTC, whatever the console's time zone."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_payload(event: ClusterEvent) -> dict[str, Any]:
    """An event as subscribers receive it: the fields GET /api/v1/clusters/{id}/events/
    answers (events hold names, timings and job ids, no secrets), plus its cluster."""
    return {
        "id": event.pk,
        "cluster": {"id": event.cluster_id, "name": event.cluster.name},
        "kind": event.kind,
        "severity": event.severity,
        "at": iso_utc(event.at),
        "summary": event.summary,
        "node": event.node or None,
        "old_primary": event.old_primary or None,
        "new_primary": event.new_primary or None,
        "downtime_s": event.downtime_s,
        "lost_bytes": event.lost_bytes,
        "details": event.details,
    }


def sample_payload(subscription: EventSubscription) -> dict[str, Any]:
    """What the "send a test event" button sends: an event's shape, kind "test", id null."""
    cluster = subscription.cluster
    return {
        "id": None,
        "cluster": {"id": cluster.pk, "name": cluster.name} if cluster else None,
        "kind": TEST_KIND,
        "severity": ClusterEvent.Severity.INFO.value,
        "at": iso_utc(timezone.now()),
        "summary": f"A test event from HA Center for the subscription {subscription.name!r}.",
        "node": None,
        "old_primary": None,
        "new_primary": None,
        "downtime_s": None,
        "lost_bytes": None,
        "details": {},
    }
