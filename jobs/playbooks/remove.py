"""Remove a cluster from its servers: stop its services, move data directories aside (never
delete them), take away the configuration files setup wrote and the host firewall's table and
unit, and the node's TLS key and certificates (the CA stays in the console). The inventory stays,
marked `new`, so the cluster can be set up again.

With backups: pgBackRest's server, unit, config and certificate go from every host that had
them; the repository holds the customer's backups, so it is moved aside (renamed with the
job's time, like the data directories), never deleted, and the step says where."""

import shlex

from clusters.models import BackupPolicy, Cluster, Node, NodeStatus
from jobs.configs import pgbackrest as backup_conf
from jobs.configs import spec as paths
from jobs.errors import JobRefused
from jobs.playbooks import (
    application,
    backup_steps,
    daemons,
    distro_services,
    firewall,
    setup_keepalived,
)
from jobs.playbooks.base import Playbook, StepContext, StepSpec, Verdict
from jobs.playbooks.preflight import listener
from jobs.playbooks.setup import cluster_spec as build_spec
from jobs.playbooks.setup import etcd_member_nodes, refuse_adopted, with_spec
from jobs.playbooks.setup_etcd import etcd_daemon
from jobs.playbooks.setup_finish import haproxy_daemon
from jobs.playbooks.setup_postgres import patroni_daemon


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Refused unless `confirm` repeats the cluster's name: this stops a production database."""
    if params.get("confirm") != cluster.name:
        raise JobRefused(
            f"removing {cluster.name} stops its databases; repeat the cluster's name in "
            "'confirm' to go ahead"
        )
    refuse_adopted(cluster, params, "remove")
    spec = build_spec(cluster)
    nodes = list(cluster.nodes.all())
    db_nodes = [n for n in nodes if n.kind == Node.Kind.DATABASE]
    return [
        *[
            StepSpec("stop_keepalived", "Stop keepalived (the floating address)", n)
            for n in nodes
            if n.kind == Node.Kind.PROXY and cluster.virtual_ip
        ],
        *[StepSpec("stop_haproxy", "Stop HAProxy", n) for n in nodes if n.kind == Node.Kind.PROXY],
        *[
            StepSpec("application_release", f"{cluster.application_unit}: callback removed", n)
            for n in db_nodes
            if cluster.application_unit
        ],
        *[StepSpec("stop_patroni", "Stop Patroni and PostgreSQL", n) for n in db_nodes],
        *[StepSpec("stop_etcd", "Stop etcd", n) for n in etcd_member_nodes(cluster, spec)],
        *[
            StepSpec("backup_remove", "Remove pgBackRest (the repository is kept aside)", n)
            for n in backup_hosts(cluster)
        ],
        *[StepSpec("firewall_remove", "Remove the host firewall", n) for n in nodes],
        *[StepSpec("tls_remove", "Remove the TLS key and certificates", n) for n in nodes],
        StepSpec("forget", "Mark the cluster as not set up"),
    ]


def _stamp(ctx: StepContext) -> str:
    return ctx.job.created.strftime("%Y%m%dT%H%M%SZ")


def _move_aside(ctx: StepContext, path: str) -> str | None:
    """Rename `path` to `path.removed-<job time>` if it exists; the new name, or None."""
    target = f"{path}.removed-{_stamp(ctx)}"
    moved = ctx.run(
        f"[ -e {shlex.quote(path)} ] && mv -T {shlex.quote(path)} {shlex.quote(target)}"
    )
    return target if moved.ok else None


def _listeners(ctx: StepContext, ports: list[int]) -> str:
    """Who still listens on the ports (", "-joined "port by process"), "" when nobody does."""
    held = {
        f"{port} by {process}"
        for port, process in map(listener, ctx.output("ss -Hltnp", sudo=True, echo=False))
        if port in ports
    }
    return ", ".join(sorted(held))


def _stopped(ctx: StepContext, verdict: str, ports: list[int]) -> Verdict | str:
    """The verdict, or a warning naming whoever still holds one of the node's ports."""
    held = _listeners(ctx, ports)
    return Verdict.warn(f"{verdict}; still listening: {held}") if held else verdict


def stop_haproxy(ctx: StepContext) -> Verdict | str:
    verdict = daemons.remove(ctx, ctx.node, haproxy_daemon())
    moved = _move_aside(ctx, paths.HAPROXY_CONFIG)
    verdict += f"; config kept as {moved}" if moved else ""
    unmasked = distro_services.unmask(ctx, ["haproxy.service"])
    verdict += f"; {', '.join(unmasked)} unmasked (left stopped)" if unmasked else ""
    ports = [paths.POSTGRES_PORT, paths.REPLICA_PORT, paths.STATS_PORT]
    ports += [f["listen_port"] for f in ctx.cluster.http_frontends]
    return _stopped(ctx, verdict, ports)


