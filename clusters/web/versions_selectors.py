"""What the cluster page and the API show of the nodes' versions: what runs where, and what
the nodes' apt sources offer (as the last `check_updates` or `minor_upgrade` job read it)."""

from clusters.models import Cluster, NodeVersions
from jobs.package_versions import compare


def _available(package: dict) -> str | None:
    """The candidate when it is newer than what is installed, else None."""
    installed, candidate = package.get("installed", ""), package.get("candidate", "")
    if installed and candidate and compare(candidate, installed) > 0:
        return candidate
    return None


def cluster_versions(cluster: Cluster) -> dict:
    """Per node (database nodes first, by name): packages with installed and available
    versions, what the daemons report running, what needs a restart, when it was read."""
    rows = {
        v.node_id: v for v in NodeVersions.objects.filter(node__cluster=cluster).select_related()
    }
    nodes = []
    for node in cluster.nodes.order_by("kind", "name"):
        row = rows.get(node.pk)
        packages = {
            name: {"installed": p.get("installed", ""), "available": _available(p)}
            for name, p in sorted((row.packages if row else {}).items())
        }
        nodes.append(
            {
                "node": node.name,
                "kind": node.kind,
                "checked_at": row.checked_at if row else None,
                "packages": packages,
                "running": dict(row.running) if row else {},
                "restart_needed": list(row.stale) if row else [],
            }
        )
    checked = [n["checked_at"] for n in nodes if n["checked_at"]]
    return {
        "checked_at": min(checked) if checked else None,
        "updates_available": any(p["available"] for n in nodes for p in n["packages"].values()),
        "nodes": nodes,
    }
