#!/usr/bin/python3
"""HA Center's fast-path agent: a fenced failover within seconds of a primary's death (issue 21).

Standard library only: setup uploads this one file to the cluster's witness (the first proxy,
which also runs the third etcd member and HAProxy) and runs it with Debian's python3. It needs
no console: everything it needs is in its JSON config file (root, 0600), written by setup.

Two modes:

- the agent (default), on the witness: it probes the primary (who holds Patroni's leader key)
  every ~200 ms. After ``misses`` consecutive misses, and only if the candidate's host agrees
  that it cannot reach the primary either, it runs the sequence (``act``): read the leader and
  sync keys, check the candidate, record the intent in etcd (compare-and-set, which is also
  the rate limit), put the old primary in HAProxy maintenance, power it off through its fence
  device and wait for the device to confirm, then in one etcd transaction delete the leader
  key and name the candidate in Patroni's failover key, and tell HAProxy the new primary.
  Every decision is one JSON line in the decisions file and one sentence in the log.
- ``--peer``, on each database node: a small HTTPS server (mutual TLS with the cluster's CA,
  only the witness's certificate accepted) that answers "can you reach node X right now?"
  with the same probe the agent uses, so a primary is declared dead only when two hosts on
  different links agree.

Whatever fails or is uncertain, the agent does nothing more: Patroni's lease decides, as it
would without the agent. It never starts PostgreSQL, never promotes anything itself, and never
touches a node it has not seen dead from two hosts and powered off for certain.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

# PostgreSQL's SSLRequest: any live postmaster answers it with one byte, S or N, at once.
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
# Patroni's roles of a node that replicates from the primary.
REPLICA_ROLES = ("replica", "sync_standby", "quorum_standby")
# Patroni's replication_state of such a node: its WAL receiver streaming, or stopped (absent
# key, or "in archive recovery") the moment the primary died.
STREAM_STATES = ("streaming", "in archive recovery", None)
# Fence agents' exit codes for action=status: 0 on, 2 off.
FENCE_ON, FENCE_OFF = 0, 2
FENCE_DIR = "/usr/sbin"


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeConf:
    """A database node: where it answers, and its fence device (None: it keeps the lease path)."""

    name: str
    address: str
    postgres_port: int = 5432
    patroni_port: int = 8008
    peer_port: int = 8010
    fence_agent: str = ""
    # The fence agent's options and secret as key=value lines, without the action line.
    fence_input: str = field(default="", repr=False)


@dataclass(frozen=True)
class Config:
    """The agent's settings (setup writes them; see jobs/playbooks/fastpath.py)."""

    scope: str
    namespace: str
    nodes: dict[str, NodeConf]
    etcd_endpoints: tuple[str, ...] = ()
    tls_ca: str = ""  # "" when the cluster does not use TLS
    tls_cert: str = ""
    tls_key: str = ""
    witness: str = ""
    decisions: str = ""
    interval_s: float = 0.2
    probe_timeout_s: float = 0.3
    misses: int = 5
    late_s: float = 0.5  # an iteration this much later than planned resets the miss count
    maximum_lag_on_failover: int = 1024 * 1024
    window_s: int = 3600
    takeover_timeout_s: float = 5.0
    fence_timeout_s: float = 30.0
    haproxy_socket: str = "/run/haproxy/admin.sock"
    haproxy_state_file: str = "/var/lib/haproxy/server-state"
    backends: tuple[str, ...] = ("primary", "be_replicas", "be_replicas_fallback")
    primary_backends: tuple[str, ...] = ("primary",)
    peer_listen: str = ""  # peer mode: the node's own address

    @property
    def prefix(self) -> str:
        """Patroni's keys of this cluster: /<namespace>/<scope>/."""
        return f"{self.namespace.rstrip('/')}/{self.scope}/"

    @property
    def intent_key(self) -> str:
        """The agent's own key, outside Patroni's prefix: a fast failover in progress or done
        within the window (it lives on an etcd lease of ``window_s``)."""
        return f"{self.namespace.rstrip('/')}-fastpath/{self.scope}/intent"


