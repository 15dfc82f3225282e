"""Servers outside every cluster that a job may use: a restore's target, a restore drill's
throwaway server (issue 22 parts 2 and 3).

Such a server is never in the inventory: the job uses an unsaved Node built here, with the host
key an admin scanned and checked before pinned like a node's. The rules are the same for the
restore job (which refuses) and the backup policy's drill server (whose form refuses): never a
member of any cluster, a saved login, a scanned key.
"""

from clusters.models import Cluster, Credential, Node, ScannedHostKey


class NotAnOutsideServer(ValueError):
    """Why a server cannot be used; its text is for the admin. `field` names the input."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def member_refusal(address: str) -> str | None:
    """Why `address` cannot be used because it is a member of a cluster (None: it is none)."""
    member = Node.objects.filter(address__iexact=address).select_related("cluster").first()
    if member is None:
        return None
    return (
        f"{address} is {member.name} of cluster {member.cluster.name}: a restore never "
        "goes onto a member of a cluster; give a new server"
    )


def outside_server(
    cluster: Cluster,
    *,
    address: str,
    port: int,
    credential_id: int | None,
    fingerprint: str,
    name: str,
) -> Node:
    """The server as an unsaved Node named `name`, its host key pinned from an earlier scan;
    NotAnOutsideServer when it is a member of a cluster, the login is unknown or the key was
    not scanned."""
    if not address:
        raise NotAnOutsideServer("give the server's address", "address")
    if reason := member_refusal(address):
        raise NotAnOutsideServer(reason, "address")
    credential = Credential.objects.filter(pk=credential_id).first() if credential_id else None
    if credential is None:
        raise NotAnOutsideServer(
            "give the id of a saved login for the target (credential)", "credential"
        )
    scanned = ScannedHostKey.objects.filter(
        address=address, port=port, fingerprint=fingerprint or ""
    ).first()
    if scanned is None:
        raise NotAnOutsideServer(
            "scan the target's host key first (POST /api/v1/host-keys/scan/) and pass the "
            "fingerprint you checked as host_key_fingerprint",
            "host_key_fingerprint",
        )
    return Node(
        cluster=cluster,
        name=name,
        address=address,
        ssh_port=port,
        credential=credential,
        kind=Node.Kind.DATABASE,
        host_key_type=scanned.key_type,
        host_key_base64=scanned.base64,
        host_key_fingerprint=scanned.fingerprint,
    )
