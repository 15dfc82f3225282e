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

import shlex

from clusters.models import Cluster, Node, NodeStatus
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.models import Job
from jobs.package_versions import major_changes, still_to_move, targets
from jobs.playbooks import daemons, operations, packages, versions
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.layout import patroni_layout
from jobs.playbooks.setup import with_spec
from jobs.playbooks.setup_etcd import etcd_daemon, etcd_verify
from jobs.playbooks.setup_finish import haproxy_daemon
from jobs.playbooks.setup_postgres import members, verify_streaming
from jobs.playbooks.sql import psql

# What apt may change beside the packages we move: builds of the same products that the new
# versions depend on (postgresql-common, postgresql-client-common). Anything else is refused.
SAME_PRODUCT_PREFIXES = ("postgresql-", "libpq", "etcd-", "haproxy")
# The packages whose new build PostgreSQL's processes load (server, client library).
POSTGRES_PACKAGES = ("postgresql", "libpq")
# Units that must stay masked through the upgrade (setup masked them; distro_services).
DISTRO_UNITS = "postgresql@*.service haproxy.service etcd.service"


def outside_patroni_script(data_dir: str) -> str:
    """Shell printing "pid directory" for each PostgreSQL postmaster (a postgres whose parent
    is not a postgres) that serves another data directory than Patroni's. Not by parent:
    Patroni starts its postmaster through a launcher that exits, so PID 1 adopts it; the
    postmaster's working directory is its data directory."""
    return (
        f"want=$(realpath -m {shlex.quote(data_dir)}); "
        "for p in $(pgrep -x postgres); do pp=$(ps -o ppid= -p $p | tr -d ' '); "
        '[ "$(ps -o comm= -p $pp)" = postgres ] && continue; '
        'd=$(readlink /proc/$p/cwd); [ "$d" = "$want" ] || echo "$p $d"; done; true'
    )


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
        _refresh(ctx, node)
        states = versions.package_states(ctx, node)
        crossing += [f"{node.name}: {c}" for c in major_changes(states)]
        found[node.name] = targets(states)
        if found[node.name] and (names := _held(ctx, node, list(found[node.name]))):
            held[node.name] = names
        versions.read_and_store(ctx, node)
    if crossing:
        raise StepFailed(
            "refused: apt offers a new major version, which a minor upgrade never installs ("
            + "; ".join(crossing)
            + "). Pin the current major in the nodes' apt sources, or upgrade the major by hand"
        )
    if held:
        raise StepFailed(f"refused: {_held_words(held)}")
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


def _refresh(ctx: StepContext, node: Node) -> None:
    """`apt-get update` on `node` with the cluster's APT proxy."""
    lines: list[str] = []
    result = ctx.run(
        f"apt-get {packages.apt_options(ctx.cluster)} -q update",
        node=node,
        timeout=600,
        collect=lines,
    )
    if not result.ok:
        raise StepFailed(
            f"apt-get update failed on {node.name}: "
            f"{packages.apt_failure(result.stderr_tail + lines[-5:])}"
            f"{packages.proxy_hint(ctx.cluster)}"
        )


def _held(ctx: StepContext, node: Node, names: list[str]) -> list[str]:
    """Of these packages, the ones the admin holds on the node (`apt-mark hold`)."""
    lines = ctx.output("apt-mark showhold", node=node, echo=False, sudo=True)
    return sorted(set(lines) & set(names))


def _held_words(held: dict[str, list[str]]) -> str:
    listed = "; ".join(f"{node}: {', '.join(names)}" for node, names in sorted(held.items()))
    return (
        f"held with apt-mark hold ({listed}): the admin keeps those versions on purpose. "
        "Unhold them (apt-mark unhold) to upgrade, then retry"
    )


def _masked(ctx: StepContext, node: Node) -> set[str]:
    """The distribution's units masked on the node (postgresql@…, haproxy, etcd)."""
    lines = ctx.output(
        f"cd /etc/systemd/system 2>/dev/null && for u in {DISTRO_UNITS}; do "
        '[ "$(readlink "$u")" = /dev/null ] && echo "$u"; done; true',
        node=node,
        echo=False,
        sudo=True,
    )
    return {line for line in lines if line.endswith(".service")}


