"""The monitor's eyes: read clusters' Patroni, PostgreSQL and HAProxy with short timeouts.

Runs in a worker (never in a web request). Every read is bounded by MONITOR_TIMEOUT_S and runs
in the worker process's read pool, all reads of all clusters of a batch at once, so a dead node
costs one timeout, not one per request, and a slow cluster holds up no other: each cluster's
reading completes on its own (`start_reading`) and is recorded as soon as it is complete.
"""

import base64
import csv
import http.client
import io
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import psycopg2
from django.conf import settings

from clusters.models import Cluster, ClusterSecret, Node, NodeStatus
from jobs import patroni_api
from jobs.configs.haproxy import NODE_HEADER
from jobs.postgres_tls import UnsafeCaDirectory, node_tls

logger = logging.getLogger(__name__)

PATRONI_PORT, STATS_PORT, POSTGRES_PORT = 8008, 7000, 5432
MONITOR_USER, STATS_USER = "hacenter_monitor", "hacenter"


@dataclass
class NodeReading:
    """What a direct SQL read of one database node found (None: it did not answer)."""

    writable: bool | None = None
    wal_position: int | None = None
    started: datetime | None = None  # pg_postmaster_start_time()
    replication: dict[str, dict] = field(default_factory=dict)  # on a primary: per standby
    # On a standby: how far its replay is behind, by its own clock (STANDBY_LAG_SQL).
    standby_lag_s: float | None = None
    # Read only when PostgreSQL did not answer: does the server take a TCP connection on its
    # SSH port (it is up, its database is not) or not (down, or cut off from the console)?
    host_answers: bool | None = None
    # On a primary that archives WAL: pg_stat_archiver and how many segments wait (the keys of
    # jobs.playbooks.backup_info.parse_archiver, plus "waiting"); None when it does not.
    archiver: dict | None = None


@dataclass
class Reading:
    """Everything one monitor pass saw of a cluster, raw, before any judgement."""

    patroni: dict | None  # /cluster from the first member that answered
    history: list  # /history: [timeline, lsn, reason, timestamp, new_leader]
    nodes: dict[str, NodeReading]
    proxy: dict[str, dict[str, str]] | None  # backend -> server -> status; None: unreadable
    # With a floating address: the proxy that answered on it (None: nobody, or no address),
    # and the proxies whose stats did not answer at their own address.
    vip_holder: str | None = None
    proxies_silent: tuple[str, ...] = ()


def _http_get(
    address: str,
    port: int,
    path: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    answer_headers: dict[str, str] | None = None,
) -> bytes | None:
    """The body of a 200 answer, else None (a redirect too: http.client never follows one).
    Plain http.client: urllib's openers and handlers cost about as much CPU as the rest of the
    pass, for features these reads do not use. With `context`, https verified by it; the
    answer's headers go into `answer_headers` when given (lower-case names)."""
    if context is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            address, port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        if answer_headers is not None:
            answer_headers.update((k.lower(), v) for k, v in response.getheaders())
        return body if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _get_json(node: Node, path: str, timeout: float) -> object | None:
    """Patroni's JSON answer from `node`: over https verified against the cluster's CA once
    setup made its REST API speak TLS (`Node.tls_active`), plain http before."""
    try:
        context = patroni_api.tls_context(node)
    except patroni_api.PatroniUnavailable:
        return None
    body = _http_get(node.address, PATRONI_PORT, path, timeout, context=context)
    try:
        return json.loads(body) if body is not None else None
    except ValueError:
        return None


LEADER_ROLES = ("leader", "primary", "master")


def leader_in(found: dict) -> str | None:
    """The member a /cluster answer lists as leader, if any."""
    members = found.get("members", [])
    return next((m.get("name") for m in members if m.get("role") in LEADER_ROLES), None)


def leaders_named(nodes: list[Node], timeout: float) -> dict[str, str | None]:
    """The leader each node's own Patroni names in /cluster (None: nobody), for the nodes that
    answer; asked one by one, only before a fence (see `health.fence_confirmed`)."""
    named = {}
    for node in nodes:
        found = _get_json(node, "/cluster", timeout)
        if isinstance(found, dict) and "members" in found:
            named[node.name] = leader_in(found)
    return named