def load_config(path: str) -> Config:
    """The config file's settings; unknown keys are ignored (a newer setup may add some)."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    nodes = {}
    for name, node in raw.pop("nodes").items():
        known = {k: v for k, v in node.items() if k in NodeConf.__dataclass_fields__}
        nodes[name] = NodeConf(name=name, **known)
    fields = {k: v for k, v in raw.items() if k in Config.__dataclass_fields__}
    for key in ("etcd_endpoints", "backends", "primary_backends"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return Config(nodes=nodes, **fields)


# -- decisions ---------------------------------------------------------------------------------


def utc_now() -> str:
    """Now as the contract's UTC ISO 8601 with milliseconds: 2026-12-05T14:03:07.123Z."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def decision(
    outcome: str, primary: str, candidate: str | None, sentence: str, timings: dict | None = None
) -> dict:
    """One decision as the console reads it (docs/fast-failover.md, the contract)."""
    if outcome not in ("acted", "declined", "withdrawn", "failed"):
        raise ValueError(f"unknown outcome {outcome!r}")
    return {
        "at": utc_now(),
        "outcome": outcome,
        "primary": primary,
        "candidate": candidate,
        "sentence": sentence,
        "timings_ms": {k: int(v) for k, v in (timings or {}).items()},
    }


def record(conf: Config, entry: dict) -> None:
    """Append the decision to the decisions file (never rewritten) and say it in the log."""
    log(f"{entry['outcome']}: {entry['sentence']}")
    if not conf.decisions:
        return
    os.makedirs(os.path.dirname(conf.decisions), exist_ok=True)
    fd = os.open(conf.decisions, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


def log(text: str) -> None:
    print(f"{utc_now()} fastpath: {text}", flush=True)


# -- probes ------------------------------------------------------------------------------------


def tls_context(conf: Config, *, server: bool = False) -> ssl.SSLContext | None:
    """The cluster's TLS: its CA verifies the other side, the node certificate is ours."""
    if not conf.tls_ca:
        return None
    purpose = ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT
    context = ssl.SSLContext(purpose)
    context.load_verify_locations(conf.tls_ca)
    context.load_cert_chain(conf.tls_cert, conf.tls_key)
    if server:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def postgres_answers(address: str, port: int, timeout: float) -> bool:
    """Whether a postmaster answers on address:port now: a TCP connect and PostgreSQL's
    SSLRequest, which a live server answers with one byte. A bare connect would also succeed
    on a frozen host (the kernel accepts for it)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


def get_json(
    address: str, port: int, name: str, path: str, context: ssl.SSLContext | None, timeout: float
) -> tuple[int, object]:
    """(HTTP status, decoded JSON) of ``GET path`` on address:port; with the cluster's TLS, the
    server's certificate must come from the CA and carry ``name``. OSError, ValueError or
    HTTPException when there is no good answer within ``timeout``."""
    sock = socket.create_connection((address, port), timeout=timeout)
    try:
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=name)
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
        conn.sock = sock  # already connected (and verified): request() uses it as it is
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        sock.close()


def patroni_status(
    address: str, port: int, name: str, context: ssl.SSLContext | None, timeout: float
) -> dict | None:
    """Patroni's ``GET /patroni`` of a node (its certificate checked against the node's name),
    or None when it does not answer within ``timeout``."""
    try:
        _, data = get_json(address, port, name, "/patroni", context, timeout)
    except (OSError, ValueError, http.client.HTTPException):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class Reach:
    """What one host saw of a node: its postmaster and its Patroni answering or not."""

    postgres: bool
    patroni: bool

    @property
    def dead(self) -> bool:
        """A miss: neither PostgreSQL nor Patroni answered. A crashed Patroni beside a running
        PostgreSQL is not a miss (the lease handles it; fencing would cut a working primary)."""
        return not self.postgres and not self.patroni


def probe(conf: Config, node: NodeConf, context: ssl.SSLContext | None) -> Reach:
    """Both probes at once, so a silent node costs one timeout per iteration, not two."""
    timeout = conf.probe_timeout_s
    found: dict = {}
    patroni = threading.Thread(
        target=lambda: found.update(
            status=patroni_status(node.address, node.patroni_port, node.name, context, timeout)
        ),
        daemon=True,
    )
    patroni.start()
    pg = postgres_answers(node.address, node.postgres_port, timeout)
    patroni.join(timeout * 3)
    return Reach(postgres=pg, patroni=found.get("status") is not None)


# -- miss counting -----------------------------------------------------------------------------


@dataclass
class MissCounter:
    """Consecutive misses of the primary, reset by an answer, a change of primary, or a loop
    that ran late: a miss seen by a starved agent says nothing about the primary."""

    needed: int
    late_s: float
    primary: str = ""
    count: int = 0
    first_miss: float = 0.0  # monotonic time of the first miss of the current run
    late_resets: int = 0

    def observe(self, primary: str, missed: bool, lateness_s: float, now: float) -> bool:
        """Count one probe; True when the primary has now missed ``needed`` times in a row."""
        if primary != self.primary:
            self.primary, self.count = primary, 0
        if lateness_s > self.late_s:
            if self.count:
                self.late_resets += 1
            self.count = 0
            return False
        if not missed:
            self.count = 0
            return False
        if self.count == 0:
            self.first_miss = now
        self.count += 1
        return self.count >= self.needed


# -- etcd (v3 JSON gateway) --------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(key: str) -> str:
    """etcd's range_end for every key under ``key`` (its last byte plus one)."""
    return key[:-1] + chr(ord(key[-1]) + 1)