def stop_patroni(ctx: StepContext) -> Verdict | str:
    spec = ctx.facts["spec"]
    verdict = daemons.remove(ctx, ctx.node, patroni_daemon(spec), timeout_s=60)
    moved = _move_aside(ctx, paths.data_dir(spec))
    ctx.run(f"rm -f {shlex.quote(paths.patroni_config_path(spec))}", check=True)
    verdict += f"; data moved to {moved}" if moved else "; no data directory"
    return _stopped(ctx, verdict, [paths.POSTGRES_PORT, paths.PATRONI_PORT])


def stop_etcd(ctx: StepContext) -> Verdict | str:
    spec = ctx.facts["spec"]
    verdict = daemons.remove(ctx, ctx.node, etcd_daemon(spec))
    moved = _move_aside(ctx, paths.etcd_data_dir(spec))
    ctx.run(f"rm -f {shlex.quote(paths.etcd_config_path(spec))}", check=True)
    verdict += f"; data moved to {moved}" if moved else "; no data directory"
    unmasked = distro_services.unmask(ctx, ["etcd.service"])
    verdict += f"; {', '.join(unmasked)} unmasked (left stopped)" if unmasked else ""
    return _stopped(ctx, verdict, [paths.ETCD_CLIENT_PORT, paths.ETCD_PEER_PORT])


def backup_hosts(cluster: Cluster) -> list[Node]:
    """The hosts pgBackRest was configured on: the database nodes and the repository host,
    when the cluster has a backup policy (on or off: turned off later, its files remain)."""
    policy = BackupPolicy.objects.filter(cluster=cluster).first()
    repo = policy.repository_node() if policy else None
    if repo is None:
        return []
    db_nodes = list(cluster.database_nodes.order_by("name"))
    return [repo] + [n for n in db_nodes if n.pk != repo.pk]


def backup_remove(ctx: StepContext) -> Verdict | str:
    """Stop and remove `hacenter-pgbackrest`, delete its config and certificate; on the
    repository host, rename the repository to `<path>.removed-<job time>` (never deleted: the
    backups are the customer's). pgBackRest's logs and the package stay."""
    verdict = daemons.remove(ctx, ctx.node, backup_steps.server_daemon(ctx.node))
    owned = (backup_conf.CONFIG_FILE, backup_conf.CERT_FILE, backup_conf.KEY_FILE)
    files = " ".join(shlex.quote(f) for f in owned)
    ctx.run(f"rm -f {files}", check=True)
    verdict += f"; {backup_conf.CONFIG_FILE} and its certificate removed"
    policy = BackupPolicy.objects.filter(cluster=ctx.cluster).first()
    if policy is not None and policy.repository_node() == ctx.node:
        moved = _move_aside(ctx, policy.repo_path)
        if moved:
            ctx.log(
                f"the backup repository of {ctx.cluster.name} is kept in {moved} on "
                f"{ctx.node.name}; delete it yourself when its backups are no longer wanted",
                host=ctx.node.name,
            )
            verdict += f"; repository kept as {moved}"
        else:
            verdict += f"; no repository at {policy.repo_path}"
    return _stopped(ctx, verdict, [backup_conf.TLS_PORT])


def tls_remove(ctx: StepContext) -> Verdict | str:
    """The node's key is a secret of a cluster that no longer runs there: deleted, not kept
    aside (setup writes it again from the console's copy)."""
    removed = ctx.run(
        f"[ -d {shlex.quote(paths.TLS_DIR)} ] && rm -rf {shlex.quote(paths.TLS_DIR)}", sudo=True
    )
    return f"{paths.TLS_DIR} removed" if removed.ok else f"no {paths.TLS_DIR}"


def forget(ctx: StepContext) -> Verdict | str:
    NodeStatus.objects.filter(node__cluster=ctx.cluster).delete()
    # Nothing speaks TLS there any more; the next setup marks each node again.
    Node.objects.filter(cluster=ctx.cluster).update(tls_active=False)
    # The state's reasons and its start go too: a cluster set up again starts a new history.
    Cluster.objects.filter(pk=ctx.cluster.pk).update(
        state=Cluster.State.NEW, maintenance=False, state_reasons=[], state_since=None
    )
    return "the cluster is defined but not set up; its old data stays on the servers"


PLAYBOOK = Playbook(
    kind="remove_cluster",
    plan=plan,
    steps={
        name: with_spec(fn)
        for name, fn in {
            "stop_keepalived": setup_keepalived.keepalived_remove,
            "stop_haproxy": stop_haproxy,
            "application_release": application.application_release,
            "stop_patroni": stop_patroni,
            "stop_etcd": stop_etcd,
            "backup_remove": backup_remove,
            "firewall_remove": firewall.firewall_remove,
            "tls_remove": tls_remove,
            "forget": forget,
        }.items()
    },
    keep_going=True,  # stop everything that can be stopped even when one node is gone
)
