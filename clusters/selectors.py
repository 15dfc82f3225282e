"""Reads of the inventory shaped for the API and pages (they only ever read the database)."""

from .models import Cluster, Credential, Node


def credential_summary(cred: Credential) -> dict:
    """A credential as the API shows it: never the key, passphrase or password."""
    return {"id": cred.pk, "name": cred.name, "username": cred.username, "kind": cred.kind}


def cluster_primary(cluster: Cluster) -> str | None:
    """The primary's node name, once the monitor knows it (NodeStatus arrives with monitoring)."""
    return None


def cluster_summary(cluster: Cluster) -> dict:
    return {
        "id": cluster.pk,
        "name": cluster.name,
        "state": cluster.state,
        "primary": cluster_primary(cluster),
    }


def node_summary(node: Node) -> dict:
    return {
        "name": node.name,
        "address": node.address,
        "ssh_port": node.ssh_port,
        "kind": node.kind,
        "credential": node.credential_id,
        "host_key_fingerprint": node.host_key_fingerprint,
        "role": "unknown",
        "state": "unknown",
        "timeline": None,
        "lag_bytes": None,
        "lag_seconds": None,
        "last_seen": None,
    }


def cluster_detail(cluster: Cluster) -> dict:
    """The cluster as DESIGN.md §3 promises it; observed fields stay empty until monitored."""
    proxy = cluster.proxy_node
    return {
        **cluster_summary(cluster),
        "replication": cluster.replication,
        "failover_profile": cluster.failover_profile,
        "postgres_version": cluster.postgres_version,
        "client_networks": cluster.client_networks,
        "database": (
            {"name": cluster.database_name, "user": cluster.database_user}
            if cluster.database_name
            else None
        ),
        "maintenance": cluster.maintenance,
        "nodes": [node_summary(n) for n in cluster.nodes.select_related("credential")],
        "proxy": {
            "address": proxy.address if proxy else None,
            "endpoints": (
                {"rw": f"{proxy.address}:5432", "ro": f"{proxy.address}:5433"} if proxy else {}
            ),
            "backends": [],
        },
    }
