"""REST endpoints for event subscriptions (signed webhooks out: docs/webhooks.md).

GET    /api/v1/subscriptions/                      viewers: every subscription, URL shortened
POST   /api/v1/subscriptions/                      admins: {name, url, cluster?, kinds?,
                                                   min_severity?, enabled?} -> 201 {..., secret}
GET    /api/v1/subscriptions/{id}/                 viewers
PATCH  /api/v1/subscriptions/{id}/                 admins: the fields to change
DELETE /api/v1/subscriptions/{id}/                 admins: it and its deliveries
POST   /api/v1/subscriptions/{id}/rotate-secret/   admins -> {id, secret} (shown once)
POST   /api/v1/subscriptions/{id}/test/            admins -> 202: a test delivery is queued
GET    /api/v1/subscriptions/{id}/deliveries/      viewers: the latest, newest first

Every change and refusal is audited, never with the URL or the secret.
"""

from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from ninja import Router, Status
from ninja.decorators import decorate_view

from clusters.access.audit import audit, refused
from clusters.alerts.targets import url_display
from clusters.inventory.services import InvalidInput
from clusters.models import EventDelivery, EventSubscription
from clusters.subscriptions import services
from clusters.subscriptions.payload import iso_utc
from clusters.subscriptions.tasks import delivery_enqueue
from clusters.web.api import schemas_hooks as h
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import ADMIN_AUTH, VIEWER_AUTH, ApiError, validated_body

router = Router(tags=["subscriptions"])

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
LIMIT = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    }
]


def subscription_json(subscription: EventSubscription) -> dict:
    """A subscription as the API answers it: the URL shortened, never the secret."""
    cluster = subscription.cluster
    return {
        "id": subscription.pk,
        "name": subscription.name,
        "url_display": url_display(subscription.url),
        "cluster": {"id": cluster.pk, "name": cluster.name} if cluster else None,
        "kinds": subscription.kinds,
        "min_severity": subscription.min_severity,
        "enabled": subscription.enabled,
        "created": iso_utc(subscription.created),
    }


def delivery_json(delivery: EventDelivery) -> dict:
    return {
        "id": delivery.pk,
        "delivery_id": str(delivery.delivery_id),
        "event": delivery.event_id,
        "kind": delivery.kind,
        "at": iso_utc(delivery.at),
        "last_attempt": iso_utc(delivery.last_attempt) if delivery.last_attempt else None,
        "status": delivery.status,
        "http_status": delivery.http_status,
        "attempts": delivery.attempts,
        "error": delivery.error,
    }


def audit_target(subscription: EventSubscription) -> str:
    return f"event subscription {subscription.pk} ({subscription.name})"


def audit_params(subscription: EventSubscription) -> dict:
    """What an audit entry tells of a subscription: never its URL (a token is often in its
    path) or its secret."""
    return {
        "name": subscription.name,
        "cluster": subscription.cluster.name if subscription.cluster else None,
        "kinds": subscription.kinds,
        "min_severity": subscription.min_severity,
        "enabled": subscription.enabled,
    }


def _subscriptions():
    return EventSubscription.objects.select_related("cluster").order_by("pk")


@router.get(
    "/subscriptions/",
    auth=VIEWER_AUTH,
    response={200: list[h.SubscriptionOut], **errors(401, 403)},
    url_name="api-subscriptions",
)
@decorate_view(never_cache)  # one URL with the POST, whose answer holds the secret
def subscriptions(request: HttpRequest):
    """Every event subscription (URLs shortened, secrets never shown)."""
    return [subscription_json(s) for s in _subscriptions()]


@router.post(
    "/subscriptions/",
    auth=ADMIN_AUTH,
    response={201: h.NewSubscriptionOut, **errors(400, 401, 403, 413)},
    openapi_extra=body_of(h.SubscriptionIn),
    url_name="api-subscriptions",
)
@decorate_view(never_cache)  # the answer holds the secret
def subscription_create(request: HttpRequest):
    """Subscribe a URL to cluster events; the signing secret is in this answer only."""
    try:
        # The fields sent, unknown ones too: the service refuses those (schemas_hooks).
        data = validated_body(request, h.SubscriptionIn).model_dump(mode="json", exclude_unset=True)
        subscription = services.subscription_create(data=data)
    except InvalidInput as exc:
        audit(request, action="event_subscription.create", result=refused(exc.field_errors))
        raise ApiError(400, "The subscription was not created.", exc.field_errors) from None
    audit(
        request,
        action="event_subscription.create",
        target=audit_target(subscription),
        params=audit_params(subscription),
    )
    answer = subscription_json(subscription) | {"secret": subscription.secret}
    return Status(201, answer)


