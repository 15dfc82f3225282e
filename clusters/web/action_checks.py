"""Whether an action on the cluster page can succeed now, decided before the click.

`why_not` answers with one short sentence (or None: it may run), from `ActionFacts` read once
per page by `facts_read`. It is pure, so the page can ask it for every button.

Its first half, `job_refusal`, restates the rules `jobs.services.job_start` and the playbooks'
`plan()` refuse by (tests/unit/clusters/web/test_action_checks.py starts the real job in every
state to prove the two agree). The typed confirmations are left out: the page asks for those on
the confirmation page. Its second half, `page_refusal`, adds what the monitor's reading already
shows will fail in the job's first step (a failover to a node that is down, a switchover to one
that does not stream) and what needs a reading the console does not have (an unknown cluster):
the job would not refuse those at once, it would fail on the servers a minute later.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from clusters.models import BackupPolicy, Cluster, Node, NodeStatus
from clusters.monitoring.failover_outlook import RUNNING_STATES
from clusters.templatetags.hacenter_ui import relative
from clusters.web.selectors import ANSWERED_WITHIN, cluster_failover_outlook
from jobs.errors import JobRefused
from jobs.models import Job, JobStatus
from jobs.playbooks import drill_checks, get_playbook
from jobs.playbooks.restore_drill import drill_refusal

# States the restart and certificate-rotation plans accept ("a running cluster").
RUNNING = (Cluster.State.HEALTHY, Cluster.State.DEGRADED, Cluster.State.MAINTENANCE)
NOT_SET_UP = (Cluster.State.NEW, Cluster.State.PROVISIONING)
# Kinds that act on what the monitor read: on an unknown cluster the page's facts are old, and
# acting on them could, say, rebuild a healthy primary the console merely cannot reach.
NEEDS_READING = {
    "switchover",
    "failover",
    "rebuild",
    "restart",
    "maintenance_on",
    "maintenance_off",
    "add_node",
    "replace_node",
    "remove_node",
    "fence",
    "rotate_certificates",
    "read_parameters",
    "change_parameters",
    "minor_upgrade",
    "failover_drill",
}
# The node changes share one rule set (jobs.playbooks.nodes._refuse_unless_running).
NODE_CHANGES = {"add_node": "add", "replace_node": "replace", "remove_node": "remove"}


@dataclass(frozen=True)
class NodeFacts:
    """What the console knows of one node: its inventory row and the monitor's last reading."""

    name: str
    kind: str
    role: str = NodeStatus.Role.UNKNOWN
    state: str = ""
    fenced: bool = False
    writable: bool | None = None
    tls_active: bool = False
    last_seen: datetime | None = None


@dataclass(frozen=True)
class ActionFacts:
    """Everything `why_not` reads, gathered once per page."""

    nodes: dict[str, NodeFacts]
    now: datetime
    active_job: str = ""  # an active job that changes the cluster, "switchover #12 (running)"
    active_fence: str = ""  # an active fence job (a person's fence waits for it too)
    # Per standby, the failover outlook's verdict (selectors.cluster_failover_outlook).
    outlook: dict[str, dict] = field(default_factory=dict)
    backups_on: bool = False  # a BackupPolicy, enabled (jobs.playbooks.backup_steps.policy_of)
    # Why a restore drill cannot start for the policy's sake (no drill server, no backup yet).
    drill_off: str = ""
    # Why a failover drill cannot start (jobs.playbooks.drill_checks.drill_refusal).
    failover_drill_off: str = ""

    @property
    def database(self) -> list[NodeFacts]:
        return [n for n in self.nodes.values() if n.kind == Node.Kind.DATABASE]


# A cluster's state as the end of "pg1 is …".
STATE_WORDS = {
    Cluster.State.NEW: "not set up yet",
    Cluster.State.PROVISIONING: "being set up",
    Cluster.State.FAILING_OVER: "failing over",
    Cluster.State.MAINTENANCE: "in maintenance mode",
    Cluster.State.UNKNOWN: "unknown (no answer)",
}


def state_words(cluster: Cluster) -> str:
    """ "degraded", "down", "failing over", "in maintenance mode"…"""
    return STATE_WORDS.get(cluster.state, cluster.state)


def _job_words(job: Job | None) -> str:
    return f"{job.kind} #{job.pk} ({job.status})" if job else ""


