"""The monitor's eyes: read one cluster's Patroni, PostgreSQL and HAProxy with short timeouts.

Runs in a worker (never in a web request). Every read is bounded by MONITOR_TIMEOUT_S and the
nodes are read in parallel, so a dead node costs one timeout, not one per request, and one slow
cluster never holds up another (each cluster is its own task).
"""

import csv
import io
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import psycopg2
from django.conf import settings

from .health import ClusterView, MemberView
from .models import Cluster, Node, NodeStatus

PATRONI_PORT, STATS_PORT, POSTGRES_PORT = 8008, 7000, 5432
MONITOR_USER, STATS_USER = "hacenter_monitor", "hacenter"


@dataclass
class NodeReading:
    """What a direct SQL read of one database node found (None: it did not answer)."""

    writable: bool | None = None
    wal_position: int | None = None
    started: datetime | None = None  # pg_postmaster_start_time()
    replication: dict[str, dict] = field(default_factory=dict)  # on a primary: per standby


@dataclass
class Reading:
    """Everything one monitor pass saw of a cluster, raw, before any judgement."""

    patroni: dict | None  # /cluster from the first member that answered
    history: list  # /history: [timeline, lsn, reason, timestamp, new_leader]
    nodes: dict[str, NodeReading]
    proxy: dict[str, dict[str, str]] | None  # backend -> server -> status; None: unreadable


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _get_json(url: str, timeout: float) -> object | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http only
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def read_patroni(nodes: list[Node], timeout: float) -> tuple[dict | None, list]:
    """/cluster and /history from the first database node that answers."""
    for node in nodes:
        base = f"http://{_host(node.address)}:{PATRONI_PORT}"
        found = _get_json(f"{base}/cluster", timeout)
        if isinstance(found, dict) and "members" in found:
            history = _get_json(f"{base}/history", timeout)
            return found, history if isinstance(history, list) else []
    return None, []


REPLICATION_SQL = """
SELECT application_name, state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
       extract(epoch FROM write_lag), extract(epoch FROM flush_lag), extract(epoch FROM replay_lag)
FROM pg_stat_replication
"""


def read_node(node: Node, password: str, timeout: float) -> NodeReading:
    """pg_is_in_recovery() straight from the node, and on a primary its standbys' lag."""
    try:
        conn = psycopg2.connect(
            host=node.address,
            port=POSTGRES_PORT,
            user=MONITOR_USER,
            password=password,
            dbname="postgres",
            connect_timeout=max(1, int(timeout)),
            options=f"-c statement_timeout={int(timeout * 1000)}",
        )
    except psycopg2.Error:
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
            if not in_recovery:
                cur.execute(REPLICATION_SQL)
                for name, state, lag_bytes, write_s, flush_s, replay_s in cur.fetchall():
                    reading.replication[name] = {
                        "state": state,
                        "lag_bytes": lag_bytes,
                        "write_lag_s": write_s,
                        "flush_lag_s": flush_s,
                        "replay_lag_s": replay_s,
                    }
            return reading
    except psycopg2.Error:
        return NodeReading()
    finally:
        conn.close()


def read_proxy(
    proxy: Node | None, password: str, timeout: float
) -> dict[str, dict[str, str]] | None:
    """HAProxy's stats CSV as {backend: {server: status}}."""
    if proxy is None:
        return None
    url = f"http://{_host(proxy.address)}:{STATS_PORT}/;csv"
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, STATS_USER, password)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
    try:
        with opener.open(url, timeout=timeout) as resp:
            text = resp.read().decode().lstrip("# ")
    except (OSError, urllib.error.URLError):
        return None
    backends: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("svname") not in ("FRONTEND", "BACKEND"):
            backends.setdefault(row["pxname"], {})[row["svname"]] = row.get("status", "")
    return backends


@dataclass
class Inventory:
    """What one pass needs from the database, loaded with two queries."""

    db_nodes: list[Node]
    proxy: Node | None
    secrets: dict[str, str]
    statuses: dict[str, NodeStatus]  # by node name; absent before the first pass

    @property
    def fenced(self) -> set[str]:
        return {name for name, s in self.statuses.items() if s.fenced}


