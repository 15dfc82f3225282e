"""Node changes on a running cluster: add a standby, replace a dead node, remove a node.

All three reuse setup's steps on the node that changes, then bring the rest of the cluster in
line: etcd's membership (`etcd_members`), every database node's Patroni file (pg_hba names each
database node; Patroni reloads when its file changes) and HAProxy's backends (graceful reload).
They end with setup's verification: a row written through the proxy is read on every standby.

- ``add_node``: the node is in the inventory already (``jobs.node_changes.node_add``).
- ``replace_node``: the inventory already points the node's name at the new server
  (``jobs.node_changes.node_replace``, which records the old address in the job's params);
  refused while the old server still answers as a Patroni member, since two servers under one
  member name would both claim it.
- ``remove_node``: never the primary, never below two database nodes; the removed server's data
  is moved aside, not deleted, and the node leaves the inventory last.

A proxy named to any of the three gets the plan of jobs/playbooks/proxies.py instead.
"""

import dataclasses

from django.conf import settings

from clusters.alerts.events import event_record
from clusters.models import BackupPolicy, Cluster, ClusterEvent, Node
from jobs import patroni_api
from jobs.configs import spec as paths
from jobs.errors import JobRefused
from jobs.playbooks import (
    backup_steps,
    daemons,
    firewall,
    proxies,
    replica_method,
    setup,
    setup_finish,
    setup_keepalived,
    setup_postgres,
    tls,
)
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.etcd_members import etcd_membership
from jobs.playbooks.remove import _move_aside
from jobs.playbooks.setup_etcd import etcd_daemon
from jobs.playbooks.setup_postgres import current_primary, members, patroni_daemon
from jobs.ssh import SSHError


def _refuse_unless_running(cluster: Cluster, node: Node | None, action: str) -> Node:
    """A database node or a proxy of a running cluster HA Center built, not in maintenance."""
    if node is None or node.kind not in (Node.Kind.DATABASE, Node.Kind.PROXY):
        raise JobRefused(f"name the node to {action}")
    if cluster.origin == Cluster.Origin.ADOPTED:
        # These steps write HA Center's own Patroni, etcd and HAProxy configuration, which an
        # adopted cluster does not have.
        raise JobRefused(
            f"{cluster.name} is an adopted Patroni cluster: {action} the node with the "
            "cluster's own tooling (HA Center does not manage its members yet)"
        )
    if cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING):
        raise JobRefused(f"{cluster.name} is not set up yet; run setup instead")
    if cluster.maintenance:
        raise JobRefused(f"{cluster.name} is in maintenance mode; end it first")
    return node


def _join_plan(cluster: Cluster, node: Node) -> list[StepSpec]:
    """Setup's steps for one new database node, then the cluster-wide updates."""
    others = [n for n in cluster.database_nodes if n != node]
    return [
        StepSpec("check_login", "SSH login and sudo", node),
        StepSpec("install_packages", "Install packages", node),
        StepSpec("install_patroni", f"Install Patroni {settings.PATRONI_VERSION}", node),
        # Its certificate (issued by cluster_spec) before its etcd and Patroni read it.
        StepSpec("tls_files", "CA, node certificate and keys", node),
        # Every node's firewall lets the new address in before it joins etcd and copies data.
        *[StepSpec("firewall", "Host firewall (nftables)", n) for n in cluster.nodes.all()],
        StepSpec("etcd_membership", "etcd members match the nodes"),
        *[StepSpec("patroni_configure", "Update Patroni (pg_hba, etcd)", n) for n in others],
        # With backups: the repository lets the node in, and the node gets pgBackRest's config,
        # so it archives when it becomes primary and is restored from the repository now.
        *join_backup_steps(cluster, node),
        StepSpec("patroni_configure", "Configure Patroni", node),
        StepSpec("start_standby", "Start the standby; wait until it streams", node),
        *[StepSpec("haproxy", "Add it to HAProxy", p) for p in cluster.proxy_nodes],
        StepSpec("verify", "Write through the proxy, read on every standby"),
    ]


def join_backup_steps(cluster: Cluster, node: Node) -> list[StepSpec]:
    """pgBackRest's config on the repository host (which names every database node) and on
    `node`, when the cluster is backed up; none otherwise."""
    repo = repository(cluster)
    if repo is None:
        return []
    return [
        StepSpec("backup_host", f"pgBackRest's repository knows {node.name}", repo),
        StepSpec("backup_host", "Install and configure pgBackRest", node),
    ]


def repository(cluster: Cluster) -> Node | None:
    policy = BackupPolicy.objects.filter(cluster=cluster, enabled=True).first()
    return policy.repository_node() if policy else None