def facts_read(cluster: Cluster, outlook: list[dict] | None = None) -> ActionFacts:
    """Read what `why_not` needs: four queries (nodes with status, the active jobs, whether
    backups are on), plus the failover outlook unless the caller already has it."""
    if outlook is None:  # the cluster page passes the one it shows
        outlook = cluster_failover_outlook(cluster)
    nodes = {}
    for node in cluster.nodes.select_related("status"):
        status = getattr(node, "status", None) or NodeStatus(node=node)
        nodes[node.name] = NodeFacts(
            name=node.name,
            kind=node.kind,
            role=status.role,
            state=status.state,
            fenced=status.fenced,
            writable=status.writable,
            tls_active=node.tls_active,
            last_seen=status.last_seen,
        )
    active = Job.objects.filter(cluster=cluster, status__in=JobStatus.active()).order_by("created")
    backups_on = BackupPolicy.objects.filter(cluster=cluster, enabled=True).exists()
    return ActionFacts(
        nodes=nodes,
        now=timezone.now(),
        active_job=_job_words(active.filter(mutating=True).first()),
        active_fence=_job_words(active.filter(Q(mutating=True) | Q(kind="fence")).first()),
        outlook={o["node"]: o for o in outlook},
        backups_on=backups_on,
        drill_off=_drill_off(cluster) if backups_on else "",
        failover_drill_off=drill_checks.drill_refusal(cluster) or "",
    )


def _drill_off(cluster: Cluster) -> str:
    """restore_drill.drill_refusal, its policy's own refusal (no repository host) in words."""
    try:
        return drill_refusal(cluster) or ""
    except JobRefused as exc:
        return str(exc)


def why_not(cluster: Cluster, kind: str, node: Node | None, facts: ActionFacts) -> str | None:
    """Why `kind` on `node` cannot succeed now, in words for the page (None: it can)."""
    return job_refusal(cluster, kind, node, facts) or page_refusal(cluster, kind, node, facts)


def job_refusal(cluster: Cluster, kind: str, node: Node | None, facts: ActionFacts) -> str | None:
    """What `jobs.services.job_start` would refuse, typed confirmations left out (None: it
    would start the job). Same rules, same order as the plans; shorter words."""
    name, state = cluster.name, state_words(cluster)
    is_db = node is not None and node.kind == Node.Kind.DATABASE
    reason = None
    if kind == "switchover":
        if cluster.state != Cluster.State.HEALTHY:
            reason = f"needs a healthy cluster: {name} is {state}"
        elif node is not None and not is_db:
            reason = f"{node.name} is not a database node"
    elif kind == "failover":
        if not is_db:
            reason = "name the standby to promote"
    elif kind == "rebuild":
        if not is_db:
            reason = "name the database node to rebuild"
        elif cluster.state in NOT_SET_UP:
            reason = f"{name} is not set up yet: run setup"
    elif kind == "restart":
        if cluster.state not in RUNNING:
            reason = f"needs a running cluster: {name} is {state}"
        elif node is not None and not is_db:
            reason = "only database nodes run PostgreSQL"
    elif kind in ("maintenance_on", "maintenance_off"):
        if cluster.state in NOT_SET_UP:
            reason = f"{name} is not set up yet"
    elif kind in NODE_CHANGES:
        reason = _node_change_refusal(cluster, kind, node, facts)
    elif kind == "fence":
        reason = _fence_refusal(cluster, node, facts)
    elif kind == "rotate_certificates":
        reason = _rotation_refusal(cluster, node, facts)
    elif kind == "change_parameters":
        reason = _parameters_refusal(cluster, restart=False)
    elif kind == "read_parameters" and cluster.state in NOT_SET_UP:
        reason = f"{name} is not set up yet"
    elif kind == "minor_upgrade":
        reason = _upgrade_refusal(cluster, node)
    elif kind in ("configure_backups", "backup"):
        reason = _backup_refusal(cluster, node, facts)
    elif kind == "restore_drill":
        reason = _drill_refusal(cluster, node, facts)
    elif kind == "failover_drill":
        # jobs.playbooks.failover_drill.plan: no node named, then its drill_refusal.
        if node is not None:
            reason = "a failover drill powers off the primary; name no node"
        else:
            reason = facts.failover_drill_off or None
    elif kind == "restore" and not facts.backups_on:
        # The target server is typed on the restore page; the plan checks it then.
        reason = f"backups are not turned on for {name}"
    elif kind == "remove_cluster" and cluster.origin == Cluster.Origin.ADOPTED:
        reason = f"{name} is an adopted Patroni cluster: removing it needs force (the API)"
    if reason:
        return reason
    # job_start's last check: one job that changes the cluster at a time (fence: see above).
    if kind != "fence" and facts.active_job and get_playbook(kind).mutating:
        return f"wait for {facts.active_job} to end: one job changes a cluster at a time"
    return None


