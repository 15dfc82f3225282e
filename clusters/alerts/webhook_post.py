"""One POST to a webhook URL from the worker, shared by alert channels (`delivery`) and event
subscriptions (`clusters.subscriptions.sending`): the URL checked again (the row may predate
the checks), its host resolved and checked (`addresses`), the connection made to the address
that passed, bounded by a timeout, every transport failure turned into one line.

Redirects are never followed (http.client does not): the caller decides what a 3xx means.
No proxy from the environment is used: a proxy would resolve the name itself, unchecked.
"""

import http.client
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from clusters.alerts.addresses import TargetRefused, resolve_checked
from clusters.alerts.targets import validate_channel
from clusters.models import AlertChannel

ANSWER_MAX_BYTES = 4096  # of the receiver's body: enough for a reason, not a flood


class DeliveryError(Exception):
    """A POST that could not be delivered; the message is the one line stored on the row
    (shown to every viewer), `detail` what the target itself answered (shown to admins only:
    an internal service's answer must not reach viewers)."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class HttpAnswer:
    """What the receiver answered: any HTTP status, its reason and the start of its body."""

    status: int
    reason: str
    body: str


def pinned(checked: list[tuple[int, tuple]]) -> Callable[..., socket.socket]:
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


def post(url: str, body: bytes, *, headers: dict[str, str], timeout: float) -> HttpAnswer:
    """POST `body` to `url` through the checked address and return the receiver's answer,
    whatever its status; raise DeliveryError when the URL or its address is refused, or no
    HTTP answer came within `timeout` seconds."""
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
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    # http.client opens its socket through this attribute (CPython 3.4+); replacing it is the
    # one way to choose the address while keeping its Host header, TLS and response parsing.
    connection._create_connection = pinned(checked)  # type: ignore[attr-defined]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        # Slack says why in the body ("invalid_token"): callers keep it for admins only.
        text = response.read(ANSWER_MAX_BYTES).decode("utf-8", "replace")
        return HttpAnswer(status=response.status, reason=response.reason, body=text)
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g} s") from None
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


def without_url(text: str, url: str) -> str:
    """`text` with the URL, and its path when it is long enough to be a token, elided:
    library messages may quote the URL, and a receiver may echo its path."""
    text = text.replace(url, "<webhook URL>")
    path = urlsplit(url).path
    if len(path.strip("/")) >= 4:  # "/" or "/x" would blank out ordinary words
        text = text.replace(path, "/…")
    return text
