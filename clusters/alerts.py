"""Alerts: a cluster event told in one line, delivered by email or webhook, rate-limited.

Services: `alert_text`, `channels_for`, `alerts_dispatch`, `alert_test_send`, `validate_channel`,
`alert_channel_create`, `alerts_enqueue`. Celery tasks: `send_alerts`, `send_test_alert` (thin
wrappers). Views: `alert_channels`, `alert_channel_test`, `alert_channel_toggle`,
`alert_channel_delete`.

Only the worker talks to mail servers and webhooks; the views read the database and enqueue.

Rate limit, per channel (see `rate_allows`): at most ALERT_RATE_LIMIT (5) alerts sent per
ALERT_RATE_WINDOW_S (300) seconds; beyond that an alert is recorded as suppressed. A critical
event gets through anyway when no critical alert was sent on the channel in the last
CRITICAL_GAP_S (60) seconds, so a new incident is never hidden behind a pile of warnings and a
storm of criticals still gets one through per minute. The next alert sent says how many were
suppressed since the previous one sent.
"""

import http.client
import json
import logging
import smtplib
import unicodedata
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection, send_mail
from django.core.validators import EmailValidator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import AlertChannel, AlertDelivery, Cluster, ClusterEvent
from .validators import validate_address, validate_no_shell_metacharacters

log = logging.getLogger(__name__)

# AlertDelivery.status values (stored: never change them).
SENT = "sent"  # the mail server or webhook accepted the alert
FAILED = "failed"  # it did not; `error` says why in one line
SUPPRESSED = "suppressed"  # over the channel's rate limit, not sent
TEST = "test"  # a test alert an operator asked for, accepted

Severity = ClusterEvent.Severity
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
EMOJI = {
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}
CRITICAL_GAP_S = 60.0
WEBHOOK_TIMEOUT_S = 5.0
EMAIL_TIMEOUT_S = 10.0  # when settings.EMAIL_TIMEOUT is unset: a dead SMTP server must not hang
TARGET_MAX_CHARS = 500  # AlertChannel.target's max_length
TEXT_MAX_CHARS = 250  # an email subject and a chat line stay readable
ERROR_MAX_CHARS = 300  # AlertDelivery.error's max_length


class DeliveryError(Exception):
    """An alert that could not be delivered; the message is the one line stored on the row."""


# --- Text -------------------------------------------------------------------------------------


def _one_line(text: str, limit: int) -> str:
    """Control characters and runs of whitespace become one space; cut at `limit` with "…"."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def _size(n: int) -> str:
    """Bytes for people: 512 bytes, 16.4 kB, 2.1 MB, 3.0 GB."""
    if n < 1000:
        return f"{n} bytes"
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if n < scale * 999.95:  # rounds to at most 999.9 in this unit
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e9:.1f} GB"


def _what(event: ClusterEvent) -> str:
    """What happened, from the event's typed fields; the monitor's summary sentence otherwise.

    `details` is never read: it is free-form and nobody promised it stays free of secrets.
    """
    kind = ClusterEvent.Kind
    if event.kind in (kind.FAILOVER, kind.SWITCHOVER):
        if event.old_primary and event.new_primary:
            return f"{event.kind} from {event.old_primary} to {event.new_primary}"
        if event.new_primary:
            return f"{event.kind} to {event.new_primary}"
    node_phrases = {
        kind.NODE_DOWN: "{} is down",
        kind.NODE_UP: "{} is up again",
        kind.REJOIN: "{} rejoined as a standby",
        kind.FENCED: "{} was fenced",
    }
    if event.kind in node_phrases and event.node:
        return node_phrases[event.kind].format(event.node)
    # Lag, alarms and failed jobs carry their numbers and names in the summary.
    return event.summary or event.kind.replace("_", " ")


def alert_text(event: ClusterEvent) -> str:
    """One Slack-compatible line, e.g.
    ":rotating_light: pg1: failover from node1 to node2 (writes down 23.1 s)"."""
    facts = []
    if event.downtime_s is not None:
        facts.append(f"writes down {event.downtime_s:.1f} s")
    if event.lost_bytes:
        facts.append(f"{_size(event.lost_bytes)} of writes lost")
    line = f"{event.cluster.name}: {_what(event)}"
    if facts:
        line += f" ({', '.join(facts)})"
    emoji = EMOJI.get(event.severity, ":grey_question:")
    return _one_line(f"{emoji} {line}", TEXT_MAX_CHARS)


def _suppressed_note(count: int) -> str:
    return f" ({count} similar alert{'s' if count != 1 else ''} suppressed)" if count else ""


def _fields(event: ClusterEvent) -> dict[str, Any]:
    """The event's typed fields for the webhook and the email body (never `details`)."""
    return {
        "cluster": event.cluster.name,
        "kind": event.kind,
        "severity": event.severity,
        "at": event.at.isoformat(),
        "node": event.node or None,
        "old_primary": event.old_primary or None,
        "new_primary": event.new_primary or None,
        "downtime_s": event.downtime_s,
        "lost_bytes": event.lost_bytes,
    }


