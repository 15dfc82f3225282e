"""Versions: what runs where and what the nodes' apt sources offer (the `check_updates` job).

Read-only for the cluster: on each node `apt-get update` (with the cluster's APT proxy, as
setup does), then dpkg's installed version and apt's candidate of HA Center's packages only,
the version the running PostgreSQL and Patroni report, and the programs still running a binary
the package manager has replaced since they started. Stored in `NodeVersions`, which the
cluster page and the API show; `minor_upgrade` (jobs.playbooks.upgrade) reads the same way.
"""

import shlex

from django.utils import timezone

from clusters.models import Cluster, Node, NodeVersions
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.package_versions import PackageState, debian_version_of_server, parse_states
from jobs.playbooks import packages
from jobs.playbooks.base import Playbook, StepContext, StepSpec, Verdict
from jobs.playbooks.sql import psql

# HA Center's packages on each kind of node; etcd's where the node is an etcd member (dpkg
# reports the others as not installed and they are left out). Patroni comes from PyPI in a
# virtualenv (jobs.playbooks.wheels), not from apt: its running version is shown, its
# upgrades are the console's Patroni version, not the node's apt sources.
TRACKED = {
    Node.Kind.DATABASE: ["postgresql-{version}", "postgresql-client-{version}", "libpq5"],
    Node.Kind.PROXY: ["haproxy"],
}
# The programs whose replaced binary means "restart needed" (`/proc/PID/exe` ends in
# " (deleted)" once dpkg has put a new file in its place). Only the oldest process of each
# counts: the postmaster (its backends share its binary), HAProxy's master (old workers finish
# their long connections on the old binary after a graceful reload, as they should), etcd.
DAEMONS = ("postgres", "etcd", "haproxy")


def tracked(cluster: Cluster, node: Node) -> list[str]:
    """The packages whose versions this node's check reads."""
    names = [p.format(version=cluster.postgres_version) for p in TRACKED[node.kind]]
    return names + packages.ETCD_PACKAGES


def versions_script(names: list[str]) -> str:
    """Shell printing "name installed candidate" per package ("-" for none)."""
    quoted = " ".join(shlex.quote(p) for p in names)
    return (
        f"for p in {quoted}; do "
        "i=$(dpkg-query -W -f='${Status} ${Version}\\n' \"$p\" 2>/dev/null "
        "| awk '$3 == \"installed\" {print $4}'); "
        "c=$(apt-cache policy \"$p\" 2>/dev/null | awk '/Candidate:/ {print $2}'); "
        'echo "$p ${i:--} ${c:--}"; done'
    )


STALE_SCRIPT = (
    f"for n in {' '.join(DAEMONS)}; do p=$(pgrep -o -x $n) || continue; "
    "e=$(readlink /proc/$p/exe 2>/dev/null); "
    'case "$e" in *" (deleted)") echo "${e% (deleted)}";; esac; done; true'
)


def package_states(ctx: StepContext, node: Node) -> dict[str, PackageState]:
    """dpkg's and apt's view of the node's tracked packages (its lists as they are now)."""
    names = tracked(ctx.cluster, node)
    lines = ctx.output(versions_script(names), node=node, echo=False)
    return parse_states(lines, names)


def running_versions(ctx: StepContext, node: Node) -> dict[str, str]:
    """What the node's daemons report: PostgreSQL's package version and Patroni's version."""
    running: dict[str, str] = {}
    if node.kind != Node.Kind.DATABASE:
        return running
    rows = psql(ctx, node, "SHOW server_version;", echo=False, check=False)
    if rows:
        running["postgresql"] = debian_version_of_server(rows[0]) or rows[0]
    try:
        _, me = patroni_api.member(node, timeout=3)
    except patroni_api.PatroniUnavailable:
        me = {}
    patroni = me.get("patroni") if isinstance(me.get("patroni"), dict) else {}
    if patroni.get("version"):
        running["patroni"] = str(patroni["version"])
    return running


def stale_binaries(ctx: StepContext, node: Node) -> list[str]:
    """Programs still running a binary dpkg has replaced (they need a restart)."""
    return ctx.output(STALE_SCRIPT, node=node, echo=False, sudo=True)


def read_and_store(ctx: StepContext, node: Node) -> NodeVersions:
    """Read everything about the node's versions and keep it for the page and the API."""
    states = package_states(ctx, node)
    row, _ = NodeVersions.objects.update_or_create(
        node=node,
        defaults={
            "packages": {
                s.name: {"installed": s.installed, "candidate": s.candidate}
                for s in states.values()
                if s.installed
            },
            "running": running_versions(ctx, node),
            "stale": stale_binaries(ctx, node),
            "checked_at": timezone.now(),
        },
    )
    return row


def updates(row: NodeVersions) -> dict[str, str]:
    """{package: candidate} for each package apt offers a newer build of (dpkg's order)."""
    return {
        name: p["candidate"]
        for name, p in sorted(row.packages.items())
        if PackageState(name, p.get("installed", ""), p.get("candidate", "")).upgradable
    }


def describe(row: NodeVersions) -> str:
    """One line: what is installed, what apt offers, what needs a restart."""
    parts = []
    for name, p in sorted(row.packages.items()):
        offer = updates(row).get(name)
        parts.append(f"{name} {p['installed']}" + (f" → {offer} available" if offer else ""))
    for program, version in sorted(row.running.items()):
        parts.append(f"{program} running {version}")
    if row.stale:
        parts.append(f"restart needed: {', '.join(row.stale)}")
    return "; ".join(parts) or "none of HA Center's packages installed"


# --- the check_updates job ----------------------------------------------------------------


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """One read per node (or the named node)."""
    if cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING):
        raise JobRefused(f"{cluster.name} is not set up yet: nothing runs there to check")
    nodes = [node] if node is not None else list(cluster.nodes.order_by("kind", "name"))
    return [StepSpec("versions_read", "Read installed and available versions", n) for n in nodes]


def versions_read(ctx: StepContext) -> Verdict | str:
    """Refresh the node's package lists, then read and store its versions."""
    packages.refresh(ctx)
    row = read_and_store(ctx, ctx.node)
    summary = describe(row)
    return Verdict.warn(summary) if updates(row) or row.stale else summary


PLAYBOOK = Playbook(
    kind="check_updates",
    plan=plan,
    steps={"versions_read": versions_read},
    mutating=False,  # apt's package lists only; no daemon, file or package of the cluster
    keep_going=True,  # every node's versions, even when one node's apt fails
)
