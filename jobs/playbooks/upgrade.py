"""Rolling minor upgrade (issue 22 item 6): apt's newer builds of the same majors of PostgreSQL,
etcd and HAProxy, one node at a time, with the cluster serving throughout.

Order: the standbys, the proxy, a switchover to an upgraded standby, then the old primary; so
writes pause once, for the switchover. Each node: exactly our packages to exactly the versions
the first step saw (`apt-get install --only-upgrade pkg=version`, config files kept), then a
restart of whatever still runs a replaced binary (PostgreSQL through Patroni, the etcd member,
HAProxy gracefully), then proof: the standby streams again and has replayed past the primary's
position, etcd is healthy, the versions read back. A node that fails stops the job; the rest
of the cluster keeps serving, and a retry resumes with that node (done nodes are skipped).

Debian's postgresql package scripts start a `postgresql@<major>-main` cluster when they can:
setup masked those units, and each node's step checks they are still masked afterwards and that
every PostgreSQL on the node runs under Patroni. Patroni itself comes from PyPI, not apt
(jobs.playbooks.wheels): this job leaves it as it is.
"""

from clusters.models import Cluster, Node, NodeStatus
from jobs.errors import JobRefused
from jobs.models import Job
from jobs.package_versions import major_changes, still_to_move, targets
from jobs.playbooks import operations, upgrade_apt, upgrade_restarts, versions
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.setup import with_spec
from jobs.playbooks.setup_postgres import members

# The packages whose new build PostgreSQL's processes load (server, client library).
POSTGRES_PACKAGES = ("postgresql", "libpq")


def upgrade_order(nodes: list[Node], primary: str | None) -> list[Node]:
    """Standbys first, the proxy, the primary last (roles as the monitor last saw them)."""

    def rank(node: Node) -> int:
        if node.kind == Node.Kind.PROXY:
            return 1
        return 2 if node.name == primary else 0

    return sorted(nodes, key=lambda n: (rank(n), n.name))


def plan_steps(ordered: list[Node], primary: str | None) -> list[StepSpec]:
    """Check, each node before the primary, the switchover, the primary, verify."""
    steps = [StepSpec("upgrade_check", "Read versions and what apt offers")]
    for node in ordered:
        if node.name == primary:
            steps.append(StepSpec("upgrade_switchover", "Switch over to an upgraded standby"))
        steps.append(StepSpec("upgrade_node", "Upgrade packages, restart, check", node))
    steps.append(StepSpec("upgrade_verify", "Every node on the new versions"))
    return steps


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Refused unless HA Center built the cluster and it is healthy (it needs a switchover)."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        raise JobRefused(
            f"{cluster.name} is an adopted Patroni cluster: HA Center did not install its "
            "packages and does not upgrade them"
        )
    if cluster.state != Cluster.State.HEALTHY:
        raise JobRefused(
            f"{cluster.name} is {cluster.state}; a rolling upgrade needs a healthy cluster "
            "(it restarts every node and switches over once)"
        )
    if node is not None:
        raise JobRefused("a minor upgrade goes through every node in turn; name no node")
    primary = (
        NodeStatus.objects.filter(node__cluster=cluster, role=NodeStatus.Role.PRIMARY)
        .values_list("node__name", flat=True)
        .first()
    ) or cluster.last_leader
    return plan_steps(upgrade_order(list(cluster.nodes.all()), primary), primary)


def touches_postgres(todo: dict[str, str], stale: list[str]) -> bool:
    """Whether PostgreSQL itself must restart for these changes: its packages move, or its
    postmaster runs a replaced binary. Only then does the primary need a switchover first; an
    etcd or HAProxy build changes nothing PostgreSQL runs."""
    return any(name.startswith(POSTGRES_PACKAGES) for name in todo) or any(
        path.endswith("/postgres") for path in stale
    )


def _targets(ctx: StepContext, node: Node) -> dict[str, str]:
    return ctx.job.params.get("targets", {}).get(node.name, {})


def _installed(ctx: StepContext, node: Node) -> dict[str, str]:
    return {n: s.installed for n, s in versions.package_states(ctx, node).items()}


def upgrade_check(ctx: StepContext) -> Verdict | str:
    """Refresh every node's package lists, read what is installed and what apt offers, refuse a
    major version change, and note the exact versions the job moves each node to."""
    found: dict[str, dict[str, str]] = {}
    crossing = []
    held: dict[str, list[str]] = {}
    for node in ctx.cluster.nodes.order_by("name"):
        upgrade_apt.refresh(ctx, node)
        states = versions.package_states(ctx, node)
        crossing += [f"{node.name}: {c}" for c in major_changes(states)]
        found[node.name] = targets(states)
        if found[node.name] and (names := upgrade_apt.held(ctx, node, list(found[node.name]))):
            held[node.name] = names
        versions.read_and_store(ctx, node)
    if crossing:
        raise StepFailed(
            "refused: apt offers a new major version, which a minor upgrade never installs ("
            + "; ".join(crossing)
            + "). Pin the current major in the nodes' apt sources, or upgrade the major by hand"
        )
    if held:
        raise StepFailed(f"refused: {upgrade_apt.held_words(held)}")
    if ctx.job.params.get("targets"):
        # A retry keeps the versions the first run chose, so every node ends on the same build.
        kept = ctx.job.params["targets"]
        return f"retry: moving to the versions chosen before ({_describe_targets(kept)})"
    # Kept with the job, not in facts: a retry that resumes at a node's step needs them.
    ctx.job.params = dict(ctx.job.params, targets=found)
    Job.objects.filter(pk=ctx.job.pk).update(params=ctx.job.params)
    if not any(found.values()):
        return "every node already runs the newest version its apt sources offer; nothing to do"
    return _describe_targets(found)