def _simulate(ctx: StepContext, node: Node, install: str) -> None:
    """apt's plan for the install, refused when it would remove a package or change one that
    is not ours."""
    lines: list[str] = []
    result = ctx.run(f"apt-get -s {install}", node=node, echo=False, collect=lines)
    if not result.ok:
        raise StepFailed(
            f"apt refuses the upgrade on {node.name}: "
            f"{packages.apt_failure(result.stderr_tail + lines[-5:])}"
        )
    removed = [line.split()[1] for line in lines if line.startswith("Remv ")]
    others = [
        line.split()[1]
        for line in lines
        if line.startswith("Inst ") and not line.split()[1].startswith(SAME_PRODUCT_PREFIXES)
    ]
    if removed or others:
        raise StepFailed(
            f"refused on {node.name}: apt would "
            + "; ".join(
                part
                for part in (
                    f"remove {', '.join(removed)}" if removed else "",
                    f"also change {', '.join(others)}" if others else "",
                )
                if part
            )
            + ". Upgrade those by hand first"
        )


def _install(ctx: StepContext, node: Node, todo: dict[str, str]) -> None:
    """Exactly these packages to exactly these versions; config files the admin changed are
    kept (`--force-confold`), no questions asked."""
    wanted = " ".join(shlex.quote(f"{name}={version}") for name, version in sorted(todo.items()))
    install = (
        f"{packages.apt_options(ctx.cluster)} install -y -q --only-upgrade "
        "--no-install-recommends -o Dpkg::Options::=--force-confdef "
        f"-o Dpkg::Options::=--force-confold {wanted}"
    )
    _simulate(ctx, node, install)
    lines: list[str] = []
    result = ctx.run(
        f"DEBIAN_FRONTEND=noninteractive apt-get {install}",
        node=node,
        timeout=1200,
        collect=lines,
    )
    if not result.ok:
        raise StepFailed(
            f"apt-get install failed on {node.name}: "
            f"{packages.apt_failure(result.stderr_tail + lines[-5:])}"
        )


def _leader_name(ctx: StepContext) -> str | None:
    leader = patroni_api.leader(members(ctx))
    return leader["name"] if leader else None


def _restart_postgres(ctx: StepContext, node: Node) -> str:
    """Patroni restarts its standby's PostgreSQL on the new binaries; then it must stream and
    catch up with the primary."""
    status, body = patroni_api.post(node, "/restart", {}, auth=operations._auth(ctx), timeout=120)
    if status != 200:
        raise StepFailed(f"Patroni on {node.name} refused to restart PostgreSQL: {status} {body}")
    ctx.log(f"Patroni: {body}", host=node.name)
    return "PostgreSQL restarted by Patroni"


def _restart_etcd(ctx: StepContext, node: Node) -> str:
    """The etcd member restarts on the new binary; the others keep the quorum meanwhile."""
    daemons.restart(ctx, node, etcd_daemon(ctx.facts["spec"]))
    return "etcd member restarted"


def _reload_haproxy(ctx: StepContext, node: Node) -> str:
    """SIGUSR2 to HAProxy's master: it re-executes itself (the new binary), new workers take
    new connections and the old ones finish theirs."""
    master = daemons.pid(ctx, node, haproxy_daemon())
    if not master:
        raise StepFailed(f"HAProxy does not run on {node.name}")
    ctx.run(f"kill -USR2 {master}", node=node, check=True)

    def reexecuted() -> bool:
        exe = ctx.output(f"readlink /proc/{master}/exe", node=node, echo=False, sudo=True)
        return bool(exe) and not exe[0].endswith(" (deleted)")

    ctx.wait_until(reexecuted, timeout=30, what=f"HAProxy's master on {node.name} to reload")
    return "HAProxy reloaded gracefully"