class EtcdError(Exception):
    pass


class Etcd:
    """etcd's v3 JSON gateway over HTTPS with the witness's client certificate; every read
    is linearizable (the gateway's default), so a minority member cannot answer it."""

    def __init__(self, endpoints: tuple[str, ...], context: ssl.SSLContext | None, timeout=1.0):
        self.endpoints, self.context, self.timeout = endpoints, context, timeout

    def call(self, path: str, body: dict) -> dict:
        """POST to the first endpoint that answers; EtcdError when none does."""
        errors = []
        for endpoint in self.endpoints:
            parts = urllib.parse.urlsplit(endpoint)
            try:
                if parts.scheme == "https":
                    conn = http.client.HTTPSConnection(
                        parts.hostname, parts.port, timeout=self.timeout, context=self.context
                    )
                else:
                    conn = http.client.HTTPConnection(
                        parts.hostname, parts.port, timeout=self.timeout
                    )
                try:
                    conn.request(
                        "POST", path, json.dumps(body), {"Content-Type": "application/json"}
                    )
                    response = conn.getresponse()
                    data = json.loads(response.read() or b"{}")
                finally:
                    conn.close()
            except (OSError, ValueError, http.client.HTTPException) as exc:
                errors.append(f"{parts.hostname}: {exc}")
                continue
            if response.status != 200:
                errors.append(f"{parts.hostname}: {response.status} {data.get('error', '')}")
                continue
            return data
        raise EtcdError("; ".join(errors) or "no etcd endpoint")

    def get(self, key: str) -> tuple[str | None, int, int]:
        """(value, mod_revision, create_revision) of ``key``; (None, 0, 0) when absent."""
        data = self.call("/v3/kv/range", {"key": b64(key)})
        kvs = data.get("kvs") or []
        if not kvs:
            return None, 0, 0
        kv = kvs[0]
        value = unb64(kv["value"]) if kv.get("value") else ""
        return value, int(kv.get("mod_revision", 0)), int(kv.get("create_revision", 0))

    def lease(self, ttl_s: int) -> str:
        return str(self.call("/v3/lease/grant", {"TTL": ttl_s})["ID"])

    def txn(self, body: dict) -> bool:
        return bool(self.call("/v3/kv/txn", body).get("succeeded"))


