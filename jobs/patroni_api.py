"""A small client for Patroni's REST API (port 8008), used by workers with short timeouts."""

import base64
import json
import urllib.error
import urllib.parse
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
    """GET /cluster: every member with role, state, timeline and lag, as this member sees it.
    A replica that streams says "streaming" (also on Patroni before 3.0.4, see
    `_mark_streaming`)."""
    status, body = _request(address, "/cluster", timeout=timeout)
    if status != 200 or not isinstance(body, dict):
        raise PatroniUnavailable(f"Patroni on {address} answered {status} to /cluster")
    _mark_streaming(body.get("members") or [], timeout)
    return body


def _mark_streaming(members: list, timeout: float) -> None:
    """Patroni before 3.0.4 (Debian 12 ships 3.0.2; adopted clusters may run it) names every
    running replica "running", streaming or not. The leader's own GET /patroni lists its WAL
    senders (pg_stat_replication, by application_name = member name); a replica the leader
    streams to is marked "streaming", as newer Patroni would say. Nothing changes when no
    member says "running" or the leader does not answer."""
    found = leader(members)
    old_style = [
        m for m in members if isinstance(m, dict) and m.get("state") == "running" and m is not found
    ]
    if not old_style or found is None:
        return
    host = urllib.parse.urlsplit(str(found.get("api_url") or "")).hostname or found.get("host")
    if not host:
        return
    try:
        _, me = member(host, timeout=timeout)
    except PatroniUnavailable:
        return
    senders = me.get("replication") if isinstance(me.get("replication"), list) else []
    streaming = {
        r.get("application_name")
        for r in senders
        if isinstance(r, dict) and r.get("state") == "streaming"
    }
    for m in old_style:
        if m.get("name") in streaming:
            m["state"] = "streaming"


def member(address: str, timeout: float = 3.0) -> tuple[int, dict]:
    """GET /patroni: this member's own view (200 when running)."""
    status, body = _request(address, "/patroni", timeout=timeout)
    return status, body if isinstance(body, dict) else {}


def config(address: str, timeout: float = 3.0) -> dict:
    """GET /config: the dynamic settings Patroni keeps in etcd (ttl, loop_wait, ...)."""
    status, body = _request(address, "/config", timeout=timeout)
    if status != 200 or not isinstance(body, dict):
        raise PatroniUnavailable(f"Patroni on {address} answered {status} to /config")
    return body


def post(
    address: str,
    path: str,
    body: dict,
    auth: tuple[str, str] | None,
    timeout: float = 10.0,
    method: str = "POST",
) -> tuple[int, object]:
    """An unsafe endpoint (/reload, /restart, /switchover, PATCH /config…), with the REST
    credentials."""
    return _request(address, path, method=method, body=body, auth=auth, timeout=timeout)


def leader(members: list[dict]) -> dict | None:
    return next((m for m in members if m.get("role") in ("leader", "master", "primary")), None)
