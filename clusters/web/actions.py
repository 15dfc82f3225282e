"""The operations a cluster page offers, with the consequence each confirmation names.

Pages only describe and link here; the job itself is started by ``jobs.services.job_start``
(through the job-start view), which also refuses what the cluster's state does not allow.
"""

from dataclasses import dataclass

from clusters.access import roles
from clusters.models import Cluster, Node, NodeStatus
from jobs.models import JobKind


@dataclass(frozen=True)
class Action:
    """One operation as the admin sees it."""

    kind: str
    title: str  # the button
    confirm: str  # the confirmation's button, a verb naming the act
    role: str  # roles.OPERATOR for operations, roles.ADMIN for inventory changes
    needs_node: bool = False
    typed: str = ""  # "cluster" or "node": the admin types that name (data may be lost)


ACTIONS = {
    a.kind: a
    for a in (
        Action("switchover", "Switch over", "Yes, switch over", roles.OPERATOR),
        Action("rebuild", "Rebuild as standby", "Yes, rebuild", roles.OPERATOR, needs_node=True),
        Action("restart", "Safe restart", "Yes, restart PostgreSQL", roles.OPERATOR),
        Action(
            "maintenance_on", "Maintenance mode", "Yes, pause automatic failover", roles.OPERATOR
        ),
        Action("failover", "Fail over to here", "Yes, promote", roles.OPERATOR, True, "cluster"),
        # Node changes, shown only while the console knows their kind (see available()). Add
        # and replace have their own pages (a new server to scan); remove confirms here.
        Action("add_node", "Add a node", "Yes, add the node", roles.ADMIN),
        Action("replace_node", "Replace node", "Yes, replace it", roles.ADMIN, needs_node=True),
        Action("remove_node", "Remove node", "Yes, remove it", roles.ADMIN, True, "node"),
        # The sentinel fences on its own; this is the guarded manual action (jobs.services).
        Action("fence", "Fence node", "Yes, fence it", roles.ADMIN, True, "node"),
        # A security operation: admins only (clusters.access.roles.ADMIN_JOB_KINDS).
        Action(
            "rotate_certificates",
            "Rotate certificates",
            "Yes, replace the certificates",
            roles.ADMIN,
        ),
    )
}


def available(user) -> set[str]:
    """The action kinds this console runs and this user's role may start."""
    return {
        kind
        for kind, action in ACTIONS.items()
        if kind in JobKind.values and roles.has_role(user, action.role)
    }


def consequence(cluster: Cluster, kind: str, node: Node | None) -> str:
    """What will happen, in one or two sentences, named before the admin confirms."""
    primary = (
        NodeStatus.objects.filter(node__cluster=cluster, role=NodeStatus.Role.PRIMARY)
        .values_list("node__name", flat=True)
        .first()
        or "the primary"
    )
    target = node.name if node else "the standby with the least lag"
    texts = {
        "switchover": (
            f"{primary} hands the primary role to {target}. Writes stop for a few seconds "
            "and open connections through the proxy are closed; applications must reconnect."
        ),
        "rebuild": (
            f"{target} is stopped and rejoined to the primary with pg_rewind; if that fails, "
            "its data directory is moved aside (kept, not deleted) and copied afresh from the "
            "primary, which can take long on a large database. It serves no reads meanwhile."
        ),
        "restart": (
            f"PostgreSQL on {primary} restarts with automatic failover paused: writes stop "
            "for the restart (seconds) and open connections are closed; no failover happens."
        ),
        "maintenance_on": (
            "Patroni stops managing the cluster: if the primary fails now, nothing fails over "
            "until you end maintenance mode."
        ),
        "failover": (
            f"{target} is promoted at once, without waiting for {primary}. Writes "
            f"{primary} acknowledged but {target} had not received yet are lost."
        ),
        "add_node": "A new standby is installed and copies the primary's data.",
        "replace_node": (
            f"{target} is taken out and a new server takes its place as a standby; its data "
            "is copied from the primary."
        ),
        "rotate_certificates": (
            "Every node gets a new certificate from the cluster's CA (the CA stays). Node by "
            "node, standbys first and the primary last, etcd, Patroni and PostgreSQL take the "
            "new files without a restart and without a failover; the job checks the serial each "
            "daemon serves. Open connections stay up."
        ),
        "fence": (
            f"{target} is put in maintenance in HAProxy and its Patroni and PostgreSQL are "
            "stopped; it stays out until it is rebuilt. Refused for the node holding the "
            "leader key and while another job changes the cluster."
        ),
        "remove_node": (
            f"{target} leaves the cluster: its services stop and the proxy no longer routes "
            "to it. Its data directory is moved aside, not deleted."
        ),
    }
    return texts.get(kind, "")
