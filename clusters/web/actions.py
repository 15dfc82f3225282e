"""The operations a cluster page offers, with the consequence each confirmation names.

Pages only describe and link here; the job itself is started by ``jobs.services.job_start``
(through the job-start view), which also refuses what the cluster's state does not allow.
"""

from dataclasses import dataclass

from django.conf import settings

from clusters.access import roles
from clusters.inventory.units import size_text
from clusters.models import Cluster, Node, NodeStatus
from jobs.models import JobKind
from jobs.playbooks.layout import patroni_layout


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
        # Ending maintenance restarts nothing by itself, but Patroni acts at once on whatever it
        # finds wrong when it resumes: no leader → it elects one (a failover, with its loss); a
        # stopped PostgreSQL → it starts it. The reading the page has is seconds old, so it
        # cannot promise "nothing happens": this interrupts what it may, and asks first.
        Action(
            "maintenance_off", "End maintenance", "Yes, resume automatic failover", roles.OPERATOR
        ),
        Action("failover", "Fail over to here", "Yes, promote", roles.OPERATOR, True, "cluster"),
        # Node changes, shown only while the console knows their kind (see available()). Add
        # and replace have their own pages (a new server to scan); remove confirms here.
        Action("add_node", "Add a node", "Yes, add the node", roles.ADMIN),
        Action("replace_node", "Replace node", "Yes, replace it", roles.ADMIN, needs_node=True),
        Action("remove_node", "Remove node", "Yes, remove it", roles.ADMIN, True, "node"),
        # The sentinel fences on its own; this is the guarded manual action (jobs.services).
        Action("fence", "Fence node", "Yes, fence it", roles.ADMIN, True, "node"),
        # Apt's newer builds of the same majors, node by node (jobs.playbooks.upgrade).
        Action("minor_upgrade", "Minor upgrade", "Yes, upgrade node by node", roles.OPERATOR),
        # The latest backup restored onto the policy's throwaway server, checked, removed.
        Action("restore_drill", "Run restore drill", "Yes, run the drill", roles.OPERATOR),
        # The primary powered off through its fence device, measured, rebuilt (admins).
        Action(
            "failover_drill",
            "Run failover drill",
            "Yes, power the primary off",
            roles.ADMIN,
            typed="cluster",
        ),
        # A security operation: admins only (clusters.access.roles.ADMIN_JOB_KINDS).
        Action(
            "rotate_certificates",
            "Rotate certificates",
            "Yes, replace the certificates",
            roles.ADMIN,
        ),
    )
}


# Typed confirmations: the kind, and whose name the admin types (the API's `confirm`).
TYPED = {a.kind: a.typed for a in ACTIONS.values() if a.typed} | {"remove_cluster": "cluster"}


def typed_name(cluster: Cluster, kind: str, node: Node | None) -> str | None:
    """The name the admin must type to confirm `kind`, or None when it asks for none."""
    whose = TYPED.get(kind)
    if whose == "node":
        return node.name if node is not None else None
    return cluster.name if whose == "cluster" else None


