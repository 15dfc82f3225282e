"""Delivering one alert on one channel: a JSON POST to a webhook or a mail through Django's
email backend, each bounded by a timeout, every failure turned into one line for the record
(and what a webhook answered kept apart, for admins). A webhook's host is resolved and checked
here (`addresses`), and the connection goes to the address that passed."""

import http.client
import json
import logging
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection, send_mail

from clusters.alerts.addresses import TargetRefused, resolve_checked
from clusters.alerts.targets import validate_channel
from clusters.alerts.text import email_body, one_line, slack_escape
from clusters.models import AlertChannel

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 5.0
EMAIL_TIMEOUT_S = 10.0  # when settings.EMAIL_TIMEOUT is unset: a dead SMTP server must not hang
ERROR_MAX_CHARS = 300  # AlertDelivery.error's max_length
DETAIL_MAX_CHARS = 300  # AlertDelivery.detail's max_length


class DeliveryError(Exception):
    """An alert that could not be delivered; the message is the one line stored on the row
    (shown to every viewer), `detail` what the target itself answered (shown to admins only:
    an internal service's answer must not reach viewers)."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class DeliveryResult:
    """How one send ended: `error` "" when accepted; `detail` the target's own words."""

    error: str = ""
    detail: str = ""


def _pinned(checked: list[tuple[int, tuple]]) -> Callable[..., socket.socket]:
    """A stand-in for socket.create_connection that connects only to the addresses the worker
    checked (the first that answers, as create_connection would), whatever the name resolves
    to by now (DNS rebinding); http.client still sends the name as Host and as TLS server
    name, and checks the certificate against it."""

    def connect(
        _address: object, timeout: float | None = None, source: object = None
    ) -> socket.socket:
        last: OSError | None = None
        for family, sockaddr in checked:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise last or OSError("no address to connect to")

    return connect


def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST the payload as JSON to the checked address; raise DeliveryError unless the answer
    is 2xx. Redirects are not followed (http.client never does): a 3xx is an error."""
    try:
        validate_channel(AlertChannel.Kind.WEBHOOK, url)  # the row may predate the checks
    except ValidationError as exc:
        raise DeliveryError(f"refused: {exc.messages[0]}") from None
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    try:
        checked = resolve_checked(host, port)
    except TargetRefused as exc:
        raise DeliveryError(f"refused: {exc}") from None
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DeliveryError(f"cannot resolve the webhook's host {host}: {reason}") from None
    connection: http.client.HTTPConnection
    if https:
        connection = http.client.HTTPSConnection(
            host, port, timeout=WEBHOOK_TIMEOUT_S, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=WEBHOOK_TIMEOUT_S)
    # http.client opens its socket through this attribute (CPython 3.4+); replacing it is the
    # one way to choose the address while keeping its Host header, TLS and response parsing.
    # No proxy from the environment is used: a proxy would resolve the name itself, unchecked.
    connection._create_connection = _pinned(checked)  # type: ignore[attr-defined]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            "POST",
            target,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "HA-Center-alerts/1"},
        )
        response = connection.getresponse()
        # Slack says why in the body ("invalid_token"): kept for admins only (see DeliveryError).
        body = response.read(4096).decode("utf-8", "replace")
        status, reason = response.status, response.reason
    except TimeoutError:
        raise DeliveryError(f"no answer within {WEBHOOK_TIMEOUT_S:g} s") from None
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(
            f"the webhook's TLS certificate is not trusted: {exc.verify_message}"
        ) from None
    except http.client.HTTPException as exc:
        # BadStatusLine and friends quote what the target sent: for admins only.
        raise DeliveryError(
            f"the webhook's answer is not HTTP ({type(exc).__name__})", detail=str(exc)
        ) from None
    except OSError as exc:
        raise DeliveryError(f"cannot reach the webhook: {exc}") from None
    finally:
        connection.close()
    if 300 <= status < 400:
        raise DeliveryError(
            f"HTTP {status} {reason}: redirects are not followed; give the channel the final URL"
        )
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} {reason}", detail=body[:DETAIL_MAX_CHARS])


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
        error, detail = (_without_url(t, channel.target) for t in (error, detail))
    return DeliveryResult(
        error=one_line(error, ERROR_MAX_CHARS) or "failed",
        detail=one_line(detail, DETAIL_MAX_CHARS),
    )


def _without_url(text: str, url: str) -> str:
    text = text.replace(url, "<webhook URL>")
    path = urlsplit(url).path
    if len(path.strip("/")) >= 4:  # "/" or "/x" would blank out ordinary words
        text = text.replace(path, "/…")
    return text
