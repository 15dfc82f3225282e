"""Alerts: a cluster event told in one line, delivered by email or webhook, rate-limited.

Services: `channels_for`, `alerts_dispatch`, `alert_test_send`, `alert_channel_create`,
`alert_channel_update`, `alert_channel_enabled_set`. The
Celery tasks and `alerts_enqueue` are in `tasks`, the text in `text`, the targets' checks in
`targets`, the sending in `delivery`; the page is `clusters.web.alert_views`.

Only the worker talks to mail servers and webhooks; the views read the database and enqueue.

Rate limit, per channel (see `rate_allows`): at most ALERT_RATE_LIMIT (5) alerts sent per
ALERT_RATE_WINDOW_S (300) seconds; beyond that an alert is recorded as suppressed. A critical
event gets through anyway when no critical alert was sent on the channel in the last
CRITICAL_GAP_S (60) seconds, so a new incident is never hidden behind a pile of warnings and a
storm of criticals still gets one through per minute. The next alert sent says how many were
suppressed since the previous one sent.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from clusters.alerts.delivery import deliver
from clusters.alerts.targets import validate_channel
from clusters.alerts.text import (
    TEXT_MAX_CHARS,
    alert_text,
    event_fields,
    one_line,
    suppressed_note,
)
from clusters.models import AlertChannel, AlertDelivery, Cluster, ClusterEvent

# AlertDelivery.status values (stored: never change them).
SENT = "sent"  # the mail server or webhook accepted the alert
FAILED = "failed"  # it did not; `error` says why in one line
SUPPRESSED = "suppressed"  # over the channel's rate limit, not sent
TEST = "test"  # a test alert an operator asked for, accepted

Severity = ClusterEvent.Severity
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
CRITICAL_GAP_S = 60.0


# --- Channels ---------------------------------------------------------------------------------


def channels_for(event: ClusterEvent) -> QuerySet[AlertChannel]:
    """Enabled channels of the event's cluster and global ones whose minimum severity is at or
    below the event's (info < warning < critical)."""
    rank = SEVERITY_RANK.get(event.severity, SEVERITY_RANK[Severity.CRITICAL])
    wanted = [str(s) for s, r in SEVERITY_RANK.items() if r <= rank]
    return AlertChannel.objects.filter(
        Q(cluster_id=event.cluster_id) | Q(cluster__isnull=True),
        enabled=True,
        min_severity__in=wanted,
    ).order_by("pk")


def alert_channel_create(
    *,
    kind: str,
    target: str,
    cluster: Cluster | None = None,
    min_severity: str = Severity.WARNING,
) -> AlertChannel:
    """Add a channel after checking its target; raises ValidationError keyed by field."""
    target = target.strip()
    errors: dict[str, list[str]] = {}
    try:
        validate_channel(kind, target)
    except ValidationError as exc:
        errors["kind" if kind not in AlertChannel.Kind.values else "target"] = exc.messages
    if min_severity not in Severity.values:
        errors["min_severity"] = ["Choose info, warning or critical."]
    if errors:
        raise ValidationError(errors)
    return AlertChannel.objects.create(
        kind=kind, target=target, cluster=cluster, min_severity=min_severity
    )


def alert_channel_update(*, channel: AlertChannel, target: str, min_severity: str) -> AlertChannel:
    """Change a channel's target and minimum severity (its kind and cluster stay), after the
    same checks as a new one; raises ValidationError keyed by field and changes nothing then."""
    target = target.strip()
    errors: dict[str, list[str]] = {}
    try:
        validate_channel(channel.kind, target)
    except ValidationError as exc:
        errors["target"] = exc.messages
    if min_severity not in Severity.values:
        errors["min_severity"] = ["Choose info, warning or critical."]
    if errors:
        raise ValidationError(errors)
    channel.target, channel.min_severity = target, min_severity
    channel.save(update_fields=["target", "min_severity"])
    return channel


def alert_channel_enabled_set(*, channel: AlertChannel, enabled: bool) -> bool:
    """Pause (False) or resume (True) a channel without losing its history; True when this
    call changed it, False when it was so already."""
    # Conditional: a second click from a stale page (or a retried API call) must not flip
    # the channel back.
    changed = (
        AlertChannel.objects.filter(pk=channel.pk, enabled=not enabled).update(enabled=enabled) == 1
    )
    channel.enabled = enabled
    return changed