def _email_body(text: str, fields: dict[str, Any], summary: str = "") -> str:
    labels = [
        ("cluster", "Cluster"),
        ("kind", "Event"),
        ("severity", "Severity"),
        ("node", "Node"),
        ("old_primary", "Old primary"),
        ("new_primary", "New primary"),
        ("downtime_s", "Writes down (s)"),
        ("lost_bytes", "Writes lost (bytes)"),
        ("at", "At"),
    ]
    lines = [text, ""]
    lines += [f"{label + ':':<21}{fields[key]}" for key, label in labels if fields[key] is not None]
    if summary:
        lines.append(f"{'Summary:':<21}{_one_line(summary, 300)}")
    lines += ["", "-- ", "HA Center"]
    return "\n".join(lines) + "\n"


# --- Channels and validation ------------------------------------------------------------------


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


def validate_channel(kind: str, target: str) -> None:
    """Refuse a target the channel could not deliver to, with a message for the form."""
    if kind == AlertChannel.Kind.EMAIL:
        if len(target) > TARGET_MAX_CHARS:
            raise ValidationError(f"The address is too long (at most {TARGET_MAX_CHARS}).")
        EmailValidator(message="Enter an email address, like ops@example.com.")(target)
        return
    if kind != AlertChannel.Kind.WEBHOOK:
        raise ValidationError(f"Unknown channel kind {kind!r}: use email or webhook.")
    if len(target) > TARGET_MAX_CHARS:
        raise ValidationError(
            f"The URL has {len(target)} characters; at most {TARGET_MAX_CHARS} are accepted."
        )
    # The URL itself is never echoed: webhook paths often embed the receiver's token.
    if any(c.isspace() or unicodedata.category(c)[0] == "C" for c in target):
        raise ValidationError(
            "The URL contains a space, a line break or a control character; "
            "paste it again on one line (encode spaces as %20)."
        )
    parts = urlsplit(target)
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"{parts.scheme}://" if parts.scheme else "a URL without a scheme"
        raise ValidationError(f"A webhook must be an http:// or https:// URL, not {shown}.")
    try:
        host, _port = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError:
        raise ValidationError("The URL's port is not a number from 1 to 65535.") from None
    if not host:
        raise ValidationError("The URL has no host name, like https://hooks.example.com/…")
    if "@" in parts.netloc:
        # urllib would not send them as Basic auth, and the page would show them.
        raise ValidationError("Put no user name or password in the URL (user:password@host).")
    try:
        validate_address(host)
    except ValidationError:
        raise ValidationError("The URL's host is not a valid host name or IP address.") from None
    # Query strings need ? & and fragments #; nothing else a shell would act on.
    validate_no_shell_metacharacters(target, allowed="?&#~")


def target_display(channel: AlertChannel) -> str:
    """The target as shown on pages: a webhook's path (often its token) is elided."""
    if channel.kind != AlertChannel.Kind.WEBHOOK:
        return channel.target
    parts = urlsplit(channel.target)
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{hidden}"


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


