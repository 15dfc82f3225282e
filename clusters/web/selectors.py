"""Reads of the inventory shaped for the API and pages (they only ever read the database)."""

from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from clusters.inventory import pki
from clusters.inventory.connection_strings import ca_file_name, tls_verified
from clusters.models import Cluster, ClusterEvent, Credential, Incident, Node, NodeStatus
from clusters.monitoring import health
from clusters.monitoring.failover_outlook import Member, failover_outlook
from clusters.monitoring.lag_history import lag_minutes_series
from clusters.web.application_selectors import application_detail
from jobs.configs.patroni import MAXIMUM_LAG_ON_FAILOVER

# Patroni's own default, for an adopted cluster whose layout does not say.
PATRONI_DEFAULT_MAXIMUM_LAG = 1048576
# A reading older than this is no ground for "if the primary died now" (the monitor reads
# every few seconds; a stalled monitor must not leave an old verdict standing).
OUTLOOK_FRESH = timedelta(seconds=60)
# A member answered the last reading when it was seen this close to it.
ANSWERED_WITHIN = timedelta(seconds=15)


def credential_summary(cred: Credential) -> dict:
    """A credential as the API shows it: never the key, passphrase or password."""
    return {"id": cred.pk, "name": cred.name, "username": cred.username, "kind": cred.kind}


def cluster_primary(cluster: Cluster) -> str | None:
    """The primary's node name, as last observed."""
    status = NodeStatus.objects.filter(node__cluster=cluster, role=NodeStatus.Role.PRIMARY)
    return status.values_list("node__name", flat=True).first()


def cluster_summary(cluster: Cluster) -> dict:
    return {
        "id": cluster.pk,
        "name": cluster.name,
        "state": cluster.state,
        "primary": cluster_primary(cluster),
    }


def node_summary(node: Node) -> dict:
    status = getattr(node, "status", None)
    return {
        "name": node.name,
        "address": node.address,
        "ssh_port": node.ssh_port,
        "kind": node.kind,
        "credential": node.credential_id,
        "host_key_fingerprint": node.host_key_fingerprint,
        "role": status.role if status else NodeStatus.Role.UNKNOWN,
        "state": (status.state or "unknown") if status else "unknown",
        "timeline": status.timeline if status else None,
        "lag_bytes": status.lag_bytes if status else None,
        "lag_seconds": status.lag_seconds if status else None,
        "last_seen": status.last_seen if status else None,
        # Shut out by the split-brain sentinel (or a person's fence) until rebuilt, and why.
        "fenced": status.fenced if status else False,
        "fence_reason": (status.fence_reason or None) if status else None,
    }


# The proxy's backends the answer lists, by the frontend they serve, in this order.
FRONTENDS = (
    (health.RW_BACKEND, "rw"),
    (health.RO_BACKEND, "ro"),
    (health.RO_FALLBACK_BACKEND, "ro"),
)


def proxy_backends(cluster: Cluster) -> list[dict]:
    """Every database server in each of HAProxy's read-write and read-only backends, as the
    monitor last read them: its state, and whether that backend's new connections go to it.
    Empty until the monitor has read HAProxy's stats (and while it cannot)."""
    readings: dict[str, dict[str, str]] = {}
    rows = NodeStatus.objects.filter(node__cluster=cluster, node__kind=Node.Kind.DATABASE)
    for name, backends in rows.values_list("node__name", "proxy_backends"):
        for backend, status in (backends or {}).items():
            readings.setdefault(backend, {})[name] = status
    serving = health.proxy_serving(readings)
    return [
        {
            "frontend": frontend,
            "backend": backend,
            "node": node,
            "status": health.proxy_state(status),
            "haproxy_status": status,
            "serving": node in serving[backend],
        }
        for backend, frontend in FRONTENDS
        for node, status in sorted(readings.get(backend, {}).items())
    ]


def tls_detail(cluster: Cluster) -> dict | None:
    """The cluster's CA as clients need to know it (never its key), None before setup made it."""
    if not cluster.ca_certificate:
        return None
    info = pki.describe(cluster.ca_certificate)
    return {
        "ca_url": f"/api/v1/clusters/{cluster.pk}/ca/",
        "ca_file": ca_file_name(cluster),
        "fingerprint_sha256": info.fingerprint_sha256,
        "not_after": info.not_after.isoformat(),
        # Whether every database node serves a certificate from it (connection strings then
        # say sslmode=verify-full); false on a cluster built before TLS until setup converts it.
        "verified": tls_verified(cluster),
    }