def _parameters_refusal(cluster: Cluster, *, restart: bool) -> str | None:
    """jobs.playbooks.parameters.plan_change: a reload needs a running cluster; a change that
    needs a restart switches over, so a healthy one with Patroni not paused."""
    name, state = cluster.name, state_words(cluster)
    if restart and cluster.state != Cluster.State.HEALTHY:
        return f"a restart switches over and needs a healthy cluster: {name} is {state}"
    if cluster.state not in RUNNING:
        return f"needs a running cluster: {name} is {state}"
    if restart and cluster.maintenance:
        return f"{name} is in maintenance mode: a switchover needs Patroni on"
    return None


def why_not_change_parameters(cluster: Cluster, *, restart: bool, facts: ActionFacts) -> str | None:
    """`why_not` for a parameter change whose preview says whether it restarts PostgreSQL."""
    reason = _parameters_refusal(cluster, restart=restart)
    return reason or why_not(cluster, "change_parameters", None, facts)


def _node_change_refusal(
    cluster: Cluster, kind: str, node: Node | None, facts: ActionFacts
) -> str | None:
    """jobs.playbooks.nodes: add, replace and remove need a running cluster HA Center built;
    a proxy's (jobs.playbooks.proxies) keep one or two proxies and the witness."""
    # The page's "Add a node" names no node yet: the new server is entered on its own page.
    if not (kind == "add_node" and node is None) and (
        node is None or node.kind not in (Node.Kind.DATABASE, Node.Kind.PROXY)
    ):
        return f"name the node to {NODE_CHANGES[kind]}"
    if cluster.origin == Cluster.Origin.ADOPTED:
        return f"{cluster.name} is an adopted Patroni cluster: change its members with its tools"
    if cluster.state in NOT_SET_UP:
        return f"{cluster.name} is not set up yet: run setup instead"
    if cluster.maintenance:
        return f"{cluster.name} is in maintenance mode: end it first"
    if node is not None and node.kind == Node.Kind.PROXY:
        return _proxy_change_refusal(cluster, kind, node, facts)
    if kind == "remove_node" and len([n for n in facts.database if n.name != node.name]) < 2:
        return (
            "a cluster keeps at least two database nodes: add a standby first, "
            f"or replace {node.name}"
        )
    return None


def _proxy_change_refusal(
    cluster: Cluster, kind: str, node: Node, facts: ActionFacts
) -> str | None:
    """jobs.playbooks.proxies: one or two proxies, the first (by name) the witness; only the
    second leaves. (A new proxy's address in the floating address's network is checked by the
    job alone.)"""
    proxies = sorted(n.name for n in facts.nodes.values() if n.kind == Node.Kind.PROXY)
    if kind == "add_node":
        if len(proxies) > 2:
            return f"{cluster.name} has two proxies already (the most): replace one instead"
        if len(proxies) == 1:
            return f"{node.name} is {cluster.name}'s proxy already"
        if node.name == proxies[0]:
            return f"the first proxy by name is the etcd witness: name it after {proxies[1]}"
    if kind == "remove_node":
        if len(proxies) < 2:
            return f"{node.name} is the only proxy"
        if node.name == proxies[0]:
            return f"{node.name} is the etcd witness: replace it instead"
    return None


def add_proxy_refusal(cluster: Cluster, facts: ActionFacts) -> str | None:
    """The page's "Add a proxy": jobs.playbooks.proxies.add_plan keeps at most two."""
    reason = why_not(cluster, "add_node", None, facts)
    if reason:
        return reason
    if len([n for n in facts.nodes.values() if n.kind == Node.Kind.PROXY]) >= 2:
        return f"{cluster.name} has two proxies already (the most): replace one instead"
    return None


def _fence_refusal(cluster: Cluster, node: Node | None, facts: ActionFacts) -> str | None:
    """jobs.playbooks.fence.person_fence_refusal (its unsafe_to_fence) and job_start's fence
    conflict: never the leader or the only writable node, never beside another change."""
    if node is None or node.kind != Node.Kind.DATABASE:
        return "fence needs the database node to shut out"
    me = facts.nodes.get(node.name) or NodeFacts(node.name, node.kind)
    if not cluster.last_leader:
        return "the monitor has not read who holds the leader key yet"
    if node.name == cluster.last_leader or me.role == NodeStatus.Role.PRIMARY:
        return f"{node.name} holds the leader key: move the primary first"
    others = [
        n for n in facts.database if n.name != node.name and n.writable is True and not n.fenced
    ]
    if me.writable and not others:
        return f"{node.name} is the only node that accepts writes"
    if facts.active_fence:
        return f"wait for {facts.active_fence} to end: fence when nothing else changes the cluster"
    return None


