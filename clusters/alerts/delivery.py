"""Delivering one alert on one channel: a JSON POST to a webhook or a mail through Django's
email backend, each bounded by a timeout, every failure turned into one line for the record."""

import http.client
import json
import logging
import smtplib
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection, send_mail

from clusters.alerts.targets import validate_channel
from clusters.alerts.text import email_body, one_line, slack_escape
from clusters.models import AlertChannel

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 5.0
EMAIL_TIMEOUT_S = 10.0  # when settings.EMAIL_TIMEOUT is unset: a dead SMTP server must not hang
ERROR_MAX_CHARS = 300  # AlertDelivery.error's max_length


class DeliveryError(Exception):
    """An alert that could not be delivered; the message is the one line stored on the row."""


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


def deliver(channel: AlertChannel, text: str, fields: dict[str, Any], summary: str = "") -> str:
    """Send one alert on one channel: "" when accepted, else the one-line reason.

    Never raises: one broken channel must not silence the others.
    """
    try:
        if channel.kind == AlertChannel.Kind.EMAIL:
            _send_email(channel.target, text, email_body(text, fields, summary))
        elif channel.kind == AlertChannel.Kind.WEBHOOK:
            _post_webhook(channel.target, {"text": slack_escape(text), **fields})
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
    return one_line(error, ERROR_MAX_CHARS) or "failed"