# --- Dispatch ---------------------------------------------------------------------------------


def rate_allows(
    *,
    severity: str,
    sent_in_window: int,
    limit: int,
    last_critical_sent_age_s: float | None,
) -> bool:
    """May the channel send one more alert now? See the module docstring for the rule.

    `sent_in_window`: alerts sent on the channel in the rate window; `last_critical_sent_age_s`:
    seconds since the channel last sent a critical alert (None: never).
    """
    if sent_in_window < limit:
        return True
    if severity != Severity.CRITICAL:
        return False
    return last_critical_sent_age_s is None or last_critical_sent_age_s > CRITICAL_GAP_S


def _dispatch_one(channel_id: int, event: ClusterEvent, text: str) -> AlertDelivery | None:
    """Send or suppress the event on one channel and record the delivery; None when the channel
    is gone or disabled, or already has this event (a redelivered task)."""
    limit = int(getattr(settings, "ALERT_RATE_LIMIT", 5))
    window_s = float(getattr(settings, "ALERT_RATE_WINDOW_S", 300))
    # The channel row stays locked while deciding, sending and recording, so two workers
    # dispatching at once cannot both take its last slot. Sends are bounded by their timeouts
    # and only other dispatches on this one channel wait.
    with transaction.atomic():
        channel = AlertChannel.objects.select_for_update().filter(pk=channel_id).first()
        if channel is None or not channel.enabled:
            return None
        history = channel.deliveries.exclude(status=TEST)
        if history.filter(event=event).exists():
            return None  # the task ran twice: the first run decided for this event already
        now = timezone.now()
        sent = history.filter(status=SENT)
        last_critical: datetime | None = (
            sent.filter(event__severity=Severity.CRITICAL)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        allowed = rate_allows(
            severity=event.severity,
            sent_in_window=sent.filter(at__gt=now - timedelta(seconds=window_s)).count(),
            limit=limit,
            last_critical_sent_age_s=(now - last_critical).total_seconds()
            if last_critical
            else None,
        )
        if not allowed:
            return AlertDelivery.objects.create(channel=channel, event=event, status=SUPPRESSED)
        last_sent = sent.order_by("-at").values_list("at", flat=True).first()
        suppressed = history.filter(status=SUPPRESSED)
        if last_sent is not None:
            suppressed = suppressed.filter(at__gt=last_sent)
        line = text + suppressed_note(suppressed.count())
        result = deliver(channel, line, event_fields(event), event.summary)
        return AlertDelivery.objects.create(
            channel=channel,
            event=event,
            status=FAILED if result.error else SENT,
            error=result.error,
            detail=result.detail,
        )


def alerts_dispatch(*, event_id: int) -> list[AlertDelivery]:
    """Send (or suppress, by the rate limit) the event on every channel that wants it; one
    AlertDelivery per channel: sent, failed with a one-line error, or suppressed."""
    event = ClusterEvent.objects.select_related("cluster").filter(pk=event_id).first()
    if event is None:
        return []  # deleted with its cluster before the worker ran: nobody left to tell
    text = alert_text(event)
    deliveries = []
    for channel_id in channels_for(event).values_list("pk", flat=True):
        delivery = _dispatch_one(channel_id, event, text)
        if delivery is not None:
            deliveries.append(delivery)
    return deliveries


def alert_test_send(*, channel: AlertChannel) -> AlertDelivery:
    """Send a test alert on the channel now, outside the rate limit (the "send a test alert"
    button); the delivery's status is "test" when accepted, "failed" otherwise."""
    scope = channel.cluster.name if channel.cluster_id else "all clusters"
    text = one_line(
        f":white_check_mark: HA Center test alert for {scope}: this channel works", TEXT_MAX_CHARS
    )
    fields = {
        "cluster": channel.cluster.name if channel.cluster_id else None,
        "kind": "test",
        "severity": Severity.INFO.value,
        "at": timezone.now().isoformat(),
        "node": None,
        "old_primary": None,
        "new_primary": None,
        "downtime_s": None,
        "lost_bytes": None,
    }
    result = deliver(channel, text, fields, "A test alert sent from HA Center's alerts page.")
    return AlertDelivery.objects.create(
        channel=channel,
        event=None,
        status=FAILED if result.error else TEST,
        error=result.error,
        detail=result.detail,
    )