def read_patroni(
    nodes: list[Node], timeout: float, *, known_leader: str | None = None, history: bool = True
) -> tuple[dict | None, list]:
    """/cluster from the first database node that answers, and /history from the same node when
    `history` is asked for or the leader is not `known_leader` any more (a hand-over: its
    promotion time is in the history). Otherwise the history is not needed and not read."""
    for node in nodes:
        found = _get_json(node, "/cluster", timeout)
        if isinstance(found, dict) and "members" in found:
            if not history and leader_in(found) == known_leader:
                return found, []
            entries = _get_json(node, "/history", timeout)
            return found, entries if isinstance(entries, list) else []
    return None, []


REPLICATION_SQL = """
SELECT application_name, state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
       extract(epoch FROM write_lag), extract(epoch FROM flush_lag), extract(epoch FROM replay_lag)
FROM pg_stat_replication
"""


# On a primary with archive_mode on: the archiver's figures, and the segments waiting for it
# (.ready files; pg_ls_archive_statusdir needs pg_monitor, which the monitoring role has).
ARCHIVER_SQL = """
SELECT last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time,
       extract(epoch FROM now() - last_archived_time)::int,
       (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready')
FROM pg_stat_archiver WHERE current_setting('archive_mode') <> 'off'
"""


def _archiver(cur) -> dict | None:
    """The primary's archiver as backup_info.archive_trouble reads it; None when archive_mode
    is off or the read failed (it costs the figure, not the node)."""
    try:
        cur.execute(ARCHIVER_SQL)
        row = cur.fetchone()
    except psycopg2.Error:
        return None
    if row is None:
        return None
    last_wal, last_at, failed, failed_wal, failed_at, age, waiting = row
    return {
        "last_archived_wal": last_wal,
        "last_archived_at": last_at.isoformat() if last_at else None,
        "failed_count": int(failed or 0),
        "last_failed_wal": failed_wal,
        "last_failed_at": failed_at.isoformat() if failed_at else None,
        "last_archived_age_s": age,
        "waiting": int(waiting or 0),
    }


# A standby's replay delay by its own reading, for when the primary's replay_lag is NULL (see
# to_view): 0 once it has replayed all it received, else the age of the last transaction it
# replayed (an upper bound: the oldest one it has not replayed yet is younger), NULL if it has
# replayed none since it started.
STANDBY_LAG_SQL = """
SELECT CASE WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() THEN 0
       ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
"""


def host_answers(node: Node, timeout: float) -> bool:
    """Whether the server takes a TCP connection on its SSH port (nothing is sent)."""
    try:
        socket.create_connection((node.address, node.ssh_port), timeout=timeout).close()
    except OSError:
        return False
    return True


def read_node(node: Node, password: str, timeout: float) -> NodeReading:
    """pg_is_in_recovery() straight from the node, on a primary its standbys' lag, on a standby
    its own replay delay; when PostgreSQL does not answer, whether the server itself does."""
    reading = _read_postgres(node, password, timeout)
    if reading.writable is None:
        reading.host_answers = host_answers(node, timeout)
    return reading


def _read_postgres(node: Node, password: str, timeout: float) -> NodeReading:
    try:
        conn = psycopg2.connect(
            host=node.address,
            port=POSTGRES_PORT,
            user=MONITOR_USER,
            password=password,
            dbname="postgres",
            connect_timeout=max(1, int(timeout)),
            options=f"-c statement_timeout={int(timeout * 1000)}",
            # verify-full against the cluster's CA once the node serves its certificate.
            **node_tls(node),
        )
    except psycopg2.Error:
        return NodeReading()
    except (OSError, UnsafeCaDirectory) as exc:  # the CA file for sslrootcert
        logger.error("monitor: cannot read %s: %s", node.name, exc)
        return NodeReading()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() "
                "THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0', "
                "pg_postmaster_start_time()"
            )
            in_recovery, position, started = cur.fetchone()
            reading = NodeReading(
                writable=not in_recovery, wal_position=int(position or 0), started=started
            )
            if in_recovery:
                reading.standby_lag_s = _standby_lag(cur)
            else:
                cur.execute(REPLICATION_SQL)
                for name, state, lag_bytes, write_s, flush_s, replay_s in cur.fetchall():
                    reading.replication[name] = {
                        "state": state,
                        "lag_bytes": lag_bytes,
                        "write_lag_s": _seconds(write_s),
                        "flush_lag_s": _seconds(flush_s),
                        "replay_lag_s": _seconds(replay_s),
                    }
                reading.archiver = _archiver(cur)
            return reading
    except psycopg2.Error:
        return NodeReading()
    finally:
        conn.close()


