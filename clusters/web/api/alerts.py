"""REST endpoints for alert channels: the twins of the alerts page (clusters.web.alert_views),
with its services (clusters.alerts.rules), roles and audit entries.

GET    /api/v1/alert-channels/                   (viewer) the channels
POST   /api/v1/alert-channels/                   (admin)  {kind, target, cluster, min_severity}
GET    /api/v1/alert-channels/{id}/              (viewer) one channel
PATCH  /api/v1/alert-channels/{id}/              (admin)  {target, min_severity, enabled}
DELETE /api/v1/alert-channels/{id}/              (admin)  remove it and its deliveries
POST   /api/v1/alert-channels/{id}/test/         (admin)  queue a test alert -> 202
GET    /api/v1/alert-channels/{id}/deliveries/   (viewer) the latest deliveries, ?limit=

A webhook's URL is never answered, logged or audited in full: answers show it as the page
does (`target_display`: scheme://host/…), as its path usually holds the receiver's token.
A channel's cluster is named by its name, as the answers name it (and as the token API names
a user): a script can send back what it read.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, has_role
from clusters.alerts.rules import (
    alert_channel_create,
    alert_channel_enabled_set,
    alert_channel_update,
)
from clusters.alerts.targets import target_display
from clusters.alerts.tasks import send_test_alert
from clusters.inventory.services import InvalidInput
from clusters.models import AlertChannel, AlertDelivery, Cluster
from clusters.web.api import schemas_admin as s
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import ADMIN_AUTH, VIEWER_AUTH, ApiError, validated_body

router = Router(tags=["alerts"])

DEFAULT_DELIVERIES, MAX_DELIVERIES = 50, 200
# What PATCH may change (its schema's fields); a channel's kind and cluster stay (remove it
# and add another).
PATCHABLE = tuple(s.AlertChannelPatchIn.model_fields)

DELIVERIES_QUERY = [
    {
        "name": "limit",
        "in": "query",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_DELIVERIES,
            "default": DEFAULT_DELIVERIES,
        },
        "description": "How many of the latest deliveries, newest first.",
    }
]


def _channels() -> QuerySet[AlertChannel]:
    """The channels with their cluster (its name is in every answer)."""
    return AlertChannel.objects.select_related("cluster")


def last_deliveries(channel_ids: Iterable[int]) -> dict[int, AlertDelivery]:
    """Each channel's latest delivery, in one query (PostgreSQL's DISTINCT ON)."""
    latest = (
        AlertDelivery.objects.filter(channel_id__in=list(channel_ids))
        .order_by("channel_id", "-at", "-pk")
        .distinct("channel_id")
    )
    return {d.channel_id: d for d in latest}


def channel_json(channel: AlertChannel, last: AlertDelivery | None) -> dict:
    """A channel as the API answers it: the target as the page shows it, never in full."""
    return {
        "id": channel.pk,
        "kind": channel.kind,
        "cluster": channel.cluster.name if channel.cluster_id else None,
        "target": target_display(channel),
        "min_severity": channel.min_severity,
        "enabled": channel.enabled,
        "created": channel.created,
        "last_delivery": (
            {"status": last.status, "at": last.at, "error": last.error} if last else None
        ),
    }


def _one_json(channel: AlertChannel) -> dict:
    """One channel with its latest delivery."""
    return channel_json(channel, last_deliveries([channel.pk]).get(channel.pk))


def delivery_json(delivery: AlertDelivery, *, admin: bool) -> dict:
    """A delivery as the API answers it; what the target answered (`detail`) to admins only,
    as on the page (an internal service's answer must not reach viewers)."""
    event = delivery.event
    return {
        "id": delivery.pk,
        "at": delivery.at,
        "status": delivery.status,
        "error": delivery.error,
        "detail": delivery.detail if admin else None,
        "event": {"id": event.pk, "kind": event.kind, "summary": event.summary} if event else None,
    }


def _target(channel_id: int) -> str:
    """The audit entries' target, as the page writes it."""
    return f"alert channel {channel_id}"


@router.get(
    "/alert-channels/",
    auth=VIEWER_AUTH,
    response={200: list[s.AlertChannelOut], **errors(401, 403)},
    url_name="api-alert-channels",
)
def alert_channels(request: HttpRequest):
    """The alert channels, by cluster name (every cluster's last), each with its latest
    delivery; a webhook shown as scheme://host/…"""
    channels = list(_channels().order_by("cluster__name", "pk"))
    last = last_deliveries(c.pk for c in channels)
    return [channel_json(c, last.get(c.pk)) for c in channels]


def _refusals(exc: InvalidInput | ValidationError) -> dict[str, list[str]]:
    """The field errors of a refusal: the schema's (InvalidInput) or the services' (Django's
    ValidationError, keyed by field)."""
    return exc.field_errors if isinstance(exc, InvalidInput) else exc.message_dict


def _cluster_named(name: str | None) -> Cluster | None:
    """The cluster `name` names (None or "": every cluster); ValidationError if none has it."""
    if not name:
        return None
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        raise ValidationError({"cluster": [f"No cluster is named {name!r}."]})
    return cluster


@router.post(
    "/alert-channels/",
    auth=ADMIN_AUTH,
    response={201: s.AlertChannelOut, **errors(400, 401, 403, 413)},
    openapi_extra=body_of(s.AlertChannelIn),
    url_name="api-alert-channels",
)
def alert_channel_add(request: HttpRequest):
    """Add a channel (admins): `{kind: email|webhook, target, cluster (a name; null: every
    cluster), min_severity (warning when absent)}`; a webhook must point to a public address
    or an allow-listed network, as on the page."""
    try:
        body = validated_body(request, s.AlertChannelIn).model_dump(mode="json")
        cluster = _cluster_named(body["cluster"])
        channel = alert_channel_create(
            kind=body["kind"],
            target=body["target"],
            cluster=cluster,
            min_severity=body["min_severity"],
        )
    except (InvalidInput, ValidationError) as exc:
        # No message quotes a webhook's URL (the schema's quote no value, nor do those of
        # clusters.alerts.targets), nor does the audit row, which names the refused fields only.
        wrong = _refusals(exc)
        audit(request, action="alert_channel.create", result=refused(wrong))
        raise ApiError(400, "The alert channel was not added.", wrong) from None
    audit(
        request,
        action="alert_channel.create",
        target=_target(channel.pk),
        # The target is left out: a webhook URL often carries a token.
        params={"kind": channel.kind, "cluster": cluster.name if cluster else None},
    )
    return Status(201, channel_json(channel, None))


@router.get(
    "/alert-channels/{int:pk}/",
    auth=VIEWER_AUTH,
    response={200: s.AlertChannelOut, **errors(401, 403, 404)},
    url_name="api-alert-channel",
)
def alert_channel(request: HttpRequest, pk: int):
    """One channel with its latest delivery."""
    return _one_json(get_object_or_404(_channels(), pk=pk))


# The words for a field a PATCH does not take (the schema refuses it, each named).
NOT_CHANGEABLE = "A channel's kind and cluster cannot change: add a new channel."
UNKNOWN_FIELD = f"Unknown field; a channel's {', '.join(PATCHABLE)} may change."


def _said(field: str, messages: list[str]) -> list[str]:
    """A PATCH refusal's messages, with words for a field the schema does not declare: one a
    channel keeps (kind, cluster) or does not have."""
    if field in PATCHABLE or field == "non_field_errors":
        return messages
    return [NOT_CHANGEABLE if field in ("kind", "cluster") else UNKNOWN_FIELD]


def _patch_body(request: HttpRequest) -> dict:
    """The fields a PATCH changes: those sent, null aside (a null field stays, as the API has
    always said); InvalidInput naming each wrong field, or saying there is nothing to change."""
    try:
        body = validated_body(request, s.AlertChannelPatchIn)
    except InvalidInput as exc:
        raise InvalidInput({f: _said(f, m) for f, m in exc.field_errors.items()}) from None
    sent = body.model_dump(mode="json", exclude_none=True)
    if not sent:
        nothing = f"Nothing to change: send {', '.join(PATCHABLE)}."
        raise InvalidInput({"non_field_errors": [nothing]})
    return sent


@router.patch(
    "/alert-channels/{int:pk}/",
    auth=ADMIN_AUTH,
    response={200: s.AlertChannelOut, **errors(400, 401, 403, 404, 413)},
    openapi_extra=body_of(s.AlertChannelPatchIn),
    url_name="api-alert-channel",
)
def alert_channel_change(request: HttpRequest, pk: int):
    """Change a channel (admins): its `target` and `min_severity` (checked as on the page's
    edit form), and `enabled` (false pauses it, true resumes it, as the page's Pause button);
    absent or null fields stay. All or nothing: a refused field changes nothing."""
    channel = get_object_or_404(_channels(), pk=pk)
    where = _target(channel.pk)
    try:
        data = _patch_body(request)
        updating = "target" in data or "min_severity" in data
        enabled = data.get("enabled")
        with transaction.atomic():
            if updating:
                alert_channel_update(
                    channel=channel,
                    target=data.get("target", channel.target),
                    min_severity=data.get("min_severity", channel.min_severity),
                )
            changed = (
                alert_channel_enabled_set(channel=channel, enabled=enabled)
                if enabled is not None
                else False
            )
    except (InvalidInput, ValidationError) as exc:
        wrong = _refusals(exc)
        channel.refresh_from_db()
        audit(request, action="alert_channel.update", target=where, result=refused(wrong))
        raise ApiError(400, "The alert channel was not changed.", wrong) from None
    if updating:
        audit(
            request,
            action="alert_channel.update",
            target=where,
            params={"kind": channel.kind, "min_severity": channel.min_severity},
        )
    if enabled is not None:
        audit(
            request,
            action="alert_channel.enable" if enabled else "alert_channel.disable",
            target=where,
            result="ok" if changed else f"ok: already {'enabled' if enabled else 'paused'}",
        )
    return _one_json(channel)


@router.delete(
    "/alert-channels/{int:pk}/",
    auth=ADMIN_AUTH,
    response={200: s.AlertChannelOut, **errors(401, 403, 404)},
    url_name="api-alert-channel",
)
def alert_channel_remove(request: HttpRequest, pk: int):
    """Remove a channel and its delivery history (admins); answers the channel as it was."""
    channel = get_object_or_404(_channels(), pk=pk)
    answer = _one_json(channel)
    channel.delete()
    audit(request, action="alert_channel.delete", target=_target(pk), params={"kind": channel.kind})
    return answer


@router.post(
    "/alert-channels/{int:pk}/test/",
    auth=ADMIN_AUTH,
    response={202: s.AlertTestQueuedOut, **errors(401, 403, 404)},
    url_name="api-alert-channel-test",
)
def alert_channel_test(request: HttpRequest, pk: int):
    """Queue a test alert on the channel (admins), paused or not, outside the rate limit; a
    worker sends it once this request commits, and its result appears in the deliveries."""
    channel = get_object_or_404(AlertChannel, pk=pk)
    channel_id = channel.pk
    transaction.on_commit(lambda: send_test_alert.delay(channel_id))
    audit(request, action="alert_channel.test", target=_target(channel_id))
    url = f"/api/v1/alert-channels/{channel_id}/deliveries/"
    return Status(202, {"channel": channel_id, "deliveries": url})


@router.get(
    "/alert-channels/{int:pk}/deliveries/",
    auth=VIEWER_AUTH,
    response={200: list[s.AlertDeliveryOut], **errors(400, 401, 403, 404)},
    openapi_extra={"parameters": DELIVERIES_QUERY},
    url_name="api-alert-channel-deliveries",
)
def alert_channel_deliveries(request: HttpRequest, pk: int):
    """The channel's latest deliveries, newest first: sent, failed (with a one-line error),
    suppressed by the rate limit, or test; `?limit=` 1 to 200 (50). What the target answered
    (`detail`) is shown to admins only, null for other roles."""
    channel = get_object_or_404(AlertChannel, pk=pk)
    raw = request.GET.get("limit")
    limit = DEFAULT_DELIVERIES
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_DELIVERIES:
            message = f"Expected a whole number from 1 to {MAX_DELIVERIES}."
            raise ApiError(400, "Bad query.", {"limit": [message]})
    admin = has_role(request.user, ADMIN)
    deliveries = channel.deliveries.select_related("event").order_by("-at", "-pk")[:limit]
    return [delivery_json(d, admin=admin) for d in deliveries]