def mistyped(cluster: Cluster, kind: str, node: Node | None, typed: str | None) -> str | None:
    """The page's answer to a typed confirmation that does not match, in words (None: it
    matches, or the kind asks for none). The API keeps the job's own message, which names its
    `confirm` field; a person on the page never saw that field's name."""
    expected = typed_name(cluster, kind, node)
    if expected is None or typed == expected:
        return None
    whose = "the cluster's name" if TYPED[kind] == "cluster" else "the node's name"
    # Echo what was typed, shortened: it is the admin's own input, escaped by the template.
    shown = f"You typed '{typed[:60]}'" if typed else "You typed nothing"
    return f"{shown}; type {whose}, {expected}, to confirm. Nothing was started."


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
        "maintenance_off": (
            "Patroni manages the cluster again and acts at once on what it finds: with no "
            "running primary it promotes a standby (a failover: writes the standby lacks are "
            "lost); a stopped PostgreSQL is started. On a healthy cluster nothing else changes."
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
        "minor_upgrade": (
            "The newer builds the nodes' apt sources offer of PostgreSQL, etcd and HAProxy "
            "(never a new major) are installed one node at a time: the standbys, the proxy "
            f"(HAProxy reloads gracefully), then a switchover away from {primary}, then "
            f"{primary}. Each node is checked (streaming again, caught up, etcd healthy) "
            "before the next; writes stop for the switchover only."
        ),
        "restore_drill": (
            "On the primary, the drill's tables are locked against writes while they are "
            "counted and checksummed (reads go on; writes wait for the count, seconds on small "
            "tables) and a restore point is made. The latest backup is then restored onto the "
            "drill server up to that point, started there as a throwaway copy outside the "
            "cluster, compared table by table, stopped and removed. No node of the cluster "
            "restarts."
        ),
        "failover_drill": (
            f"{primary} is powered off through its fence device, as if it failed, while the "
            "console writes a row through the proxy every 50 ms. Writes stop until a standby "
            "takes over (the RTO is measured from the power-off to the new primary's first "
            f"write); the rows lost are counted (the RPO). Then {primary} is powered on and "
            "rebuilt as a standby of the new primary. Open connections through the proxy are "
            "cut. The primary stays on the other node afterwards."
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
    if node is not None and node.kind == Node.Kind.PROXY:
        texts["remove_node"] = (
            f"{target}'s HAProxy and keepalived stop (their configs are moved aside, not "
            "deleted) and it leaves the cluster. Clients connected through it are cut off; "
            + (
                f"if it holds {cluster.virtual_address}, the address moves to the other proxy "
                "within seconds and new connections go there."
                if cluster.virtual_ip
                else "they must use the other proxy."
            )
        )
    return texts.get(kind, "")


def predicted_loss(cluster: Cluster, kind: str, node: Node | None, outlook: list[dict]) -> str:
    """The acknowledged writes the action would lose, from the failover outlook and the
    monitor's last reading, for the confirmation page to name before the click."""
    if kind == "remove_node" and node is not None and node.kind == Node.Kind.PROXY:
        return "none: a proxy holds no data; transactions open through it are rolled back"
    if kind == "failover" and node is not None:
        seen = next((o for o in outlook if o["node"] == node.name), None)
        at_risk = seen["bytes_at_risk"] if seen else None
        if at_risk is None:
            at_risk = (
                NodeStatus.objects.filter(node=node).values_list("lag_bytes", flat=True).first()
            )
        if at_risk == 0:
            return (
                f"none expected: {node.name} had every acknowledged write at the last reading "
                "(the synchronous standby, or no lag)"
            )
        if at_risk is None:
            return (
                f"unknown: the console has no lag reading of {node.name}; every write the "
                "primary acknowledged and it had not received is lost"
            )
        return (
            f"up to {size_text(at_risk)} of acknowledged writes: {node.name}'s lag behind the "
            "primary at the last reading"
        )
    return {
        "switchover": (
            "none: the primary shuts down cleanly and the standby is promoted only once it has "
            "received all of its WAL; writes pause for a few seconds"
        ),
        "rebuild": (
            "none on the cluster: writes stay on the primary. Only writes "
            f"{node.name if node else 'the node'} alone holds (made after it split off, if it "
            "was a primary) are dropped: pg_rewind discards them; after a full copy they remain "
            "only in the moved-aside directory"
        ),
        "restart": "none: writes pause for the restart; nothing fails over",
        "maintenance_on": (
            "none now; while it lasts a failed primary is not replaced, so writes stop "
            "until you act"
        ),
        "maintenance_off": (
            "none on a healthy cluster; with no running primary, Patroni's failover loses what "
            "the promoted standby had not received (see “If the primary failed now”)"
        ),
        "fence": "none on the cluster: it is not the primary; it stops serving reads",
        "remove_node": "none on the cluster: its data directory is moved aside, not deleted",
        "rotate_certificates": "none: no restart and no failover",
        "restore_drill": "none: writes to the checked tables wait while they are counted",
        "failover_drill": (
            "none on a synchronous cluster (the synchronous standby has every acknowledged "
            "write); on an asynchronous one, what the standby had not received when the power "
            "went (the drill counts it)"
        ),
        "minor_upgrade": (
            "none: standbys restart one at a time and the switchover waits for the standby to "
            "have all of the primary's WAL; writes pause for a few seconds"
        ),
    }.get(kind, "")


def replaced(cluster: Cluster, kind: str, node: Node | None) -> str:
    """What a rebuild replaces on the node, named before the click (empty for other kinds)."""
    if kind != "rebuild" or node is None:
        return ""
    data = patroni_layout(cluster).data_dir
    keep = settings.REBUILD_KEEP_OLD_DATA
    kept = (
        "only the newest moved-aside copy is kept; older ones are deleted."
        if keep == 1
        else f"the newest {keep} moved-aside copies are kept; older ones are deleted."
    )
    return (
        f"{node.name}'s PostgreSQL data directory, {data}. First pg_rewind rewinds it in place "
        "to the primary's timeline; if that fails, the directory is moved aside to "
        f"{data}.rebuild-<when the job started> (kept, not deleted) and a fresh copy is "
        "taken from the primary. "
        f"Once the new standby streams, {kept} The other nodes are not touched."
    )
