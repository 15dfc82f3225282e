"""The application in front of the cluster as the pages and the API show it (database reads
only): each HTTP frontend on the proxy, where HAProxy routes it now, and the unit that follows
the primary."""

from clusters.models import Cluster, Node, NodeStatus
from clusters.monitoring import health


def application_detail(cluster: Cluster) -> dict:
    """{unit, unit_on, frontends: [{listen_port, app_port, check_path, endpoint, routes_to,
    servers: [{node, status}]}]}.

    `routes_to` lists the servers HAProxy had UP for the frontend at the monitor's last read
    (with a check path: the primary whose application answers it); empty when none is or while
    HAProxy is unread. `unit_on` is where the unit is meant to run: the primary, whose Patroni
    callback starts it (None without a unit or a known primary).
    """
    proxy = cluster.proxy_node
    statuses = list(
        NodeStatus.objects.filter(node__cluster=cluster, node__kind=Node.Kind.DATABASE)
        .order_by("node__name")
        .values("node__name", "role", "proxy_backends")
    )
    primary = next(
        (s["node__name"] for s in statuses if s["role"] == NodeStatus.Role.PRIMARY), None
    )
    frontends = []
    for frontend in cluster.http_frontends:
        backend = f"{health.APP_BACKEND_PREFIX}{frontend['listen_port']}"
        servers = [
            {"node": s["node__name"], "status": health.proxy_state(status)}
            for s in statuses
            if (status := (s["proxy_backends"] or {}).get(backend)) is not None
        ]
        frontends.append(
            {
                "listen_port": frontend["listen_port"],
                "app_port": frontend["app_port"],
                "check_path": frontend.get("check_path") or None,
                "endpoint": (
                    f"{cluster.virtual_address or proxy.address}:{frontend['listen_port']}"
                    if proxy
                    else None
                ),
                "routes_to": [s["node"] for s in servers if s["status"] == "UP"],
                "servers": servers,
            }
        )
    unit = cluster.application_unit or None
    return {"unit": unit, "unit_on": primary if unit else None, "frontends": frontends}
