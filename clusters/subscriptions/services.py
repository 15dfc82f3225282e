"""Event subscriptions' services: `subscription_create`, `subscription_update`,
`subscription_secret_rotate`, `subscriptions_for`, `subscriptions_dispatch`,
`subscription_test_queue`. Pages and the API share them, and so their checks and messages.

A subscription's URL passes the same checks as an alert webhook's (clusters.alerts.targets:
http(s), no credentials in it, a public address unless HACENTER_WEBHOOK_ALLOWED_NETWORKS
allows its network); its secret is made here, never typed by anyone.
"""

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from clusters.alerts.rules import SEVERITY_RANK
from clusters.alerts.targets import validate_channel
from clusters.inventory.services import InvalidInput
from clusters.models import (
    AlertChannel,
    Cluster,
    ClusterEvent,
    DeliveryStatus,
    EventDelivery,
    EventSubscription,
)
from clusters.subscriptions.payload import TEST_KIND, event_payload, sample_payload

NAME_MAX_CHARS = 100  # EventSubscription.name's max_length
FIELDS = ("name", "url", "cluster", "kinds", "min_severity", "enabled")
Severity = ClusterEvent.Severity


def new_secret() -> str:
    """A signing secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def _clean(data: dict, *, partial: bool) -> dict:
    """The fields of `data` checked and typed (only those present when `partial`); raises
    InvalidInput naming every bad field. `cluster` is a cluster's id or None (all)."""
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        errors["non_field_errors"] = [
            f"Unknown field {', '.join(unknown)}: use {', '.join(FIELDS)}."
        ]
    for field in ("name", "url") if not partial else ():
        if field not in data:
            errors[field] = ["This field is required."]
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["Give the subscription a name, like 'incident bot'."]
        elif len(name.strip()) > NAME_MAX_CHARS:
            errors["name"] = [f"At most {NAME_MAX_CHARS} characters."]
        else:
            clean["name"] = name.strip()
    if "url" in data:
        url = data["url"]
        try:
            if not isinstance(url, str) or not url.strip():
                raise ValidationError("Give the receiver's URL, like https://hooks.example.com/…")
            validate_channel(AlertChannel.Kind.WEBHOOK, url.strip())
        except ValidationError as exc:
            errors["url"] = exc.messages
        else:
            clean["url"] = url.strip()
    if "cluster" in data:
        pk = data["cluster"]
        if pk is None:
            clean["cluster"] = None
        elif isinstance(pk, bool) or not isinstance(pk, int):
            errors["cluster"] = ["Expected a cluster's id, or null for all clusters."]
        elif (cluster := Cluster.objects.filter(pk=pk).first()) is None:
            errors["cluster"] = ["No cluster has this id."]
        else:
            clean["cluster"] = cluster
    if "kinds" in data:
        kinds = data["kinds"]
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            errors["kinds"] = ["Expected a list of event kinds; an empty list means all."]
        elif unknown_kinds := [k for k in kinds if k not in ClusterEvent.Kind.values]:
            errors["kinds"] = [
                f"Unknown event kind {k!r}: use {', '.join(ClusterEvent.Kind.values)}."
                for k in unknown_kinds
            ]
        else:
            clean["kinds"] = [k for k in ClusterEvent.Kind.values if k in kinds]  # sorted, once
    if "min_severity" in data:
        if data["min_severity"] not in Severity.values:
            errors["min_severity"] = ["Choose info, warning or critical."]
        else:
            clean["min_severity"] = data["min_severity"]
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            errors["enabled"] = ["Expected true or false."]
        else:
            clean["enabled"] = data["enabled"]
    if errors:
        raise InvalidInput(errors)
    return clean


def subscription_create(*, data: dict) -> EventSubscription:
    """Add a subscription from `data` (name, url, and optionally cluster, kinds,
    min_severity, enabled) with a new secret, which the caller shows once; raises
    InvalidInput keyed by field and creates nothing then."""
    clean = _clean(data, partial=False)
    return EventSubscription.objects.create(secret=new_secret(), **clean)


def subscription_update(*, subscription: EventSubscription, data: dict) -> EventSubscription:
    """Change the fields present in `data` after the same checks as a new subscription;
    raises InvalidInput keyed by field and changes nothing then. The secret never changes
    here (see subscription_secret_rotate)."""
    clean = _clean(data, partial=True)
    for field, value in clean.items():
        setattr(subscription, field, value)
    if clean:
        subscription.save(update_fields=list(clean))
    return subscription


