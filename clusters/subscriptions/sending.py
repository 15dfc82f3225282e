"""One attempt at one delivery: claim it, POST its JSON signed with the subscription's secret
through the checked, pinned connection of clusters.alerts.webhook_post, record how it ended.

Headers: Content-Type: application/json, X-HACenter-Event (the kind), X-HACenter-Delivery (the
delivery's UUID, the same on every attempt), X-HACenter-Timestamp (Unix seconds of this
attempt) and X-HACenter-Signature (`signing`). Timeout 5 s; redirects are not followed.
"""

import json
import logging
import time

from django.db.models import F
from django.utils import timezone

from clusters.alerts import webhook_post
from clusters.alerts.text import one_line
from clusters.alerts.webhook_post import DeliveryError, without_url
from clusters.models import DeliveryStatus, EventDelivery
from clusters.subscriptions.payload import TEST_KIND
from clusters.subscriptions.signing import signature

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
ERROR_MAX_CHARS = 300  # EventDelivery.error's max_length
USER_AGENT = "HA-Center-events/1"
REFUSED = "refused: "  # our own checks said no: another attempt would say no again


def body_of(payload: dict) -> bytes:
    """The exact bytes sent and signed (compact JSON, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _send(delivery: EventDelivery) -> tuple[int | None, str]:
    """POST the delivery once; (HTTP status or None, "" when accepted or the one-line why)."""
    subscription = delivery.subscription
    body = body_of(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-HACenter-Event": delivery.kind,
        "X-HACenter-Delivery": str(delivery.delivery_id),
        "X-HACenter-Timestamp": str(timestamp),
        "X-HACenter-Signature": signature(subscription.secret, timestamp, body),
    }
    try:
        answer = webhook_post.post(subscription.url, body, headers=headers, timeout=TIMEOUT_S)
    except DeliveryError as exc:
        return None, str(exc)
    except Exception as exc:  # a bug: record it on the row, as alerts do, and keep going
        log.exception("event delivery %s: unexpected error", delivery.pk)
        return None, f"unexpected error: {type(exc).__name__}: {exc}"
    if 200 <= answer.status < 300:
        return answer.status, ""
    if 300 <= answer.status < 400:
        return answer.status, (
            f"HTTP {answer.status} {answer.reason}: redirects are not followed; "
            "give the subscription the final URL"
        )
    # The receiver's body is not kept: what an internal service says must not reach viewers.
    return answer.status, f"HTTP {answer.status} {answer.reason}"


def delivery_attempt(*, pk: int, attempt: int, last: bool) -> str | None:
    """Make attempt number `attempt` (1 for the first) at delivery `pk` and return its new
    status: sent, retrying (the caller queues the next attempt), or failed (given up: `last`,
    a refusal by our own checks, or the subscription paused since). None when there is
    nothing to do: the delivery is gone, finished, or another worker claimed this attempt."""
    # Claimed with a conditional update, outside any transaction: the POST may take 5 s and
    # must hold no lock; a redelivered task finds `attempts` moved on and does nothing.
    claimed = EventDelivery.objects.filter(
        pk=pk, status__in=DeliveryStatus.active(), attempts=attempt - 1
    ).update(attempts=F("attempts") + 1, last_attempt=timezone.now())
    if not claimed:
        return None
    delivery = EventDelivery.objects.select_related("subscription").filter(pk=pk).first()
    if delivery is None:
        return None  # deleted with its subscription a moment ago
    if not delivery.subscription.enabled and delivery.kind != TEST_KIND:
        status, http_status = DeliveryStatus.FAILED, None
        error = "not sent: the subscription was paused before this attempt"
    else:
        http_status, error = _send(delivery)
        if not error:
            status = DeliveryStatus.SENT
        elif last or error.startswith(REFUSED):
            status = DeliveryStatus.FAILED
        else:
            status = DeliveryStatus.RETRYING
    # Library messages may quote the URL: its path is often the receiver's token.
    error = one_line(without_url(error, delivery.subscription.url), ERROR_MAX_CHARS)
    EventDelivery.objects.filter(pk=pk).update(status=status, http_status=http_status, error=error)
    return status
