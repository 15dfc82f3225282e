"""Turning a cluster's backups on, off, or changing where and how often (issue 22 part 1).

Only the inventory changes here; the `configure_backups` job puts it on the servers."""

from clusters.inventory.services import InvalidInput
from clusters.models import BackupPolicy, Cluster, Node

# What a caller may set, and the bounds each number must keep.
BOUNDS = {
    "retention_full": (1, 100),
    "full_every_hours": (0, 24 * 366),
    "diff_every_hours": (0, 24 * 366),
}


def backup_policy_set(*, cluster: Cluster, data: dict) -> BackupPolicy:
    """Create or update the cluster's policy from `data` (enabled, repo_node by name,
    repo_path, retention_full, full_every_hours, diff_every_hours); InvalidInput names each
    wrong field. The repository defaults to the proxy."""
    errors: dict[str, list[str]] = {}
    policy = BackupPolicy.objects.filter(cluster=cluster).first() or BackupPolicy(cluster=cluster)
    if "enabled" in data:
        policy.enabled = bool(data["enabled"])
    if "repo_node" in data:
        name = data["repo_node"]
        node = Node.objects.filter(cluster=cluster, name=name).first() if name else None
        if name and node is None:
            errors.setdefault("repo_node", []).append(f"{cluster.name} has no node {name!r}.")
        policy.repo_node = node
    if "repo_path" in data:
        path = str(data["repo_path"])
        if not path.startswith("/") or any(c in path for c in "\n\r=[]") or ".." in path:
            errors.setdefault("repo_path", []).append("An absolute path, without '..'.")
        policy.repo_path = path
    for field, (low, high) in BOUNDS.items():
        if field in data:
            value = data[field]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors.setdefault(field, []).append(f"A whole number from {low} to {high}.")
            else:
                setattr(policy, field, value)
    if policy.repository_node() is None:
        errors.setdefault("repo_node", []).append("The cluster has no proxy: name a node.")
    if errors:
        raise InvalidInput(errors)
    policy.save()
    return policy