def outlook_settings(cluster: Cluster) -> tuple[bool, int]:
    """(synchronous mode, maximum_lag_on_failover) as Patroni runs the cluster: HA Center's own
    settings, or what the adopted cluster's layout read from its Patroni."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        dynamic = (cluster.patroni_layout or {}).get("dynamic", {})
        limit = dynamic.get("maximum_lag_on_failover", PATRONI_DEFAULT_MAXIMUM_LAG)
        return bool(dynamic.get("synchronous_mode")), int(limit)
    return cluster.replication == Cluster.Replication.SYNC, MAXIMUM_LAG_ON_FAILOVER


def cluster_failover_outlook(cluster: Cluster) -> list[dict]:
    """For each standby: would Patroni promote it if the primary died now, why not, and the
    acknowledged bytes it lacks (clusters.monitoring.failover_outlook)."""
    checked = cluster.last_checked
    observed = (
        checked is not None
        and timezone.now() - checked <= OUTLOOK_FRESH
        and cluster.state not in (Cluster.State.UNKNOWN, Cluster.State.NEW)
    )
    members = []
    for node in cluster.database_nodes.select_related("status").order_by("name"):
        status = getattr(node, "status", None)
        seen = status.last_seen if status else None
        members.append(
            Member(
                name=node.name,
                role=status.role if status else NodeStatus.Role.UNKNOWN,
                state=status.state if status else "",
                lag_bytes=status.lag_bytes if status else None,
                wal_position=status.wal_position if status else None,
                fenced=status.fenced if status else False,
                answered=bool(seen and checked and seen >= checked - ANSWERED_WITHIN),
            )
        )
    sync, limit = outlook_settings(cluster)
    return [
        {
            "node": o.node,
            "verdict": o.verdict,
            "reasons": o.reasons,
            "bytes_at_risk": o.bytes_at_risk,
        }
        for o in failover_outlook(members, sync=sync, maximum_lag=limit, observed=observed)
    ]


def cluster_detail(cluster: Cluster) -> dict:
    """The cluster as DESIGN.md §3 promises it; observed fields stay empty until monitored."""
    proxy = cluster.proxy_node
    return {
        **cluster_summary(cluster),
        "replication": cluster.replication,
        "failover_profile": cluster.failover_profile,
        "postgres_version": cluster.postgres_version,
        "client_networks": cluster.client_networks,
        "apt_proxy": cluster.apt_proxy or None,
        # What the take-over of the master's existing PostgreSQL found and changed (no secrets).
        "adopt_database": cluster.adopt_database,
        "adopted_from": cluster.adopted_from or None,
        # pg_hba `hostssl` for clients too; and the cluster's CA (GET …/ca/ serves it).
        "require_client_tls": cluster.require_client_tls,
        "tls": tls_detail(cluster),
        "database": (
            {"name": cluster.database_name, "user": cluster.database_user}
            if cluster.database_name
            else None
        ),
        "maintenance": cluster.maintenance,
        # Built by HA Center or an adopted Patroni cluster, and that cluster's layout (no
        # secrets: passwords are ClusterSecrets, never in the layout).
        "origin": cluster.origin,
        "patroni_layout": cluster.patroni_layout or None,
        # The last configuration lint: [{rule, severity, message, consequence}] and when.
        "config_findings": cluster.config_findings,
        "config_checked": cluster.config_checked,
        # HTTP frontends on the proxy and the unit that follows the primary.
        "application": application_detail(cluster),
        "nodes": [node_summary(n) for n in cluster.nodes.select_related("status")],
        # If the primary died now: per standby, Patroni's verdict and the bytes at risk.
        "failover_outlook": cluster_failover_outlook(cluster),
        "proxy": {
            "address": proxy.address if proxy else None,
            "endpoints": (
                {"rw": f"{proxy.address}:5432", "ro": f"{proxy.address}:5433"} if proxy else {}
            ),
            "backends": proxy_backends(cluster),
        },
    }


def dashboard_rows() -> list[dict]:
    """Every cluster as one card of the dashboard: state, primary, standbys with lag and a
    sparkline, where the proxy sends writes, the last event (the open incident's title instead,
    when one is open). Two queries and plain dicts,
    whatever the number of clusters (no model instances: building them was most of the page's
    time at 200 clusters)."""
    last_event = ClusterEvent.objects.filter(cluster=OuterRef("pk")).order_by("-at")
    open_incident = Incident.objects.filter(cluster=OuterRef("pk"), closed__isnull=True)
    rows = list(
        Cluster.objects.order_by("name")
        .values("pk", "name", "state", "replication", "maintenance", "last_checked")
        .annotate(
            event=Subquery(last_event.values("summary")[:1]),
            event_at=Subquery(last_event.values("at")[:1]),
            event_severity=Subquery(last_event.values("severity")[:1]),
            incident=Subquery(open_incident.values("title")[:1]),
            incident_at=Subquery(open_incident.values("opened")[:1]),
        )
    )
    labels = dict(Cluster.State.choices)
    link = reverse("cluster-detail", args=[0]).replace("/0/", "/{}/")
    by_cluster: dict[int, list[dict]] = {}
    for status in (
        NodeStatus.objects.filter(node__kind=Node.Kind.DATABASE)
        .values(
            "node_id",
            "node__cluster_id",
            "node__name",
            "role",
            "state",
            "lag_bytes",
            "lag_seconds",
            "fenced",
            "proxy_status",
            "last_seen",
            "lag_minutes",
        )
        .order_by("node__name")
    ):
        by_cluster.setdefault(status["node__cluster_id"], []).append(status)
    now = timezone.now()
    for row in rows:
        statuses = by_cluster.get(row["pk"], [])
        row["url"] = link.format(row["pk"])
        row["state_label"] = labels.get(row["state"], row["state"]).replace("_", " ").capitalize()
        row["primary"] = next((s["node__name"] for s in statuses if s["role"] == "primary"), None)
        row["standbys"] = [s for s in statuses if s["role"] != "primary"]
        for standby in row["standbys"]:
            standby["history"] = lag_minutes_series(standby.pop("lag_minutes"), now)
        row["proxy_writes_to"] = [
            s["node__name"] for s in statuses if (s["proxy_status"] or "").startswith("UP")
        ]
        row["proxy_known"] = any(s["proxy_status"] for s in statuses)
    return rows
