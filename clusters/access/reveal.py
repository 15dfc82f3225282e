"""Revealing a secret to a person: only to an admin, and every attempt is audited."""

from django.core.exceptions import PermissionDenied

from clusters.access.audit import audit_record
from clusters.access.roles import can_admin
from clusters.inventory.connection_strings import cluster_connection_strings
from clusters.models import Cluster


def cluster_connection_read(*, cluster: Cluster, user, source_address: str | None) -> dict | None:
    """The application's connection strings for an admin, audited whether allowed or not.

    Raises PermissionDenied for anyone else; None when the cluster has no application database.
    """
    allowed = can_admin(user)
    audit_record(
        user=user,
        action="cluster.connection.read",
        target=f"cluster {cluster.name}",
        source_address=source_address,
        result="ok" if allowed else "refused: not admin",
    )
    if not allowed:
        raise PermissionDenied("Only administrators may read connection strings.")
    return cluster_connection_strings(cluster)