def _standby_lag(cur) -> float | None:
    """STANDBY_LAG_SQL's answer; None if it has none. The node has already answered, so a
    failure here costs the figure, not the node's reading."""
    try:
        cur.execute(STANDBY_LAG_SQL)
        row = cur.fetchone()
    except psycopg2.Error:
        return None
    seconds = _seconds(row[0]) if row else None
    # Commit times are the primary's clock: a standby's clock a little behind makes it negative.
    # (Not greatest(0, …) in SQL: that turns NULL into 0.)
    return None if seconds is None else max(0.0, seconds)


def _seconds(value: object) -> float | None:
    """extract(epoch …) is numeric (a Decimal) since PostgreSQL 14; the monitor stores floats and
    compares them with what it stored, so it converts here once."""
    return None if value is None else float(value)


def read_proxy(
    proxy: Node | None, password: str, timeout: float
) -> dict[str, dict[str, str]] | None:
    """HAProxy's stats CSV as {backend: {server: status}}."""
    if proxy is None:
        return None
    return read_proxy_at(proxy.address, password, timeout)[0]


def read_proxy_at(
    address: str, password: str, timeout: float
) -> tuple[dict[str, dict[str, str]] | None, str | None]:
    """HAProxy's stats CSV at `address` as {backend: {server: status}}, and the name of the
    proxy that answered when its HAProxy says it (two proxies behind a floating address: the
    monitor reads through that address, so who answers is who holds it)."""
    # Credentials sent up front: waiting for HAProxy's 401 first (as urllib's auth handler
    # does) costs one more round trip per pass for every cluster.
    token = base64.b64encode(f"{STATS_USER}:{password}".encode()).decode()
    answer: dict[str, str] = {}
    body = _http_get(
        address,
        STATS_PORT,
        "/;csv",
        timeout,
        {"Authorization": f"Basic {token}"},
        answer_headers=answer,
    )
    if body is None:
        return None, None
    return _stats_backends(body), answer.get(NODE_HEADER.lower()) or None


def _stats_backends(body: bytes) -> dict[str, dict[str, str]]:
    """The stats CSV's servers by backend, with their status."""
    text = body.decode(errors="replace").lstrip("# ")
    backends: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("svname") not in ("FRONTEND", "BACKEND"):
            backends.setdefault(row["pxname"], {})[row["svname"]] = row.get("status", "")
    return backends


@dataclass
class Inventory:
    """What one pass over one cluster needs from the database (see load_inventories)."""

    cluster: Cluster
    db_nodes: list[Node]
    proxy: Node | None
    secrets: dict[str, str]
    statuses: dict[str, NodeStatus]  # by node name; absent before the first pass
    # Read Patroni's /history even if the leader did not change: a hand-over's timings are not
    # complete yet (see clusters.monitoring.observe_writes.Context.history_wanted).
    history_wanted: bool = True
    # Every proxy, the first one first (two behind a floating address).
    proxies: list[Node] = field(default_factory=list)

    @property
    def fenced(self) -> set[str]:
        return {name for name, s in self.statuses.items() if s.fenced}


_SECRETS_CACHE: dict[int, tuple[float, dict[str, str]]] = {}
_SECRETS_LOCK = threading.Lock()
SECRETS_TTL_S = 60.0
MONITOR_SECRETS = ["monitor", "haproxy_stats"]


def _monitor_secrets(cluster_ids: list[int]) -> dict[int, dict[str, str]]:
    """The two passwords a pass uses per cluster, decrypted at most once a minute per worker
    process (one query for all the clusters whose cache entry expired)."""
    now = time.monotonic()
    with _SECRETS_LOCK:
        found = {
            pk: hit[1] for pk in cluster_ids if (hit := _SECRETS_CACHE.get(pk)) and hit[0] > now
        }
    missing = [pk for pk in cluster_ids if pk not in found]
    if missing:
        fresh: dict[int, dict[str, str]] = {pk: {} for pk in missing}
        rows = ClusterSecret.objects.filter(cluster_id__in=missing, name__in=MONITOR_SECRETS)
        for cluster_id, name, value in rows.values_list("cluster_id", "name", "value"):
            fresh[cluster_id][name] = value
        with _SECRETS_LOCK:
            _SECRETS_CACHE.update((pk, (now + SECRETS_TTL_S, v)) for pk, v in fresh.items())
        found.update(fresh)
    return found