def txn_intent(conf: Config, lease_id: str, leader_rev: int, intent: str) -> dict:
    """Record the intent only if no fast failover happened within the window (the intent key
    is absent: it lives on a lease of ``window_s``) and the leader key is still the one read."""
    return {
        "compare": [
            {
                "key": b64(conf.intent_key),
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "0",
            },
            {
                "key": b64(conf.prefix + "leader"),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": str(leader_rev),
            },
        ],
        "success": [
            {"request_put": {"key": b64(conf.intent_key), "value": b64(intent), "lease": lease_id}}
        ],
    }


def failover_value(candidate: str) -> str:
    """Patroni's failover key naming the candidate, without a leader (a failover, not a
    switchover): patroni/dcs/__init__.py Failover.from_node reads ``member`` as the candidate."""
    return json.dumps({"member": candidate})


def txn_handover(conf: Config, leader_rev: int, sync_rev: int, candidate: str) -> dict:
    """Delete the leader key and name the candidate, only if the leader key is still at
    ``leader_rev`` and the sync key unchanged (``sync_rev`` 0: still absent)."""
    return {
        "compare": [
            {
                "key": b64(conf.prefix + "leader"),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": str(leader_rev),
            },
            {
                "key": b64(conf.prefix + "sync"),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": str(sync_rev),
            },
        ],
        "success": [
            {"request_delete_range": {"key": b64(conf.prefix + "leader")}},
            {
                "request_put": {
                    "key": b64(conf.prefix + "failover"),
                    "value": b64(failover_value(candidate)),
                }
            },
        ],
    }


def txn_withdraw(conf: Config, failover_rev: int) -> dict:
    """Remove the failover key, only if it is still the one the agent wrote."""
    return {
        "compare": [
            {
                "key": b64(conf.prefix + "failover"),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": str(failover_rev),
            },
        ],
        "success": [{"request_delete_range": {"key": b64(conf.prefix + "failover")}}],
    }


# -- the candidate -----------------------------------------------------------------------------


def leader_name(value: str | None) -> str:
    return (value or "").strip()


def sync_candidates(value: str | None) -> list[str] | None:
    """The synchronous standbys named in Patroni's /sync key; None when there is no key."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return []
    names = (data or {}).get("sync_standby") or ""
    return [n for n in str(names).split(",") if n]


def optime(value: str | None) -> int | None:
    """The primary's last WAL position Patroni wrote to /status (Patroni 4) or /optime/leader."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if isinstance(data, int):
        return data
    if isinstance(data, dict) and isinstance(data.get("optime"), int):
        return data["optime"]
    return None


def candidate_refusal(
    name: str, status: dict | None, last_optime: int | None, max_lag: int, sync: bool
) -> str | None:
    """Why ``name`` may not be promoted by the fast path (None: it may): it must answer, be a
    running replica that was streaming from the primary, and (when the primary's last position
    is known) lag no more than maximum_lag_on_failover. In async mode the position must be
    known; in sync mode the synchronous standby holds every acknowledged commit anyway."""
    if status is None:
        return f"{name}'s Patroni does not answer"
    if status.get("state") != "running":
        return f"{name}'s PostgreSQL is {status.get('state', 'in an unknown state')}"
    if status.get("role") not in REPLICA_ROLES:
        return f"{name} is {status.get('role', 'of an unknown role')}, not a replica"
    # Streaming, or its stream just broke with the primary's death (a killed primary's host
    # resets the connection at once): what counts, as for Patroni, is how much WAL it has.
    if status.get("replication_state") not in STREAM_STATES:
        return f"{name} is not replicating ({status.get('replication_state')})"
    if status.get("pause"):
        return "the cluster is in maintenance mode (paused)"
    xlog = status.get("xlog") or {}
    position = max(int(xlog.get("received_location") or 0), int(xlog.get("replayed_location") or 0))
    if last_optime is None:
        return None if sync else f"the primary's last WAL position is unknown, so {name}'s lag is"
    lag = last_optime - position
    if lag > max_lag:
        return f"{name} lags {lag} bytes behind the primary (limit {max_lag})"
    return None


