"""A small client for Patroni's REST API (port 8008), used by workers with short timeouts.

Every function takes the member as a `Node` (or a bare address, for callers that only have
one, such as tests): a node whose Patroni speaks TLS (`Node.tls_active`, set by setup) is asked
over https, verifying its certificate against the cluster's CA and its address against the
certificate's IP SANs; any other is asked over plain http, as adopted clusters' layouts are
(adoption refuses a REST API on https). Redirects are never followed: a member that answers
3xx gets that status back, so no request (and no Basic auth header) goes anywhere else.
"""

import base64
import functools
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from clusters.models import Node

PORT = 8008


@dataclass(frozen=True)
class Endpoint:
    """An address that is not (or no longer) a node's, with the context to verify it by."""

    address: str
    context: ssl.SSLContext | None = None


# A Patroni member: the inventory's node, an explicit endpoint, or a bare address (plain http).
Member = Node | Endpoint | str


class PatroniUnavailable(Exception):
    """The member did not answer, or answered something that is not Patroni's JSON."""


@functools.lru_cache(maxsize=256)
def ca_context(ca_certificate: str) -> ssl.SSLContext:
    """A client context that trusts only `ca_certificate` (PEM), with hostname checking (an
    IP address is matched against the certificate's IP SANs). Cached per CA text: building one
    parses the CA, and a monitor pass asks every node of every cluster."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_certificate)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_context(node: Node) -> ssl.SSLContext | None:
    """The context to reach `node`'s Patroni with, or None when it speaks plain http."""
    if not node.tls_active:
        return None
    ca = node.cluster.ca_certificate
    if not ca:
        # tls_active without a CA is an inventory error; refuse rather than skip verifying.
        raise PatroniUnavailable(f"{node.name} speaks TLS but its cluster has no CA stored")
    return ca_context(ca)


def _target(member: Member) -> tuple[str, ssl.SSLContext | None]:
    if isinstance(member, Node):
        return member.address, tls_context(member)
    if isinstance(member, Endpoint):
        return member.address, member.context
    return member, None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is Patroni's answer as it is (an HTTPError), never a second request."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


@functools.lru_cache(maxsize=256)
def _opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    # No proxy from the environment either: the request goes to the member and nowhere else.
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect(), urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def url(member: Member, path: str) -> str:
    """The member's REST URL for `path`, https when it speaks TLS."""
    address, context = _target(member)
    host = f"[{address}]" if ":" in address else address
    return f"{'https' if context else 'http'}://{host}:{PORT}{path}"


def _request(
    member: Member,
    path: str,
    *,
    method: str = "GET",
    body: dict | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 3.0,
) -> tuple[int, object]:
    address, context = _target(member)
    data = json.dumps(body).encode() if body is not None else None
    # The scheme is ours (http or https), never from the caller.
    req = urllib.request.Request(url(member, path), data=data, method=method)  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with _opener(context).open(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:  # 503 is Patroni's "not primary", still an answer
        status, raw = exc.code, exc.read()
    except (OSError, ValueError) as exc:
        raise PatroniUnavailable(f"Patroni on {address}:{PORT} did not answer: {exc}") from None
    try:
        return status, json.loads(raw) if raw.strip() else {}
    except ValueError:
        return status, raw.decode(errors="replace")


def cluster(address: Member, timeout: float = 3.0) -> dict:
    """GET /cluster: every member with role, state, timeline and lag, as this member sees it.
    A replica that streams says "streaming" (also on Patroni before 3.0.4, see
    `_mark_streaming`)."""
    status, body = _request(address, "/cluster", timeout=timeout)
    if status != 200 or not isinstance(body, dict):
        raise PatroniUnavailable(f"Patroni on {address} answered {status} to /cluster")
    _mark_streaming(body.get("members") or [], timeout, address)
    return body


def _mark_streaming(members: list, timeout: float, asked: Member) -> None:
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
    if isinstance(asked, Node):
        # The leader is a node of the same cluster: ask it as the inventory says (TLS or not).
        host = next((n for n in asked.cluster.nodes.all() if n.address == host), host)
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


def member(address: Member, timeout: float = 3.0) -> tuple[int, dict]:
    """GET /patroni: this member's own view (200 when running)."""
    status, body = _request(address, "/patroni", timeout=timeout)
    return status, body if isinstance(body, dict) else {}


def history(address: Member, timeout: float = 3.0) -> list:
    """GET /history: one entry per timeline switch (every promotion adds one)."""
    status, body = _request(address, "/history", timeout=timeout)
    if status != 200 or not isinstance(body, list):
        raise PatroniUnavailable(f"Patroni on {address} answered {status} to /history")
    return body


def config(address: Member, timeout: float = 3.0) -> dict:
    """GET /config: the dynamic settings Patroni keeps in etcd (ttl, loop_wait, ...)."""
    status, body = _request(address, "/config", timeout=timeout)
    if status != 200 or not isinstance(body, dict):
        raise PatroniUnavailable(f"Patroni on {address} answered {status} to /config")
    return body


def post(
    address: Member,
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
