"""Delivering one alert on one channel: a JSON POST to a webhook or a mail through Django's
email backend, each bounded by a timeout, every failure turned into one line for the record
(and what a webhook answered kept apart, for admins). A webhook's POST goes through
`webhook_post`: its host resolved and checked (`addresses`), the connection made to the address
that passed."""

import json
import logging
import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import get_connection, send_mail

from clusters.alerts import webhook_post
from clusters.alerts.text import email_body, one_line, slack_escape
from clusters.alerts.webhook_post import DeliveryError, without_url
from clusters.models import AlertChannel

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 5.0
EMAIL_TIMEOUT_S = 10.0  # when settings.EMAIL_TIMEOUT is unset: a dead SMTP server must not hang
ERROR_MAX_CHARS = 300  # AlertDelivery.error's max_length
DETAIL_MAX_CHARS = 300  # AlertDelivery.detail's max_length


@dataclass(frozen=True)
class DeliveryResult:
    """How one send ended: `error` "" when accepted; `detail` the target's own words."""

    error: str = ""
    detail: str = ""


def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST the payload as JSON to the checked address (`webhook_post.post`); raise
    DeliveryError unless the answer is 2xx. Redirects are not followed: a 3xx is an error."""
    answer = webhook_post.post(
        url,
        json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "HA-Center-alerts/1"},
        timeout=WEBHOOK_TIMEOUT_S,  # read at each send: tests and callers may change it
    )
    status, reason = answer.status, answer.reason
    if 300 <= status < 400:
        raise DeliveryError(
            f"HTTP {status} {reason}: redirects are not followed; give the channel the final URL"
        )
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} {reason}", detail=answer.body[:DETAIL_MAX_CHARS])


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


def deliver(
    channel: AlertChannel, text: str, fields: dict[str, Any], summary: str = ""
) -> DeliveryResult:
    """Send one alert on one channel; the result's `error` is "" when accepted, else the
    one-line reason, and `detail` what the target answered (for admins' eyes only).

    Never raises: one broken channel must not silence the others.
    """
    detail = ""
    try:
        if channel.kind == AlertChannel.Kind.EMAIL:
            _send_email(channel.target, text, email_body(text, fields, summary))
        elif channel.kind == AlertChannel.Kind.WEBHOOK:
            _post_webhook(channel.target, {"text": slack_escape(text), **fields})
        else:
            raise DeliveryError(f"unknown channel kind {channel.kind!r}")
    except DeliveryError as exc:
        error, detail = str(exc), exc.detail
    except Exception as exc:  # a bug or an exotic mail backend: record it, keep going
        log.exception("alert channel %s: unexpected error", channel.pk)
        error = f"unexpected error: {type(exc).__name__}: {exc}"
    else:
        return DeliveryResult()
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        # Library messages may quote the URL, and a receiver may echo its path: a webhook
        # URL's path is often its secret token.
        error, detail = (without_url(t, channel.target) for t in (error, detail))
    return DeliveryResult(
        error=one_line(error, ERROR_MAX_CHARS) or "failed",
        detail=one_line(detail, DETAIL_MAX_CHARS),
    )