@router.get(
    "/subscriptions/{int:pk}/",
    auth=VIEWER_AUTH,
    response={200: h.SubscriptionOut, **errors(401, 403, 404)},
    url_name="api-subscription",
)
def subscription(request: HttpRequest, pk: int):
    """One subscription."""
    return subscription_json(get_object_or_404(_subscriptions(), pk=pk))


@router.patch(
    "/subscriptions/{int:pk}/",
    auth=ADMIN_AUTH,
    response={200: h.SubscriptionOut, **errors(400, 401, 403, 404, 413)},
    openapi_extra=body_of(h.SubscriptionPatchIn),
    url_name="api-subscription",
)
def subscription_update(request: HttpRequest, pk: int):
    """Change the fields sent (name, url, cluster, kinds, min_severity, enabled); the
    secret changes through rotate-secret only."""
    found = get_object_or_404(_subscriptions(), pk=pk)
    try:
        # Only the fields sent (a null `cluster` is one: every cluster), unknown ones too: the
        # service refuses those (schemas_hooks).
        data = validated_body(request, h.SubscriptionPatchIn).model_dump(
            mode="json", exclude_unset=True
        )
        services.subscription_update(subscription=found, data=data)
    except InvalidInput as exc:
        audit(
            request,
            action="event_subscription.update",
            target=audit_target(found),
            result=refused(exc.field_errors),
        )
        raise ApiError(400, "The subscription was not changed.", exc.field_errors) from None
    # Which fields changed, by name: the URL's value never goes in the audit trail.
    params = audit_params(found) | {"changed": sorted(data)}
    audit(request, action="event_subscription.update", target=audit_target(found), params=params)
    return subscription_json(found)


@router.delete(
    "/subscriptions/{int:pk}/",
    auth=ADMIN_AUTH,
    response={200: h.SubscriptionOut, **errors(401, 403, 404)},
    url_name="api-subscription",
)
def subscription_delete(request: HttpRequest, pk: int):
    """Remove a subscription and its deliveries; answers what it was."""
    found = get_object_or_404(_subscriptions(), pk=pk)
    answer = subscription_json(found)
    target, params = audit_target(found), audit_params(found)
    found.delete()
    audit(request, action="event_subscription.delete", target=target, params=params)
    return answer


@router.post(
    "/subscriptions/{int:pk}/rotate-secret/",
    auth=ADMIN_AUTH,
    response={200: h.SecretOut, **errors(401, 403, 404)},
    url_name="api-subscription-rotate-secret",
)
@decorate_view(never_cache)  # the answer holds the secret
def subscription_rotate_secret(request: HttpRequest, pk: int):
    """Give the subscription a new signing secret, answered here only; the old one stops
    signing at once (deliveries still queued are signed with the new one)."""
    found = get_object_or_404(_subscriptions(), pk=pk)
    secret = services.subscription_secret_rotate(subscription=found)
    audit(request, action="event_subscription.rotate_secret", target=audit_target(found))
    return {"id": found.pk, "secret": secret}


@router.post(
    "/subscriptions/{int:pk}/test/",
    auth=ADMIN_AUTH,
    response={202: h.EventDeliveryOut, **errors(401, 403, 404)},
    url_name="api-subscription-test",
)
def subscription_test(request: HttpRequest, pk: int):
    """Queue a test event (kind "test") to the subscription, even while it is paused; the
    worker sends it, and its result shows in the deliveries."""
    found = get_object_or_404(_subscriptions(), pk=pk)
    with transaction.atomic():
        delivery = services.subscription_test_queue(subscription=found)
        delivery_enqueue(delivery_id=delivery.pk)
    audit(request, action="event_subscription.test", target=audit_target(found))
    return Status(202, delivery_json(delivery))


@router.get(
    "/subscriptions/{int:pk}/deliveries/",
    auth=VIEWER_AUTH,
    response={200: list[h.EventDeliveryOut], **errors(400, 401, 403, 404)},
    openapi_extra={"parameters": LIMIT},
    url_name="api-subscription-deliveries",
)
def subscription_deliveries(request: HttpRequest, pk: int):
    """The subscription's latest deliveries, newest first (`limit=`, 1 to 500, 50)."""
    found = get_object_or_404(EventSubscription, pk=pk)
    raw = request.GET.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        limit = int(raw) if raw.isdigit() else 0
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(
                400, "Bad query.", {"limit": [f"Expected a whole number from 1 to {MAX_LIMIT}."]}
            )
    deliveries = found.deliveries.order_by("-at", "-pk")[:limit]
    return [delivery_json(d) for d in deliveries]