def _describe_targets(found: dict[str, dict[str, str]]) -> str:
    moves = sorted({f"{p} {v}" for t in found.values() for p, v in t.items()})
    nodes = sorted(name for name, t in found.items() if t)
    return f"to install: {', '.join(moves)} on {', '.join(nodes)}" if moves else "nothing to do"


def upgrade_node(ctx: StepContext) -> Verdict | str:
    """Move the node's packages to the versions chosen, restart what runs an old binary, and
    prove the node serves again. A node with nothing left to do is only checked."""
    node = ctx.node
    wanted = _targets(ctx, node)
    todo = still_to_move(_installed(ctx, node), wanted)
    if (
        node.kind == Node.Kind.DATABASE
        and touches_postgres(todo, versions.stale_binaries(ctx, node))
        and upgrade_restarts.leader_name(ctx) == node.name
    ):
        raise StepFailed(
            f"{node.name} is the primary: it is upgraded only after a switchover. Switch over "
            "to an upgraded standby, then retry"
        )
    if todo and (held := upgrade_apt.held(ctx, node, list(todo))):
        raise StepFailed(upgrade_apt.held_words({node.name: held}))
    masked_before = upgrade_apt.masked(ctx, node)
    if todo:
        upgrade_apt.install(ctx, node, todo)
    unmasked = masked_before - upgrade_apt.masked(ctx, node)
    if unmasked:
        raise StepFailed(f"the upgrade unmasked {', '.join(sorted(unmasked))} on {node.name}")
    restarted = upgrade_restarts.restart_stale(ctx, node)
    facts = upgrade_restarts.check_node(ctx, node, restarted)
    row = versions.read_and_store(ctx, node)
    behind = still_to_move({n: p["installed"] for n, p in row.packages.items()}, wanted)
    if behind:
        left = ", ".join(f"{n} {v}" for n, v in behind.items())
        raise StepFailed(f"{node.name} is still behind: wants {left}")
    moved = ", ".join(f"{n} {v}" for n, v in sorted(todo.items())) or "already up to date"
    return "; ".join([moved, *restarted, *facts])


def upgrade_switchover(ctx: StepContext) -> Verdict | str:
    """Hand the primary's role to an upgraded standby, unless the primary needs nothing."""
    leader = upgrade_restarts.leader_name(ctx)
    if leader is None:
        raise StepFailed("no primary at the moment")
    node = ctx.cluster.nodes.get(name=leader)
    todo = still_to_move(_installed(ctx, node), _targets(ctx, node))
    if not touches_postgres(todo, versions.stale_binaries(ctx, node)):
        return f"{leader} (the primary) keeps its PostgreSQL build; no switchover needed"
    operations.switchover_check(ctx)
    candidate = ctx.facts.get("candidate")
    if candidate is not None:
        target = ctx.cluster.nodes.get(name=candidate)
        if still_to_move(_installed(ctx, target), _targets(ctx, target)):
            raise StepFailed(f"{candidate}, the standby to switch over to, is not upgraded yet")
    return operations.switchover(ctx)


def upgrade_verify(ctx: StepContext) -> Verdict | str:
    """Every node on the versions chosen, no daemon on an old binary, one primary, every
    standby streaming."""
    leader = upgrade_restarts.leader_name(ctx)
    if leader is None:
        raise StepFailed("no primary at the moment")
    current = members(ctx)
    lagging = [m["name"] for m in current if m["name"] != leader and m.get("state") != "streaming"]
    if lagging:
        raise StepFailed(f"not streaming: {', '.join(lagging)}")
    runs = {}
    for node in ctx.cluster.nodes.order_by("name"):
        row = versions.read_and_store(ctx, node)
        behind = still_to_move(
            {n: p["installed"] for n, p in row.packages.items()}, _targets(ctx, node)
        )
        if behind or row.stale:
            raise StepFailed(f"{node.name} is behind: {versions.describe(row)}")
        if "postgresql" in row.running:
            runs.setdefault(f"PostgreSQL {row.running['postgresql']}", []).append(node.name)
    described = "; ".join(f"{what} on {', '.join(names)}" for what, names in sorted(runs.items()))
    return f"{described}; {leader} leads, every standby streams"


PLAYBOOK = Playbook(
    kind="minor_upgrade",
    plan=plan,
    steps={
        name: with_spec(fn)
        for name, fn in {
            "upgrade_check": upgrade_check,
            "upgrade_node": upgrade_node,
            "upgrade_switchover": upgrade_switchover,
            "upgrade_verify": upgrade_verify,
        }.items()
    },
)