_SECRETS_CACHE: dict[int, tuple[float, dict[str, str]]] = {}
SECRETS_TTL_S = 60.0


def _monitor_secrets(cluster: Cluster) -> dict[str, str]:
    """The two passwords a pass uses, decrypted at most once a minute per worker process."""
    now = time.monotonic()
    cached = _SECRETS_CACHE.get(cluster.pk)
    if cached and cached[0] > now:
        return cached[1]
    found = dict(
        cluster.secrets.filter(name__in=["monitor", "haproxy_stats"]).values_list("name", "value")
    )
    _SECRETS_CACHE[cluster.pk] = (now + SECRETS_TTL_S, found)
    return found


def load_inventory(cluster: Cluster) -> Inventory:
    nodes = list(cluster.nodes.select_related("status"))
    db_nodes = [n for n in nodes if n.kind == Node.Kind.DATABASE]
    statuses = {n.name: n.status for n in db_nodes if hasattr(n, "status")}
    proxy = next((n for n in nodes if n.kind == Node.Kind.PROXY), None)
    return Inventory(db_nodes, proxy, _monitor_secrets(cluster), statuses)


def read_cluster(inventory: Inventory) -> Reading:
    """One pass over the cluster: Patroni, every node's SQL and HAProxy, in parallel."""
    timeout = settings.MONITOR_TIMEOUT_S
    secrets, db_nodes = inventory.secrets, inventory.db_nodes
    with ThreadPoolExecutor(max_workers=len(db_nodes) + 2) as pool:
        patroni = pool.submit(read_patroni, db_nodes, timeout)
        proxy = pool.submit(read_proxy, inventory.proxy, secrets.get("haproxy_stats", ""), timeout)
        readings = {
            n.name: pool.submit(read_node, n, secrets.get("monitor", ""), timeout) for n in db_nodes
        }
        found, history = patroni.result()
        return Reading(
            patroni=found,
            history=history,
            proxy=proxy.result(),
            nodes={name: f.result() for name, f in readings.items()},
        )


def to_view(inventory: Inventory, reading: Reading) -> ClusterView:
    """The judgement-ready view of a reading (see clusters.health)."""
    members = {m["name"]: m for m in (reading.patroni or {}).get("members", [])}
    leader = next(
        (n for n, m in members.items() if m.get("role") in ("leader", "primary", "master")), None
    )
    leader_reading = reading.nodes.get(leader or "", NodeReading())
    rw = (reading.proxy or {}).get("primary", {})
    ro = (reading.proxy or {}).get("be_replicas", {})
    views = []
    for node in inventory.db_nodes:
        member = members.get(node.name, {})
        lag = leader_reading.replication.get(node.name, {})
        lag_bytes = lag.get("lag_bytes")
        if lag_bytes is None and isinstance(member.get("lag"), int):
            lag_bytes = member["lag"]  # Patroni's view when the primary could not be read
        # replay_lag is NULL once a standby has caught up and nothing is written: that is 0 s.
        lag_seconds = lag.get("replay_lag_s")
        if lag_seconds is None and lag_bytes == 0:
            lag_seconds = 0.0
        views.append(
            MemberView(
                name=node.name,
                patroni_role=member.get("role"),
                patroni_state=member.get("state"),
                writable=reading.nodes[node.name].writable,
                timeline=member.get("timeline"),
                lag_bytes=lag_bytes if node.name != leader else None,
                lag_seconds=lag_seconds if node.name != leader else None,
                proxy_rw=rw.get(node.name) if reading.proxy is not None else None,
                proxy_ro=ro.get(node.name) if reading.proxy is not None else None,
                fenced=node.name in inventory.fenced,
            )
        )
    return ClusterView(
        members=tuple(views),
        patroni_answered=reading.patroni is not None,
        leader=leader,
        paused=bool((reading.patroni or {}).get("pause")),
        proxy_answered=reading.proxy is not None,
        lag_threshold_bytes=settings.LAG_ALERT_BYTES,
    )