def load_inventories(cluster_ids: list[int], lease: datetime) -> list[Inventory]:
    """The inventories of the clusters whose monitor lease is still `lease` (a batch that waited
    in the queue past its lease may find some taken over), in one query plus the secrets."""
    by_cluster: dict[int, list[Node]] = {}
    for node in Node.objects.filter(
        cluster_id__in=cluster_ids, cluster__monitor_lease=lease
    ).select_related("cluster", "status"):
        by_cluster.setdefault(node.cluster_id, []).append(node)
    secrets = _monitor_secrets(list(by_cluster))
    inventories = []
    for cluster_id, nodes in by_cluster.items():
        db_nodes = [n for n in nodes if n.kind == Node.Kind.DATABASE]
        inventories.append(
            Inventory(
                cluster=nodes[0].cluster,
                db_nodes=db_nodes,
                proxy=next((n for n in nodes if n.kind == Node.Kind.PROXY), None),
                proxies=sorted(
                    (n for n in nodes if n.kind == Node.Kind.PROXY), key=lambda n: n.name
                ),
                secrets=secrets[cluster_id],
                statuses={n.name: n.status for n in db_nodes if hasattr(n, "status")},
            )
        )
    return inventories


def _read_proxy_entry(
    proxy: Node | None, vip: str, password: str, timeout: float
) -> tuple[dict[str, dict[str, str]] | None, str | None]:
    """HAProxy's stats where clients connect: the floating address, else the (only) proxy."""
    if vip:
        return read_proxy_at(vip, password, timeout)
    return read_proxy(proxy, password, timeout), None


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _read_pool() -> ThreadPoolExecutor:
    """One pool of reader threads per worker process, shared by its batches. Reads only wait on
    sockets, so threads are cheap; MONITOR_READ_THREADS bounds how many timeouts (dead nodes)
    can be waited out at once before a read waits for a free thread."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=settings.MONITOR_READ_THREADS, thread_name_prefix="monitor-read"
            )
        return _POOL


class PendingReading:
    """The reads of one cluster, running in the read pool; `on_complete` is called (in a pool
    thread) once every read has returned."""

    def __init__(self, inventory: Inventory, on_complete: Callable[["PendingReading"], None]):
        timeout = settings.MONITOR_TIMEOUT_S
        secrets, db_nodes = inventory.secrets, inventory.db_nodes
        pool = _read_pool()
        self.inventory = inventory
        self._on_complete = on_complete
        self._left = len(db_nodes) + 2
        self._lock = threading.Lock()
        self._patroni = pool.submit(
            read_patroni,
            db_nodes,
            timeout,
            known_leader=inventory.cluster.last_leader or None,
            history=inventory.history_wanted,
        )
        # Clients use the floating address when there is one: the monitor reads HAProxy there.
        vip = inventory.cluster.virtual_address
        self._proxy = pool.submit(
            _read_proxy_entry,
            inventory.proxy,
            vip,
            secrets.get("haproxy_stats", ""),
            timeout,
        )
        self._nodes = {
            n.name: pool.submit(read_node, n, secrets.get("monitor", ""), timeout) for n in db_nodes
        }
        # With a floating address, each proxy at its own address too: the one not holding it
        # must answer, or the address has nowhere to go.
        self._proxies = {
            p.name: pool.submit(read_proxy, p, secrets.get("haproxy_stats", ""), timeout)
            for p in (inventory.proxies if vip else [])
        }
        self._left += len(self._proxies)
        for future in (self._patroni, self._proxy, *self._nodes.values(), *self._proxies.values()):
            future.add_done_callback(self._one_done)

    def _one_done(self, _: Future) -> None:
        with self._lock:
            self._left -= 1
            complete = self._left == 0
        if complete:
            self._on_complete(self)

    def result(self) -> Reading:
        """The reading; blocks until every read returned (each is bounded by its timeout)."""
        found, history = self._patroni.result()
        proxy, holder = self._proxy.result()
        return Reading(
            patroni=found,
            history=history,
            proxy=proxy,
            vip_holder=holder,
            proxies_silent=tuple(n for n, f in self._proxies.items() if f.result() is None),
            nodes={name: f.result() for name, f in self._nodes.items()},
        )