# -- HAProxy and the fence device --------------------------------------------------------------


def haproxy(conf: Config, commands: list[str]) -> list[str]:
    """Run runtime-API commands on the local HAProxy, then save its server state so a reload
    keeps them (as jobs/playbooks/haproxy_runtime.py does)."""

    def ask(command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(conf.haproxy_socket)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode().strip()

    replies = [ask(c) for c in commands]
    try:
        state = ask("show servers state")
        with open(conf.haproxy_state_file, "w", encoding="utf-8") as f:
            f.write(state + "\n")
    except OSError as exc:
        log(f"HAProxy server state not saved: {exc}")
    return replies


def maintenance_commands(backends: tuple[str, ...], node: str) -> list[str]:
    """The old primary out of every backend, its open sessions cut."""
    return [
        c
        for b in backends
        for c in (f"set server {b}/{node} state maint", f"shutdown sessions server {b}/{node}")
    ]


def primary_commands(backends: tuple[str, ...], node: str) -> list[str]:
    """The new primary up in the primary backends at once, not after ``rise 2`` checks."""
    return [
        c
        for b in backends
        for c in (f"set server {b}/{node} state ready", f"set server {b}/{node} health up")
    ]


def fence_agent(conf: Config, node: NodeConf, action: str, timeout: float) -> int:
    """Run the node's fence agent with ``action``; its options and secret go on stdin (never on
    the command line, where ps would show the secret). Its exit status; 124 on timeout."""
    stdin = f"action={action}\n{node.fence_input}".encode()
    try:
        done = subprocess.run(
            [f"{FENCE_DIR}/{node.fence_agent}"],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124
    except OSError:
        return 127
    return done.returncode


def power_off_confirmed(conf: Config, node: NodeConf) -> tuple[bool, str]:
    """Power the node off and ask the device again: (True, …) only when it says off."""
    off = fence_agent(conf, node, "off", conf.fence_timeout_s)
    if off != 0:
        return False, f"the power-off through {node.fence_agent} failed (exit {off})"
    status = fence_agent(conf, node, "status", conf.fence_timeout_s)
    if status != FENCE_OFF:
        return False, f"{node.fence_agent} did not confirm {node.name} off (status exit {status})"
    return True, f"{node.fence_agent} confirmed {node.name} off"


# -- the peer's opinion ------------------------------------------------------------------------


def peer_opinion(
    conf: Config, peer: NodeConf, target: str, context: ssl.SSLContext | None
) -> Reach | None:
    """What ``peer``'s host sees of ``target`` now (None: the peer did not answer)."""
    timeout = conf.probe_timeout_s * 2 + 1.0
    path = "/reach?" + urllib.parse.urlencode({"node": target})
    try:
        status, data = get_json(peer.address, peer.peer_port, peer.name, path, context, timeout)
        if status != 200:
            return None
        return Reach(postgres=bool(data["postgres"]), patroni=bool(data["patroni"]))
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return None


def peer_server(conf: Config) -> None:
    """Peer mode: answer the witness's "can you reach node X" over mutual TLS."""
    context = tls_context(conf, server=True)
    client_context = tls_context(conf)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if context is not None and not peer_is_witness(
                self.connection.getpeercert(), conf.witness
            ):
                return self._answer(403, {"error": "only the witness may ask"})
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            node = conf.nodes.get((query.get("node") or [""])[0])
            if not self.path.startswith("/reach") or node is None:
                return self._answer(404, {"error": "ask /reach?node=<a database node>"})
            seen = probe(conf, node, client_context)
            return self._answer(200, {"postgres": seen.postgres, "patroni": seen.patroni})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    me = next(n for n in conf.nodes.values() if n.address == conf.peer_listen)
    server = http.server.ThreadingHTTPServer((conf.peer_listen, me.peer_port), Handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    log(f"peer of {conf.scope} answering on {conf.peer_listen}:{me.peer_port}")
    server.serve_forever()


def peer_is_witness(cert: dict | None, witness: str) -> bool:
    """Whether the client's certificate (already verified against the CA) names the witness."""
    names = [v for k, v in (cert or {}).get("subjectAltName", ()) if k == "DNS"]
    return bool(witness) and witness in names


# -- the sequence ------------------------------------------------------------------------------


class Declined(Exception):
    """A precondition failed: the sentence says which; the lease decides."""


@dataclass
class Attempt:
    """One run of the sequence, for its decision line."""

    primary: str
    candidate: str | None = None
    timings: dict = field(default_factory=dict)
    haproxy_maint: bool = False


class Agent:
    """The witness's loop: probe, count, ask the peer, act."""

    def __init__(self, conf: Config) -> None:
        self.conf = conf
        self.tls = tls_context(conf)
        self.etcd = Etcd(conf.etcd_endpoints, self.tls)
        self.counter = MissCounter(needed=conf.misses, late_s=conf.late_s)
        self.primary = ""
        self.last_leader_read = 0.0
        self.last_optime: int | None = None  # the primary's last WAL position (read_keys)
        # The primary the last decision was about, until it answers again or another node
        # leads: a declined attempt is not retried every second while the lease runs out.
        self.decided_on = ""

    def run(self) -> None:
        conf = self.conf
        fenced = ", ".join(n for n, c in conf.nodes.items() if c.fence_agent) or "no node"
        log(
            f"watching {conf.scope}: every {conf.interval_s} s, {conf.misses} misses, "
            f"fence devices on {fenced}"
        )
        planned = time.monotonic()
        while True:
            now = time.monotonic()
            lateness = now - planned
            try:
                self.iteration(lateness)
            except Exception as exc:
                log(f"iteration failed: {type(exc).__name__}: {exc}")
            planned = max(planned + conf.interval_s, time.monotonic())
            time.sleep(max(0.0, planned - time.monotonic()))

    def refresh_primary(self) -> None:
        """Who holds the leader key, read again every second (and after every action)."""
        now = time.monotonic()
        if self.primary and now - self.last_leader_read < 1.0:
            return
        try:
            value, _, _ = self.etcd.get(self.conf.prefix + "leader")
        except EtcdError:
            return  # keep the last known primary; acting needs etcd anyway
        self.primary, self.last_leader_read = leader_name(value), now

    def iteration(self, lateness: float) -> None:
        self.refresh_primary()
        node = self.conf.nodes.get(self.primary)
        if node is None:
            self.counter.observe("", False, 0.0, time.monotonic())
            return
        started = time.monotonic()
        seen = probe(self.conf, node, self.tls)
        # A probe that took far longer than its timeouts ran starved too.
        slow = time.monotonic() - started - 3 * self.conf.probe_timeout_s
        dead = self.counter.observe(node.name, seen.dead, max(lateness, slow), time.monotonic())
        if not seen.dead or node.name != self.decided_on:
            self.decided_on = ""
        if dead and not self.decided_on:
            detect_ms = (time.monotonic() - self.counter.first_miss) * 1000
            self.counter.count = 0
            self.decided_on = node.name  # one decision per death: no retry while it lasts
            self.act(node, detect_ms)
            self.last_leader_read = 0.0

    def act(self, primary: NodeConf, detect_ms: float) -> None:
        """The sequence; one decision line whatever happens."""
        attempt = Attempt(primary=primary.name, timings={"detect": detect_ms})
        begun = time.monotonic() - detect_ms / 1000
        try:
            entry = self.sequence(primary, attempt, begun)
        except Declined as exc:
            self.undo_maintenance(attempt)
            entry = decision("declined", primary.name, attempt.candidate, str(exc), attempt.timings)
        except Exception as exc:
            self.undo_maintenance(attempt)
            entry = decision(
                "failed",
                primary.name,
                attempt.candidate,
                f"The fast failover of {primary.name} stopped on an unexpected "
                f"error ({type(exc).__name__}: {exc}); the lease decides.",
                attempt.timings,
            )
        record(self.conf, entry)

    def undo_maintenance(self, attempt: Attempt) -> None:
        """A declined attempt hands the old primary back to HAProxy's checks."""
        if attempt.haproxy_maint:
            try:
                haproxy(
                    self.conf,
                    [f"set server {b}/{attempt.primary} state ready" for b in self.conf.backends],
                )
            except OSError as exc:
                log(f"HAProxy: {attempt.primary} left in maintenance ({exc})")

    def sequence(self, primary: NodeConf, attempt: Attempt, begun: float) -> dict:
        """Each step a precondition for the next (docs/fast-failover.md)."""
        conf, name = self.conf, primary.name
        leader_rev, sync_value, sync_rev, candidate = self.read_keys(name)
        attempt.candidate = candidate.name
        peer = peer_opinion(conf, candidate, name, self.tls)
        if peer is None or not peer.dead:
            said = "did not answer" if peer is None else "still reaches it"
            raise Declined(
                f"{name} looks dead from the witness but {candidate.name}'s host "
                f"{said}, so it is not fenced; the lease decides."
            )
        if not primary.fence_agent:
            raise Declined(
                f"{name} is unreachable from the witness and from {candidate.name}, "
                f"but it has no tested fence device; the lease decides."
            )
        self.check_candidate(candidate, sync_value is not None, name)
        self.record_intent(name, candidate.name, leader_rev)
        haproxy(conf, maintenance_commands(conf.backends, name))
        attempt.haproxy_maint = True
        fenced_at = time.monotonic()
        confirmed, said = power_off_confirmed(conf, primary)
        attempt.timings["fence"] = (time.monotonic() - fenced_at) * 1000
        if not confirmed:
            raise Declined(
                f"{name} was not fenced for certain ({said}), so the leader key "
                f"stays; the lease decides."
            )
        handover_at = time.monotonic()
        if not self.etcd.txn(txn_handover(conf, leader_rev, sync_rev, candidate.name)):
            attempt.haproxy_maint = False  # it is off for certain: keep it out of HAProxy
            raise Declined(
                f"{name} is powered off but the leader or sync key changed after it "
                f"was read, so {candidate.name} is not named; Patroni decides."
            )
        attempt.haproxy_maint = False
        took = self.wait_for_takeover(candidate)
        attempt.timings["handover"] = (time.monotonic() - handover_at) * 1000
        attempt.timings["total"] = (time.monotonic() - begun) * 1000
        if not took:
            return self.withdraw(attempt, candidate.name)
        haproxy(conf, primary_commands(conf.primary_backends, candidate.name))
        attempt.timings["handover"] = (time.monotonic() - handover_at) * 1000
        attempt.timings["total"] = (time.monotonic() - begun) * 1000
        return decision(
            "acted",
            name,
            candidate.name,
            f"{name} was unreachable from the witness and from {candidate.name} for "
            f"{attempt.timings['detect'] / 1000:.1f} s and is powered off ({said}); the leader "
            f"key was released to {candidate.name}, which promoted and is now the primary in "
            "HAProxy.",
            attempt.timings,
        )

    def read_keys(self, name: str):
        """The leader key (still ``name``'s), the sync key, and the candidate it names (sync) or
        the other database node (async; the first one with a streaming replica's status)."""
        conf = self.conf
        try:
            leader, leader_rev, _ = self.etcd.get(conf.prefix + "leader")
            sync_value, sync_rev, _ = self.etcd.get(conf.prefix + "sync")
            status_value, _, _ = self.etcd.get(conf.prefix + "status")
        except EtcdError as exc:
            raise Declined(
                f"{name} looks dead but etcd cannot be read from the witness ({exc}), "
                "so nothing is done; the lease decides."
            ) from None
        if leader_name(leader) != name:
            raise Declined(
                f"{name} looks dead but the leader key is now "
                f"{leader_name(leader) or 'free'}, so Patroni is already deciding."
            )
        self.last_optime = optime(status_value)
        named = sync_candidates(sync_value)
        if named is not None:
            pool = [n for n in named if n in conf.nodes and n != name]
            if not pool:
                raise Declined(
                    f"{name} looks dead but no synchronous standby is named in the "
                    "sync key, so no one may take over without losing data."
                )
        else:
            pool = [n for n in conf.nodes if n != name]
        if not pool:
            raise Declined(f"{name} looks dead but there is no other database node.")
        return leader_rev, sync_value, sync_rev, conf.nodes[pool[0]]

    def check_candidate(self, candidate: NodeConf, sync: bool, name: str) -> None:
        status = patroni_status(
            candidate.address, candidate.patroni_port, candidate.name, self.tls, 2.0
        )
        why = candidate_refusal(
            candidate.name, status, self.last_optime, self.conf.maximum_lag_on_failover, sync
        )
        if why:
            raise Declined(
                f"{name} looks dead but {why}, so {candidate.name} is not promoted "
                "early; the lease decides."
            )

    def record_intent(self, name: str, candidate: str, leader_rev: int) -> None:
        """The intent in etcd: proves the witness is on etcd's majority side, and spends the
        window's one fast failover."""
        intent = json.dumps({"primary": name, "candidate": candidate, "at": utc_now()})
        try:
            lease_id = self.etcd.lease(self.conf.window_s)
            done = self.etcd.txn(txn_intent(self.conf, lease_id, leader_rev, intent))
        except EtcdError as exc:
            raise Declined(
                f"{name} looks dead but the intent could not be written to etcd "
                f"({exc}), so nothing is done; the lease decides."
            ) from None
        if not done:
            raise Declined(
                f"{name} looks dead but a fast failover already happened within the "
                f"last {self.conf.window_s} s (or the leader key changed), so the "
                "lease decides."
            )

    def wait_for_takeover(self, candidate: NodeConf) -> bool:
        """Until the candidate holds the leader key and its Patroni says it runs as primary."""
        deadline = time.monotonic() + self.conf.takeover_timeout_s
        while time.monotonic() < deadline:
            try:
                value, _, _ = self.etcd.get(self.conf.prefix + "leader")
            except EtcdError:
                value = None
            if leader_name(value) == candidate.name:
                status = patroni_status(
                    candidate.address, candidate.patroni_port, candidate.name, self.tls, 0.5
                )
                if status and status.get("role") == "primary" and status.get("state") == "running":
                    return True
            time.sleep(0.05)
        return False

    def withdraw(self, attempt: Attempt, candidate: str) -> dict:
        """The candidate did not take over in time: remove the failover key if it is ours."""
        try:
            value, rev, _ = self.etcd.get(self.conf.prefix + "failover")
            if value is not None and json.loads(value or "{}").get("member") == candidate:
                self.etcd.txn(txn_withdraw(self.conf, rev))
        except (EtcdError, ValueError) as exc:
            log(f"the failover key could not be withdrawn: {exc}")
        return decision(
            "withdrawn",
            attempt.primary,
            candidate,
            f"{attempt.primary} is powered off and its leader key released, but {candidate} did "
            f"not take over within {self.conf.takeover_timeout_s:.0f} s, so the failover key "
            "naming it was withdrawn; Patroni elects the healthiest standby.",
            attempt.timings,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--peer", action="store_true", help="answer the witness's reach queries")
    args = parser.parse_args(argv)
    conf = load_config(args.config)
    if args.peer:
        peer_server(conf)
    else:
        Agent(conf).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