def join_standby(ctx: StepContext) -> Verdict | str:
    """Start Patroni on the new node and wait until it streams (setup's step); then say how
    Patroni copied it: from the backup repository or from the primary."""
    spec = ctx.facts["spec"]
    since = int(ctx.output("date +%s", echo=False)[0])
    verdict = setup_postgres.start_standby(ctx)
    if isinstance(verdict, Verdict) or "primary now" in verdict:
        return verdict
    how = replica_method.copy_method(
        ctx, paths.data_dir(spec), setup_postgres.patroni_daemon(spec), since
    )
    return f"{verdict}; {how}"


def add_plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    node = _refuse_unless_running(cluster, node, "add")
    if node.kind == Node.Kind.PROXY:
        return proxies.add_plan(cluster, node)
    return [StepSpec("check_cluster", "A primary to copy from", node), *_join_plan(cluster, node)]


def replace_plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    node = _refuse_unless_running(cluster, node, "replace")
    if not params.get("old_address"):
        raise JobRefused("a replacement names the old server's address (old_address)")
    if node.kind == Node.Kind.PROXY:
        return proxies.replace_plan(cluster, node)
    return [
        StepSpec("check_old_server", "The old server is gone", node),
        *_join_plan(cluster, node),
    ]


def remove_plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    node = _refuse_unless_running(cluster, node, "remove")
    if node.kind == Node.Kind.PROXY:
        return proxies.remove_plan(cluster, node, params)
    if params.get("confirm") != node.name:
        raise JobRefused(
            f"removing {node.name} stops its PostgreSQL and takes it out of {cluster.name}; "
            f"repeat the node's name in 'confirm' to go ahead"
        )
    remaining = [n for n in cluster.database_nodes if n != node]
    if len(remaining) < 2:
        raise JobRefused(
            f"{cluster.name} would keep one database node and no standby; add a standby first, "
            f"or replace {node.name} with a new server"
        )
    params["node_name"] = node.name  # kept with the job: the node row goes in the last steps
    return [
        StepSpec("check_not_primary", f"{node.name} is not the primary", node),
        StepSpec("stop_node", f"Stop {node.name}; move its data aside", node),
        StepSpec("etcd_membership", "etcd members match the nodes"),
        *[StepSpec("patroni_configure", "Update Patroni (pg_hba, etcd)", n) for n in remaining],
        *[StepSpec("haproxy", f"Take {node.name} out of HAProxy", p) for p in cluster.proxy_nodes],
        # The repository stops naming it (its backups would look for it).
        *(
            [StepSpec("backup_host", f"pgBackRest's repository without {node.name}", repo)]
            if (repo := repository(cluster)) is not None
            else []
        ),
        # The other nodes stop letting the old server's address in.
        *[
            StepSpec("firewall", f"Host firewall without {node.name}", n)
            for n in cluster.nodes.exclude(pk=node.pk)
        ],
        StepSpec("forget_node", f"Take {node.name} out of the inventory"),
        StepSpec("verify", "Write through the proxy, read on every standby"),
    ]


def check_cluster(ctx: StepContext) -> Verdict | str:
    """There is a primary to copy from, and it is not the node being added."""
    primary = current_primary(ctx)
    if primary == ctx.node:
        raise StepFailed(f"{ctx.node.name} is the primary already; nothing to add")
    me = next((m for m in members(ctx) if m["name"] == ctx.node.name), None)
    if me is not None and me.get("state") == "streaming":
        return f"{ctx.node.name} already streams from {primary.name}; the steps verify it"
    return f"{primary.name} is the primary; {ctx.node.name} will be copied from it"


def _answers(target: patroni_api.Member) -> bool:
    try:
        patroni_api.cluster(target, timeout=2)
    except patroni_api.PatroniUnavailable:
        return False
    return True


def check_old_server(ctx: StepContext) -> Verdict | str:
    """Refuse while the old server answers as a Patroni member; wait for its key to expire."""
    old = ctx.job.params["old_address"]
    # Asked both ways: over TLS (a server HA Center set up presents the cluster's certificate,
    # which names its old address) and plain (one set up before TLS).
    ca = ctx.cluster.ca_certificate
    targets = [old, *([patroni_api.Endpoint(old, patroni_api.ca_context(ca))] if ca else [])]
    if any(_answers(target) for target in targets):
        raise StepFailed(
            f"the old server {old} still runs Patroni; power it off or stop Patroni there "
            f"before replacing {ctx.node.name}"
        )
    primary = current_primary(ctx)
    if primary == ctx.node:
        raise StepFailed(f"{ctx.node.name} still holds the leader key; wait for the failover")

    def old_member_gone() -> bool:
        me = next((m for m in members(ctx) if m["name"] == ctx.node.name), None)
        return me is None or me.get("host") == ctx.node.address

    ctx.wait_until(
        old_member_gone, timeout=120, interval=1, what=f"the old {ctx.node.name}'s key to expire"
    )
    return f"nothing answers at {old}; {ctx.node.name} moves to {ctx.node.address}"


