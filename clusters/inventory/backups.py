"""Turning a cluster's backups on, off, or changing where and how often (issue 22 part 1).

Only the inventory changes here; the `configure_backups` job puts it on the servers."""

import re

from clusters.inventory import outside_servers
from clusters.inventory.services import InvalidInput
from clusters.models import BackupPolicy, Cluster, Node

# What a caller may set, and the bounds each number must keep.
BOUNDS = {
    "retention_full": (1, 100),
    "full_every_hours": (0, 24 * 366),
    "diff_every_hours": (0, 24 * 366),
    "drill_every_hours": (0, 24 * 366),
}
# The drill's tables: "table" or "schema.table", plain identifiers (jobs.drill_tables reads them).
DRILL_TABLE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}")
DRILL_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}")
MAX_DRILL_TABLES = 50
DRILL_SERVER_FIELDS = (
    "drill_address",
    "drill_ssh_port",
    "drill_credential",
    "drill_host_key_fingerprint",
)


def backup_policy_set(*, cluster: Cluster, data: dict) -> BackupPolicy:
    """Create or update the cluster's policy from `data` (enabled, repo_node by name,
    repo_path, retention_full, full_every_hours, diff_every_hours, and the restore drill's
    drill_* fields); InvalidInput names each wrong field. The repository defaults to the
    proxy."""
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
    _drill_set(cluster, policy, data, errors)
    if policy.repository_node() is None:
        errors.setdefault("repo_node", []).append("The cluster has no proxy: name a node.")
    if errors:
        raise InvalidInput(errors)
    policy.save()
    return policy


def _drill_set(cluster: Cluster, policy: BackupPolicy, data: dict, errors: dict) -> None:
    """The restore drill's server (address, port, login, the fingerprint of a key scanned
    before, pinned here), database and tables. An empty address removes the drill server. The
    server is checked like a restore's target (outside_servers): never a member of a cluster."""
    if "drill_database" in data:
        name = data["drill_database"]
        if not isinstance(name, str) or not DRILL_DATABASE.fullmatch(name):
            errors.setdefault("drill_database", []).append("A database name, like postgres.")
        else:
            policy.drill_database = name
    if "drill_tables" in data:
        tables = data["drill_tables"]
        if (
            not isinstance(tables, list)
            or len(tables) > MAX_DRILL_TABLES
            or not all(isinstance(t, str) and DRILL_TABLE.fullmatch(t) for t in tables)
        ):
            errors.setdefault("drill_tables", []).append(
                f"Up to {MAX_DRILL_TABLES} names like table or schema.table; none: the five "
                "largest."
            )
        else:
            policy.drill_tables = tables
    if not any(f in data for f in DRILL_SERVER_FIELDS):
        return
    address = data.get("drill_address", policy.drill_address)
    if not address:
        policy.drill_address, policy.drill_credential = "", None
        policy.drill_host_key_type = policy.drill_host_key_base64 = ""
        policy.drill_host_key_fingerprint = ""
        return
    port = data.get("drill_ssh_port", policy.drill_ssh_port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors.setdefault("drill_ssh_port", []).append("A port number from 1 to 65535.")
        return
    try:
        server = outside_servers.outside_server(
            cluster,
            address=address,
            port=port,
            credential_id=data.get("drill_credential", policy.drill_credential_id),
            fingerprint=data.get("drill_host_key_fingerprint", policy.drill_host_key_fingerprint),
            name="drill-server",
        )
    except outside_servers.NotAnOutsideServer as exc:
        errors.setdefault(f"drill_{exc.field}", []).append(f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
        return
    policy.drill_address, policy.drill_ssh_port = server.address, server.ssh_port
    policy.drill_credential = server.credential
    policy.drill_host_key_type = server.host_key_type
    policy.drill_host_key_base64 = server.host_key_base64
    policy.drill_host_key_fingerprint = server.host_key_fingerprint
