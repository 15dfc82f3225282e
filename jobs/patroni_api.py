"""A small client for Patroni's REST API (port 8008), used by workers with short timeouts."""

import base64
import json
import urllib.error
import urllib.request

PORT = 8008


class PatroniUnavailable(Exception):
    """The member did not answer, or answered something that is not Patroni's JSON."""


def _request(
    address: str,
    path: str,
    *,
    method: str = "GET",
    body: dict | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 3.0,
) -> tuple[int, object]:
    host = f"[{address}]" if ":" in address else address
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{host}:{PORT}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:  # 503 is Patroni's "not primary", still an answer
        status, raw = exc.code, exc.read()
    except (OSError, ValueError) as exc:
        raise PatroniUnavailable(f"Patroni on {address}:{PORT} did not answer: {exc}") from None
    try:
        return status, json.loads(raw) if raw.strip() else {}
    except ValueError:
        return status, raw.decode(errors="replace")


def cluster(address: str, timeout: float = 3.0) -> dict:
    """GET /cluster: every member with role, state, timeline and lag, as this member sees it."""
    status, body = _request(address, "/cluster", timeout=timeout)
    if status != 200 or not isinstance(body, dict):
        raise PatroniUnavailable(f"Patroni on {address} answered {status} to /cluster")
    return body


def member(address: str, timeout: float = 3.0) -> tuple[int, dict]:
    """GET /patroni: this member's own view (200 when running)."""
    status, body = _request(address, "/patroni", timeout=timeout)
    return status, body if isinstance(body, dict) else {}


def post(
    address: str,
    path: str,
    body: dict,
    auth: tuple[str, str],
    timeout: float = 10.0,
    method: str = "POST",
) -> tuple[int, object]:
    """An unsafe endpoint (/reload, /restart, /switchover, PATCH /config…), with the REST
    credentials."""
    return _request(address, path, method=method, body=body, auth=auth, timeout=timeout)


def leader(members: list[dict]) -> dict | None:
    return next((m for m in members if m.get("role") in ("leader", "master", "primary")), None)