def check_not_primary(ctx: StepContext) -> Verdict | str:
    primary = current_primary(ctx)
    if primary == ctx.node:
        raise StepFailed(f"{ctx.node.name} is the primary; switch over to another node first")
    return f"the primary is {primary.name}"


def stop_node(ctx: StepContext) -> Verdict | str:
    """Stop Patroni (and etcd), move the data directories aside; a dead server is skipped."""
    spec = ctx.facts["spec"]
    try:
        stopped = [daemons.stop(ctx, ctx.node, patroni_daemon(spec), timeout_s=60)]
        stopped.append(daemons.stop(ctx, ctx.node, etcd_daemon(spec)))
        moved = [
            m
            for p in (paths.data_dir(spec), paths.etcd_data_dir(spec))
            if (m := _move_aside(ctx, p))
        ]
        ctx.run(
            f"rm -f {paths.patroni_config_path(spec)} {paths.etcd_config_path(spec)}", check=True
        )
    except SSHError as exc:
        return Verdict.warn(f"unreachable ({exc}); whatever it holds stays there")
    return "; ".join(stopped) + (f"; kept {', '.join(moved)}" if moved else "")


def forget_node(ctx: StepContext) -> Verdict | str:
    name = ctx.job.params["node_name"]
    Node.objects.filter(cluster=ctx.cluster, name=name).delete()
    event_record(
        ctx.cluster, ClusterEvent.Kind.NODE_REMOVED, f"{name} was removed from the cluster"
    )
    return f"{name} is no longer part of {ctx.cluster.name}; its jobs and events stay"


def _joined(ctx: StepContext) -> Verdict | str:
    """The last step of add and replace: verify, then record the event."""
    verdict = setup_finish.verify(ctx)
    node = ctx.job.node
    if ctx.job.kind == "replace_node":
        text = f"{node.name} moved from {ctx.job.params['old_address']} to {node.address}"
        event_record(ctx.cluster, ClusterEvent.Kind.NODE_REPLACED, text)
    else:
        event_record(ctx.cluster, ClusterEvent.Kind.NODE_ADDED, f"{node.name} joined as a standby")
    return verdict


def without_leaving_node(step):
    """Remove's steps see the cluster as it will be: the spec without the leaving node."""

    def wrapper(ctx: StepContext):
        if "spec" not in ctx.facts:
            full = setup.cluster_spec(ctx.cluster)
            name = ctx.job.params["node_name"]
            ctx.facts["spec"] = dataclasses.replace(
                full, nodes=tuple(n for n in full.nodes if n.name != name)
            )
            for value in ctx.cluster.secret_values():
                ctx.log_writer.redact.add(value)
        return step(ctx)

    wrapper.__doc__ = step.__doc__
    return wrapper


JOIN_STEPS = {
    "check_login": setup.check_login,
    "install_packages": setup.install_packages,
    "install_patroni": setup_postgres.install_patroni,
    "tls_files": tls.tls_files_step,
    "firewall": firewall.firewall,
    "etcd_membership": etcd_membership,
    "patroni_configure": setup.patroni_configure,
    "backup_host": backup_steps.backup_host,
    "start_standby": join_standby,
    "haproxy": setup_finish.haproxy,
    "verify": _joined,
    # A proxy's (jobs/playbooks/proxies.py).
    "keepalived": setup_keepalived.keepalived,
    **proxies.STEPS,
}

ADD_NODE = Playbook(
    kind="add_node",
    plan=add_plan,
    steps={
        n: setup.with_spec(f) for n, f in {"check_cluster": check_cluster, **JOIN_STEPS}.items()
    },
)
REPLACE_NODE = Playbook(
    kind="replace_node",
    plan=replace_plan,
    steps={
        n: setup.with_spec(f)
        for n, f in {"check_old_server": check_old_server, **JOIN_STEPS}.items()
    },
)
REMOVE_NODE = Playbook(
    kind="remove_node",
    plan=remove_plan,
    steps={
        n: without_leaving_node(f)
        for n, f in {
            "check_not_primary": check_not_primary,
            "stop_node": stop_node,
            "etcd_membership": etcd_membership,
            "patroni_configure": setup.patroni_configure,
            "backup_host": backup_steps.backup_host,
            "haproxy": setup_finish.haproxy,
            "firewall": firewall.firewall,
            "forget_node": forget_node,
            "verify": setup_finish.verify,
            "keepalived": setup_keepalived.keepalived,
            **proxies.STEPS,
        }.items()
    },
)
