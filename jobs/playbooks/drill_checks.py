"""Who may be drilled (jobs.playbooks.failover_drill): the refusal the page's button, the API
and the job's plan share, read from the monitor's last reading, and the live check of Patroni's
member list that the drill's first step repeats before anything changes."""

from clusters.models import Cluster, FenceDevice, Node, NodeStatus
from jobs.configs.patroni import MAXIMUM_LAG_ON_FAILOVER
from jobs.models import Job, JobKind, JobStatus

# Patroni's member states of a standby it may promote.
TAKEOVER_STATES = ("running", "streaming")
SYNC_ROLES = ("sync_standby", "quorum_standby")


def primary_of(cluster: Cluster) -> Node | None:
    """The primary by the monitor's last reading: the leader key's holder (None before the
    monitor read it; the drill's first step asks Patroni again before anything changes)."""
    if not cluster.last_leader:
        return None
    return cluster.database_nodes.filter(name=cluster.last_leader).first()


def ready_standbys(cluster: Cluster, primary: Node) -> list[str]:
    """Standbys the monitor last read as able to take over: streaming, not fenced; in
    synchronous mode only the synchronous standby."""
    found = NodeStatus.objects.filter(
        node__cluster=cluster, node__kind=Node.Kind.DATABASE, state="streaming", fenced=False
    ).exclude(node=primary)
    if cluster.replication == Cluster.Replication.SYNC:
        found = found.filter(role=NodeStatus.Role.SYNC_REPLICA)
    return sorted(found.values_list("node__name", flat=True))


def drill_refusal(cluster: Cluster) -> str | None:
    """Why a failover drill of `cluster` cannot start (None: it can), by the monitor's last
    reading: no proxy, not healthy, no tested fence device on the primary, no standby that can
    take over, a fence under way. The plan and the page's button (clusters.web.action_checks)
    share it; the typed confirmation and the one-mutating-job rule are checked besides."""
    name = cluster.name
    if cluster.proxy_node is None:
        return (
            f"{name} has no proxy: the drill writes through it, and the fence agent runs on "
            "the witness (the first proxy)"
        )
    if cluster.state != Cluster.State.HEALTHY:
        return f"needs a healthy cluster: {name} is {cluster.get_state_display().lower()}"
    primary = primary_of(cluster)
    if primary is None:
        return "the monitor has not read who holds the leader key yet"
    device = FenceDevice.objects.filter(node=primary).first()
    if device is None:
        return (
            f"{primary.name}, the primary, has no fence device: define one on its Fence device "
            "page and test it"
        )
    if why := device.untested_reason():
        return f"{primary.name}, the primary: {why}; test it (again) on its Fence device page"
    if not ready_standbys(cluster, primary):
        sync = cluster.replication == Cluster.Replication.SYNC
        return "no standby can take over: " + (
            "no synchronous standby streams" if sync else "no standby streams"
        )
    fencing = Job.objects.filter(
        cluster=cluster, kind=JobKind.FENCE, status__in=JobStatus.active()
    ).first()
    if fencing is not None:
        return f"wait for fence job {fencing.pk} to end"
    return None


def takeover_refusal(current: list[dict], leader: dict, *, synchronous: bool) -> str | None:
    """Why no standby of Patroni's live member list can take over from `leader` (None: one
    can): running or streaming on the leader's timeline, within the failover lag limit, not
    tagged nofailover; in synchronous mode the synchronous standby."""
    seen = []
    for m in current:
        if m.get("name") == leader.get("name"):
            continue
        lag, state = m.get("lag"), m.get("state") or "unknown"
        why = None
        if state not in TAKEOVER_STATES:
            why = state
        elif (m.get("tags") or {}).get("nofailover"):
            why = "tagged nofailover"
        elif m.get("timeline") != leader.get("timeline"):
            why = f"on timeline {m.get('timeline')}, the primary on {leader.get('timeline')}"
        elif not isinstance(lag, int) or lag > MAXIMUM_LAG_ON_FAILOVER:
            why = f"lag {lag} bytes"
        elif synchronous and m.get("role") not in SYNC_ROLES:
            why = "not the synchronous standby"
        if why is None:
            return None
        seen.append(f"{m.get('name')} ({why})")
    return "no standby can take over: " + (", ".join(seen) or "there is none")