# --- Delivery ---------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would turn the POST into a bodiless GET (so the alert
    is lost anyway) and would follow a redirect to ftp://; a 3xx becomes an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST the payload as JSON; raise DeliveryError unless the answer is 2xx."""
    try:
        validate_channel(AlertChannel.Kind.WEBHOOK, url)  # the row may predate the checks
    except ValidationError as exc:
        raise DeliveryError(f"refused: {exc.messages[0]}") from None
    request = urllib.request.Request(  # noqa: S310 - the scheme was checked just above
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "HA-Center-alerts/1"},
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            response.read(4096)  # drain a little so the server sees a clean close
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(200).decode("utf-8", "replace")  # Slack says why: "invalid_token"
        finally:
            exc.close()
        if 300 <= exc.code < 400:
            raise DeliveryError(
                f"HTTP {exc.code} {exc.reason}: redirects are not followed; "
                "give the channel the final URL"
            ) from None
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}: {body}".rstrip(": ")) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise DeliveryError(f"no answer within {WEBHOOK_TIMEOUT_S:g} s") from None
        raise DeliveryError(f"cannot reach the webhook: {exc.reason}") from None
    except TimeoutError:
        raise DeliveryError(f"no answer within {WEBHOOK_TIMEOUT_S:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"webhook connection failed: {type(exc).__name__}: {exc}") from None


def _send_email(address: str, text: str, body: str) -> None:
    timeout = getattr(settings, "EMAIL_TIMEOUT", None) or EMAIL_TIMEOUT_S
    try:
        send_mail(
            subject=text,
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[address],
            connection=get_connection(timeout=timeout),
        )
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        raise DeliveryError(f"mail not accepted: {type(exc).__name__}: {exc}") from None


def _deliver(channel: AlertChannel, text: str, fields: dict[str, Any], summary: str = "") -> str:
    """Send one alert on one channel: "" when accepted, else the one-line reason.

    Never raises: one broken channel must not silence the others.
    """
    try:
        if channel.kind == AlertChannel.Kind.EMAIL:
            _send_email(channel.target, text, _email_body(text, fields, summary))
        elif channel.kind == AlertChannel.Kind.WEBHOOK:
            _post_webhook(channel.target, {"text": _slack_escape(text), **fields})
        else:
            raise DeliveryError(f"unknown channel kind {channel.kind!r}")
    except DeliveryError as exc:
        error = str(exc)
    except Exception as exc:  # a bug or an exotic mail backend: record it, keep going
        log.exception("alert channel %s: unexpected error", channel.pk)
        error = f"unexpected error: {type(exc).__name__}: {exc}"
    else:
        return ""
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        # Library messages may quote the URL; a webhook URL's path is often its secret token.
        error = error.replace(channel.target, "<webhook URL>")
    return _one_line(error, ERROR_MAX_CHARS) or "failed"


def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions); these are the three to escape."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
        line = text + _suppressed_note(suppressed.count())
        error = _deliver(channel, line, _fields(event), event.summary)
        return AlertDelivery.objects.create(
            channel=channel, event=event, status=FAILED if error else SENT, error=error
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
    text = _one_line(
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
    error = _deliver(channel, text, fields, "A test alert sent from HA Center's alerts page.")
    return AlertDelivery.objects.create(
        channel=channel, event=None, status=FAILED if error else TEST, error=error
    )


def alerts_enqueue(*, event: ClusterEvent) -> None:
    """Queue the event's alerts once the transaction that created it commits (the worker must
    find the row); call this right after creating a ClusterEvent."""
    event_id = event.pk
    transaction.on_commit(lambda: send_alerts.delay(event_id))


# --- Celery tasks (thin: load by id, call the service) ----------------------------------------


@shared_task(ignore_result=True)
def send_alerts(event_id: int) -> None:
    """Deliver one event's alerts."""
    alerts_dispatch(event_id=event_id)


@shared_task(ignore_result=True)
def send_test_alert(channel_id: int) -> None:
    """Send a test alert on a channel, if it still exists."""
    channel = AlertChannel.objects.select_related("cluster").filter(pk=channel_id).first()
    if channel is not None:
        alert_test_send(channel=channel)