def _rotation_refusal(cluster: Cluster, node: Node | None, facts: ActionFacts) -> str | None:
    """jobs.playbooks.rotate_certificates.plan: a running cluster of ours, on TLS everywhere."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        return f"{cluster.name} is an adopted Patroni cluster: HA Center does not manage its TLS"
    if cluster.state not in RUNNING:
        return f"needs a running cluster: {cluster.name} is {state_words(cluster)}"
    if node is not None:
        return "certificates are rotated on every node at once"
    plain = [n.name for n in facts.nodes.values() if not n.tls_active]
    if plain or not cluster.ca_certificate:
        return f"not on TLS yet ({', '.join(plain) or cluster.name}): run setup again first"
    return None


def _upgrade_refusal(cluster: Cluster, node: Node | None) -> str | None:
    """jobs.playbooks.upgrade.plan: a healthy cluster HA Center built, no node named."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        return f"{cluster.name} is an adopted Patroni cluster: HA Center does not upgrade it"
    if cluster.state != Cluster.State.HEALTHY:
        return f"needs a healthy cluster: {cluster.name} is {state_words(cluster)}"
    if node is not None:
        return "a minor upgrade goes through every node; name none"
    return None


def _backup_refusal(cluster: Cluster, node: Node | None, facts: ActionFacts) -> str | None:
    """jobs.playbooks.backups: backups turned on, a running cluster with its CA, no node."""
    if not facts.backups_on:
        return f"backups are not turned on for {cluster.name}"
    if cluster.state not in RUNNING:
        return f"needs a running cluster: {cluster.name} is {state_words(cluster)}"
    if not cluster.ca_certificate:
        return f"{cluster.name} has no CA yet: run setup first (pgBackRest uses TLS)"
    if node is not None:
        return "backups run from the repository host; name no node"
    return None


def _drill_refusal(cluster: Cluster, node: Node | None, facts: ActionFacts) -> str | None:
    """jobs.playbooks.restore_drill.plan_drill: a backup's rules, a drill server set outside
    every cluster, a successful backup to restore."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        return f"{cluster.name} is an adopted Patroni cluster: its backups are not managed"
    if node is not None:
        return "a restore drill runs on the drill server; name no node"
    return _backup_refusal(cluster, None, facts) or facts.drill_off or None


def page_refusal(cluster: Cluster, kind: str, node: Node | None, facts: ActionFacts) -> str | None:
    """What the job would accept but fail at on the servers, by the monitor's last reading;
    and what needs a fresh reading the console does not have."""
    if kind in NEEDS_READING and cluster.state == Cluster.State.UNKNOWN:
        return f"needs a fresh reading: no answer from {cluster.name}; check from another host"
    me = facts.nodes.get(node.name) if node is not None else None
    if me is None:
        return None
    if kind == "switchover":
        # switchover_check refuses a candidate that does not stream (live, in its first step).
        if me.role == NodeStatus.Role.PRIMARY:
            return f"{me.name} is already the primary"
        if me.state != "streaming":
            return f"{me.name} does not stream ({me.state or 'no reading'})"
    elif kind == "failover":
        return _failover_candidate_refusal(cluster, me, facts)
    elif kind in ("rebuild", "remove_node") and me.role == NodeStatus.Role.PRIMARY:
        # rebuild would stop the only writable node; remove_node fails at check_not_primary.
        return f"{me.name} is the primary: switch over first"
    return None


def _failover_candidate_refusal(cluster: Cluster, me: NodeFacts, facts: ActionFacts) -> str | None:
    """Patroni promotes only a running, answering, unfenced standby (the synchronous one in
    synchronous mode); a failover to any other waits out its 90 s and fails."""
    if me.role == NodeStatus.Role.PRIMARY:
        return f"{me.name} is already the primary"
    if me.fenced:
        return f"{me.name} is fenced until rebuilt"
    seen = "never answered"
    if me.last_seen is not None:
        seen = f"last answered {relative((facts.now - me.last_seen).total_seconds())}"
    if me.state not in RUNNING_STATES:
        state = me.state or "not answering"
        return f"{me.name} is {state} ({seen}): only a running standby can take over"
    # As the failover outlook judges it: not in the monitor's last reading of the cluster.
    checked = cluster.last_checked or facts.now
    if me.last_seen is None or me.last_seen < checked - ANSWERED_WITHIN:
        return f"{me.name}'s Patroni does not answer ({seen})"
    if cluster.replication == Cluster.Replication.SYNC and me.role != NodeStatus.Role.SYNC_REPLICA:
        return "in synchronous mode Patroni promotes only the synchronous standby"
    return None
