"""Reads of the inventory shaped for the API and pages (they only ever read the database)."""

from datetime import UTC, datetime, timedelta

from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from clusters.inventory import pki
from clusters.inventory.connection_strings import ca_file_name, tls_verified
from clusters.models import (
    Cluster,
    ClusterEvent,
    Credential,
    Incident,
    Node,
    NodeStatus,
    StatusSample,
)
from clusters.monitoring import health
from clusters.monitoring.failover_outlook import Member, failover_outlook
from clusters.monitoring.failover_settings import failover_settings
from clusters.monitoring.lag_history import lag_minutes_series
from clusters.monitoring.state_changes import duration_text
from clusters.web.application_selectors import application_detail

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


# States setup owns (the monitor does not judge them): no reasons, no start time to show.
SETUP_STATES = (Cluster.State.NEW, Cluster.State.PROVISIONING)


def state_reasons(cluster: Cluster | dict) -> list[str]:
    """Why the cluster is in its state, as the monitor last judged it (one line each, most
    weighty first); empty when healthy and while setup owns the state."""
    state, reasons = _get(cluster, "state"), _get(cluster, "state_reasons")
    return [] if state in SETUP_STATES else list(reasons or [])


def state_since(cluster: Cluster | dict) -> datetime | None:
    """When the current state began, as the monitor saw it; None before its first judgement
    and while setup owns the state."""
    return None if _get(cluster, "state") in SETUP_STATES else _get(cluster, "state_since")


def _get(cluster: Cluster | dict, name: str) -> object:
    return cluster[name] if isinstance(cluster, dict) else getattr(cluster, name)


def cluster_summary(cluster: Cluster) -> dict:
    return {
        "id": cluster.pk,
        "name": cluster.name,
        "state": cluster.state,
        "state_reasons": state_reasons(cluster),
        "state_since": state_since(cluster),
        "primary": cluster_primary(cluster),
    }


def last_known_roles(cluster: Cluster) -> list[dict]:
    """Each database node's last role read with an answer, and when, and when it last answered
    at all: the facts a page shows of a cluster the console cannot read now. The node's status
    says "unknown" as soon as it stops answering; its samples remember. A few indexed reads,
    for the one cluster page that asks."""
    facts = []
    for node in cluster.database_nodes.select_related("status").order_by("name"):
        status = getattr(node, "status", None)
        known = StatusSample.objects.filter(node=node, up=True).exclude(
            role=NodeStatus.Role.UNKNOWN
        )
        seen = None
        # Raw samples first (the last day); the minute roll-up only when none are left.
        for resolution in (StatusSample.Resolution.RAW, StatusSample.Resolution.MINUTE):
            seen = known.filter(resolution=resolution).order_by("-at").values("role", "at").first()
            if seen:
                break
        facts.append(
            {
                "name": node.name,
                "role": seen["role"].replace("_", " ") if seen else None,
                "role_at": seen["at"] if seen else None,
                "last_seen": status.last_seen if status else None,
            }
        )
    return facts


def cluster_why(cluster: Cluster) -> dict:
    """What the cluster page's "Why" box says: the state's reasons and since when; for a cluster
    the console cannot read, when it last had an answer and the last known facts instead of
    today's (which it does not have)."""
    since = state_since(cluster)
    why = {
        "state": cluster.state,
        "label": cluster.state.replace("_", " ").capitalize(),
        # "degraded for 4 min"
        "lasted": duration_text((timezone.now() - since).total_seconds()) if since else None,
        "reasons": state_reasons(cluster),
        "since": since,
        "judged": since is not None,
        "unknown": cluster.state == Cluster.State.UNKNOWN,
    }
    if why["unknown"]:
        facts = last_known_roles(cluster)
        # PostgreSQL may still answer the console when Patroni and HAProxy do not.
        answering = [
            f["name"] for f in facts if since and f["last_seen"] and f["last_seen"] >= since
        ]
        why.update(last_leader=cluster.last_leader or None, facts=facts, answering=answering)
    return why


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
        "host_up_since": status.host_up_since if status else None,
        "disk": (
            {
                "mount": status.disk_mount,
                "free_bytes": status.disk_free_bytes,
                "total_bytes": status.disk_total_bytes,
                "checked": status.disk_checked,
            }
            if status and status.disk_checked
            else None
        ),
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
    sync, limit = failover_settings(cluster)
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
        "fast_failover": cluster.fast_failover,
        "fast_failover_window_s": cluster.fast_failover_window_s,
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
            "addresses": [p.address for p in cluster.proxy_nodes],
            "endpoints": (
                {"rw": f"{entry}:5432", "ro": f"{entry}:5433"}
                if (entry := client_entry(cluster))
                else {}
            ),
            "backends": proxy_backends(cluster),
            "virtual_ip": virtual_ip_detail(cluster),
            # The first proxy is the third etcd member (jobs.configs.spec.etcd_members).
            "etcd_witness": proxy.name
            if proxy and cluster.origin == Cluster.Origin.BUILT
            else None,
        },
        "virtual_ip": virtual_ip_detail(cluster),
    }