def subscription_secret_rotate(*, subscription: EventSubscription) -> str:
    """Give the subscription a new secret and return it (shown once). Deliveries still
    queued are signed with the new one when they are sent."""
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret"])
    return subscription.secret


def subscription_enabled_set(*, subscription: EventSubscription, enabled: bool) -> bool:
    """Pause or resume; False when it already was so (a second click from a stale page must
    not flip it back, hence the conditional update)."""
    changed = EventSubscription.objects.filter(pk=subscription.pk, enabled=not enabled).update(
        enabled=enabled
    )
    subscription.enabled = enabled
    return bool(changed)


def subscriptions_for(event: ClusterEvent) -> QuerySet[EventSubscription]:
    """Enabled subscriptions of the event's cluster and global ones, listing its kind (or no
    kind: all), whose minimum severity is at or below the event's."""
    rank = SEVERITY_RANK.get(event.severity, SEVERITY_RANK[Severity.CRITICAL])
    wanted = [str(s) for s, r in SEVERITY_RANK.items() if r <= rank]
    return (
        EventSubscription.objects.filter(
            Q(cluster_id=event.cluster_id) | Q(cluster__isnull=True),
            enabled=True,
            min_severity__in=wanted,
        )
        .filter(Q(kinds=[]) | Q(kinds__contains=[event.kind]))
        .order_by("pk")
    )


def subscriptions_dispatch(*, event_id: int) -> list[int]:
    """Make one pending delivery per subscription that wants the event and return their ids
    (the caller queues an attempt for each). A subscription that has this event already (a
    redelivered task) gets no second one."""
    event = ClusterEvent.objects.select_related("cluster").filter(pk=event_id).first()
    if event is None:
        return []  # deleted with its cluster before the worker ran
    payload = event_payload(event)
    made = []
    for subscription in subscriptions_for(event):
        with transaction.atomic():  # get_or_create's race with a twin task ends in a get
            delivery, created = EventDelivery.objects.get_or_create(
                subscription=subscription,
                event=event,
                defaults={"kind": event.kind, "payload": payload},
            )
        if created:
            made.append(delivery.pk)
    return made


def subscription_test_queue(*, subscription: EventSubscription) -> EventDelivery:
    """A pending delivery of a test event (kind "test"), sent even while the subscription is
    paused: an admin asked for it. The caller queues its attempt after commit."""
    return EventDelivery.objects.create(
        subscription=subscription,
        event=None,
        kind=TEST_KIND,
        payload=sample_payload(subscription),
        status=DeliveryStatus.PENDING,
    )


# A queued attempt not made this long after it was due was lost (a worker died mid-attempt, or
# the broker lost the retry): it is queued again. Longer than a POST's timeout and a busy queue.
OVERDUE_GRACE = timedelta(minutes=2)
# Finished deliveries are history: kept this long for the subscription's page, then deleted.
KEEP_FINISHED = timedelta(days=30)


def deliveries_overdue(
    *, delays_s: tuple[int, ...], now: datetime | None = None
) -> list[tuple[int, int]]:
    """(delivery id, attempts made) of each active delivery whose next attempt is overdue:
    never tried and made more than OVERDUE_GRACE ago, or tried k times and its last attempt
    older than the k-th retry delay plus the grace."""
    now = now or timezone.now()
    overdue = Q(attempts=0, at__lt=now - OVERDUE_GRACE)
    for tried, delay in enumerate(delays_s, start=1):
        due = now - timedelta(seconds=delay) - OVERDUE_GRACE
        overdue |= Q(attempts=tried, last_attempt__lt=due)
    return list(
        EventDelivery.objects.filter(overdue, status__in=DeliveryStatus.active())
        .order_by("pk")
        .values_list("pk", "attempts")
    )


def deliveries_prune(*, now: datetime | None = None) -> int:
    """Delete finished deliveries older than KEEP_FINISHED; returns how many."""
    now = now or timezone.now()
    deleted, _ = EventDelivery.objects.filter(
        status__in=DeliveryStatus.terminal(), at__lt=now - KEEP_FINISHED
    ).delete()
    return deleted