def _restart_stale(ctx: StepContext, node: Node) -> list[str]:
    """Restart each daemon still running a replaced binary; what was done."""
    stale = versions.stale_binaries(ctx, node)
    done = []
    if any(path.endswith("/postgres") for path in stale):
        done.append(_restart_postgres(ctx, node))
    if any(path.endswith("/etcd") for path in stale):
        done.append(_restart_etcd(ctx, node))
    if any(path.endswith("/haproxy") for path in stale):
        done.append(_reload_haproxy(ctx, node))
    return done


def _check_node(ctx: StepContext, node: Node, restarted: list[str]) -> list[str]:
    """Proof the node serves again on the new versions: nothing stale, PostgreSQL under Patroni
    only, the standby streaming and caught up, etcd healthy."""
    facts = []
    if node.kind == Node.Kind.DATABASE:
        leader = _leader_name(ctx)
        if leader is None:
            raise StepFailed("no primary at the moment")
        if leader == node.name:  # an etcd or HAProxy build only: the primary stayed
            psql(ctx, node, "SELECT 1;", echo=False)
            facts.append(f"{node.name} is still the primary and answers")
        else:
            primary = ctx.cluster.nodes.get(name=leader)
            facts.append(verify_streaming(ctx, node, primary, timeout=120))
        script = outside_patroni_script(patroni_layout(ctx.cluster).data_dir)
        outside = ctx.output(script, node=node, echo=False, sudo=True)
        if outside:
            raise StepFailed(
                f"PostgreSQL runs outside Patroni on {node.name} ({'; '.join(outside)}): "
                "the package started another cluster; stop it with pg_ctlcluster"
            )
    if any("etcd" in r for r in restarted) or node.kind == Node.Kind.PROXY:
        facts.append(f"etcd: {etcd_verify(ctx)}")
    stale = versions.stale_binaries(ctx, node)
    if stale:
        raise StepFailed(f"still running the old binary on {node.name}: {', '.join(stale)}")
    return facts


def upgrade_node(ctx: StepContext) -> Verdict | str:
    """Move the node's packages to the versions chosen, restart what runs an old binary, and
    prove the node serves again. A node with nothing left to do is only checked."""
    node = ctx.node
    wanted = _targets(ctx, node)
    todo = still_to_move(_installed(ctx, node), wanted)
    if (
        node.kind == Node.Kind.DATABASE
        and touches_postgres(todo, versions.stale_binaries(ctx, node))
        and _leader_name(ctx) == node.name
    ):
        raise StepFailed(
            f"{node.name} is the primary: it is upgraded only after a switchover. Switch over "
            "to an upgraded standby, then retry"
        )
    if todo and (held := _held(ctx, node, list(todo))):
        raise StepFailed(_held_words({node.name: held}))
    masked_before = _masked(ctx, node)
    if todo:
        _install(ctx, node, todo)
    unmasked = masked_before - _masked(ctx, node)
    if unmasked:
        raise StepFailed(f"the upgrade unmasked {', '.join(sorted(unmasked))} on {node.name}")
    restarted = _restart_stale(ctx, node)
    facts = _check_node(ctx, node, restarted)
    row = versions.read_and_store(ctx, node)
    behind = still_to_move({n: p["installed"] for n, p in row.packages.items()}, wanted)
    if behind:
        left = ", ".join(f"{n} {v}" for n, v in behind.items())
        raise StepFailed(f"{node.name} is still behind: wants {left}")
    moved = ", ".join(f"{n} {v}" for n, v in sorted(todo.items())) or "already up to date"
    return "; ".join([moved, *restarted, *facts])


def upgrade_switchover(ctx: StepContext) -> Verdict | str:
    """Hand the primary's role to an upgraded standby, unless the primary needs nothing."""
    leader = _leader_name(ctx)
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
            raise StepFailed(f"{candidate}, the only candidate, is not upgraded yet")
    return operations.switchover(ctx)


def upgrade_verify(ctx: StepContext) -> Verdict | str:
    """Every node on the versions chosen, no daemon on an old binary, one primary, every
    standby streaming."""
    leader = _leader_name(ctx)
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