def client_entry(cluster: Cluster) -> str | None:
    """Where clients connect: the floating address, else the (first) proxy's."""
    if cluster.virtual_ip:
        return cluster.virtual_address
    proxy = cluster.proxy_node
    return proxy.address if proxy else None


def virtual_ip_detail(cluster: Cluster) -> dict | None:
    """The floating address, its VRRP router id and who held it at the monitor's last read."""
    if not cluster.virtual_ip:
        return None
    return {
        "address": cluster.virtual_ip,
        "router_id": cluster.vrrp_router_id_effective,
        "holder": cluster.vip_holder or None,
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
        .values(
            "pk",
            "name",
            "state",
            "replication",
            "maintenance",
            "last_checked",
            "last_leader",
            "state_reasons",
            "state_since",
        )
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
        # The card's one line of why: the weightiest reason.
        row["reason"] = next(iter(state_reasons(row)), None)
        row["state_since"] = state_since(row)
        row["state_label"] = labels.get(row["state"], row["state"]).replace("_", " ").capitalize()
        row["primary"] = next((s["node__name"] for s in statuses if s["role"] == "primary"), None)
        row["standbys"] = [s for s in statuses if s["role"] != "primary"]
        for standby in row["standbys"]:
            standby["history"] = lag_minutes_series(standby.pop("lag_minutes"), now)
        row["proxy_writes_to"] = [
            s["node__name"] for s in statuses if (s["proxy_status"] or "").startswith("UP")
        ]
        row["proxy_known"] = any(s["proxy_status"] for s in statuses)
    rows.sort(key=triage_order)  # most urgent first, the dashboard's order
    return rows


# The dashboard's order of states, most urgent first: an outage, an election, trouble that still
# takes writes, a cluster the console cannot read; then what needs no one now. Also the order of
# the dashboard's counts.
TRIAGE_STATES = (
    Cluster.State.DOWN,
    Cluster.State.FAILING_OVER,
    Cluster.State.DEGRADED,
    Cluster.State.UNKNOWN,
    Cluster.State.MAINTENANCE,
    Cluster.State.PROVISIONING,
    Cluster.State.NEW,
    Cluster.State.HEALTHY,
)
# The states in which a cluster needs someone (the tab title counts them).
NEEDS_SOMEONE = (
    Cluster.State.DOWN,
    Cluster.State.FAILING_OVER,
    Cluster.State.DEGRADED,
    Cluster.State.UNKNOWN,
)
_RANK = {state: rank for rank, state in enumerate(TRIAGE_STATES)}
_NEVER = datetime.max.replace(tzinfo=UTC)


def triage_order(row: dict) -> tuple:
    """A dashboard row's sort key: by severity, then the longest in its state first (it has
    waited longest for someone), then by name. Healthy clusters go by name alone: how long a
    cluster has been fine tells nobody anything."""
    rank = _RANK.get(row["state"], len(TRIAGE_STATES))
    if row["state"] == Cluster.State.HEALTHY:
        return (rank, _NEVER, row["name"])
    return (rank, row["state_since"] or _NEVER, row["name"])


def dashboard_filter(rows: list[dict], *, state: str, q: str) -> list[dict]:
    """The dashboard's rows in `state` (all when empty) that match the search `q` (all when
    empty), in their order."""
    shown = [row for row in rows if not state or row["state"] == state]
    if q:
        matching = dashboard_search(q)
        shown = [row for row in shown if row["pk"] in matching]
    return shown


def dashboard_search(text: str) -> set[int]:
    """The clusters whose name, or one of whose nodes' name or address, contains `text`
    (case-insensitive): the dashboard's search. One query."""
    nodes = Node.objects.filter(Q(name__icontains=text) | Q(address__icontains=text))
    return set(
        Cluster.objects.filter(
            Q(name__icontains=text) | Q(pk__in=nodes.values("cluster_id"))
        ).values_list("pk", flat=True)
    )
