"""The signature on each POST: HMAC-SHA256 of "<timestamp>.<body>" under the subscription's
secret, sent as `X-HACenter-Signature: sha256=<hex>` with `X-HACenter-Timestamp: <unix s>`.

The timestamp is inside what is signed, so a receiver that refuses timestamps older than
REPLAY_WINDOW_S refuses a captured request replayed later; `signature_valid` is that check,
written as a receiver would (docs/webhooks.md has the same recipe to copy).
"""

import hashlib
import hmac
import time

SCHEME = "sha256="
REPLAY_WINDOW_S = 300  # what receivers are told to accept; the console's clock may drift


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-HACenter-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    return SCHEME + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_valid(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature_header: str,
    now: float | None = None,
    window_s: int = REPLAY_WINDOW_S,
) -> bool:
    """A receiver's check: the header matches the body and the timestamp is no further than
    `window_s` from now (either way: a clock ahead is as suspicious as one behind)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > window_s:
        return False
    # compare_digest: a byte-by-byte comparison would tell an attacker how much matched.
    return hmac.compare_digest(signature(secret, sent, body), signature_header)
