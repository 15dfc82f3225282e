"""Where an alert channel may point (an email address, or an http(s) webhook URL a shell
could not misread, to a public address or an allow-listed network: see `addresses`), and how
a target is shown on pages without its secret."""

import unicodedata
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from clusters.alerts.addresses import TargetRefused, check_host
from clusters.inventory.validators import validate_address, validate_no_shell_metacharacters
from clusters.models import AlertChannel

TARGET_MAX_CHARS = 500  # AlertChannel.target's max_length


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
        # Before the syntax check, so `0x7f000001` is refused for what it is (loopback).
        check_host(host)
    except TargetRefused as exc:
        raise ValidationError(f"{exc}.") from None
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
    return url_display(channel.target)


def url_display(url: str) -> str:
    """A webhook URL as pages and the API show it: scheme://host/… (path and query elided,
    as they often hold the receiver's token)."""
    parts = urlsplit(url)
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{hidden}"
