"""Setup: turn the cluster's servers into PostgreSQL + Patroni + etcd + HAProxy (DESIGN.md §2).

Every step checks the servers first and says "already …" when there is nothing to do, so a
re-run on a healthy cluster changes nothing and a re-run after a failure completes it. Nothing
is touched until every node has answered over SSH with its pinned host key.
"""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from django import db
from django.conf import settings

from clusters.inventory.services import cluster_secrets_ensure
from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import BackupPolicy, Cluster, Node
from jobs.configs import spec as paths
from jobs.configs.etcd import etcd_config
from jobs.configs.patroni import patroni_config
from jobs.configs.spec import ClusterSpec, HttpFrontend, NodeSpec, NodeTls, Secrets, TlsSpec
from jobs.errors import JobRefused
from jobs.playbooks import (
    adopt_postgres,
    application,
    backup_steps,
    daemons,
    distro_services,
    existing_postgres,
    fastpath,
    firewall,
    packages,
    setup_etcd,
    setup_finish,
    setup_keepalived,
    setup_postgres,
    tls,
    tls_convert,
)
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.monitor_sources import monitor_sources


def cluster_tls_spec(cluster: Cluster) -> TlsSpec:
    """The cluster's CA and node certificates, made or renewed first where needed."""
    cluster_tls_ensure(cluster=cluster)
    # cluster_tls_ensure saved through its own copies: read the new CA and keys back.
    cluster.refresh_from_db(fields=["ca_certificate", "ca_key", "require_client_tls"])
    return TlsSpec(
        ca_certificate=cluster.ca_certificate,
        nodes=tuple((n.name, NodeTls(n.tls_certificate, n.tls_key)) for n in cluster.nodes.all()),
        require_client_tls=cluster.require_client_tls,
    )


def cluster_spec(cluster: Cluster) -> ClusterSpec:
    """The cluster as the config generators see it, with its generated passwords and its
    certificates (made now if missing)."""
    secrets = cluster_secrets_ensure(cluster=cluster)
    return ClusterSpec(
        name=cluster.name,
        postgres_version=cluster.postgres_version,
        replication=cluster.replication,
        sync_strict=cluster.sync_strict,
        failover_profile=cluster.failover_profile,
        client_networks=tuple(cluster.client_networks),
        nodes=tuple(NodeSpec(n.name, n.address, n.kind) for n in cluster.nodes.all()),
        secrets=Secrets(
            **{
                k: secrets[k]
                for k in (
                    "superuser",
                    "replication",
                    "rewind",
                    "rest_api",
                    "haproxy_stats",
                    "monitor",
                )
            }
        ),
        http_frontends=tuple(HttpFrontend(**f) for f in cluster.http_frontends),
        application_unit=cluster.application_unit,
        adopted=(
            existing_postgres.adopted_server(cluster.adopted_from)
            if cluster.adopt_database
            else None
        ),
        tls=cluster_tls_spec(cluster),
        **backup_fields(cluster),
        virtual_ip=cluster.virtual_ip,
        vrrp_router_id=cluster.vrrp_router_id_effective if cluster.virtual_ip else 0,
    )


def backup_fields(cluster: Cluster) -> dict[str, str | bool]:
    """The spec's backup settings: the stanza and the repository host, when backups are on,
    and whether standbys are restored from the repository (it holds a backup)."""
    policy = BackupPolicy.objects.filter(cluster=cluster, enabled=True).first()
    repo = policy.repository_node() if policy else None
    if policy is None or repo is None:
        return {}
    return {
        "backup_stanza": policy.stanza,
        "backup_repo": repo.name,
        "backup_replicas": policy.holds_backup(),
    }


def node_spec(ctx: StepContext, node: Node) -> NodeSpec:
    return next(n for n in ctx.facts["spec"].nodes if n.name == node.name)


def etcd_member_nodes(cluster: Cluster, spec: ClusterSpec) -> list[Node]:
    names = {m.name for m in spec.etcd_members}
    return [n for n in cluster.nodes.all() if n.name in names]


def refuse_adopted(cluster: Cluster, params: dict, what: str) -> None:
    """An adopted Patroni cluster is the customer's own: setup or remove would replace or
    stop it. Only an explicit `force` (the cluster's name, typed) lets either run."""
    if cluster.origin == Cluster.Origin.ADOPTED and params.get("force") != cluster.name:
        raise JobRefused(
            f"{cluster.name} is an adopted Patroni cluster: {what} would replace its own "
            f'configuration. Pass force="{cluster.name}" to run it anyway.'
        )


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Check logins, install, etcd, Patroni (primary first), roles, HAProxy, verify."""
    refuse_adopted(cluster, params, "setup")
    spec = cluster_spec(cluster)  # generates missing passwords now, before any log is written
    nodes = list(cluster.nodes.all())
    db_nodes = [n for n in nodes if n.kind == Node.Kind.DATABASE]
    master = (
        next(n for n in db_nodes if n.bootstrap_primary)
        if any(n.bootstrap_primary for n in db_nodes)
        else db_nodes[0]
    )
    members = etcd_member_nodes(cluster, spec)
    adopt = cluster.adopt_database
    primary_step = (
        ("adopt_primary", "Take over the master's PostgreSQL")
        if adopt
        else ("bootstrap_primary", "Bootstrap the primary")
    )
    app_title = f"{cluster.application_unit} follows the primary" if spec.application_unit else ""
    return [
        StepSpec("prepare", "Inventory and generated passwords"),
        *[StepSpec("check_login", "SSH login and sudo", n) for n in nodes],
        *[StepSpec("install_packages", "Install packages", n) for n in nodes],
        *[
            StepSpec("install_patroni", f"Install Patroni {settings.PATRONI_VERSION}", n)
            for n in db_nodes
        ],
        *[StepSpec("application_install", app_title, n) for n in db_nodes if app_title],
        *[StepSpec("tls_files", "CA, node certificate and keys", n) for n in nodes],
        # A cluster built before TLS is converted first, node by node without a failover;
        # the etcd and Patroni steps below then find their files as they would write them.
        *(
            tls_convert.plan_steps(cluster, nodes, members)
            if tls_convert.needs_conversion(cluster, params, [*db_nodes, *members])
            else []
        ),
        *[StepSpec("etcd_configure", "Configure etcd", n) for n in members],
        *[StepSpec("etcd_start", "Start etcd", n) for n in members],
        StepSpec("etcd_verify", "etcd cluster healthy"),
        # Taking over the master's own PostgreSQL: read it again just before Patroni's
        # configs (they use its data directory), then the take-over instead of a bootstrap.
        *([StepSpec("adopt_inspect", "Inspect the master's PostgreSQL", master)] if adopt else []),
        *[StepSpec("patroni_configure", "Configure Patroni", n) for n in db_nodes],
        StepSpec(*primary_step, master),
        *[
            step
            for n in db_nodes
            if n != master
            for step in (
                *(
                    [StepSpec("set_aside_new_cluster", "Set aside the new empty cluster", n)]
                    if adopt
                    else []
                ),
                StepSpec("start_standby", "Start the standby; wait until it streams", n),
            )
        ],
        *([StepSpec("application_place", "Application on the primary only")] if app_title else []),
        StepSpec("database_roles", "Monitoring role and application database"),
        *[
            StepSpec("haproxy", "Configure and start HAProxy", n)
            for n in nodes
            if n.kind == Node.Kind.PROXY
        ],
        *[
            StepSpec("keepalived", f"Floating address {cluster.virtual_address}", n)
            for n in nodes
            if n.kind == Node.Kind.PROXY and cluster.virtual_ip
        ],
        *[StepSpec("firewall", "Host firewall (nftables)", n) for n in nodes],
        # The fenced fast path (issue 21): the agent on the witness, its peer on each database
        # node; the same steps remove them when the cluster's fast failover is off.
        *[
            StepSpec("fastpath", fastpath_title(cluster, n), n)
            for n in [cluster.proxy_node, *db_nodes]
            if n is not None
        ],
        # With a backup policy: pgBackRest configured and the archive checked (backup_steps).
        *backup_steps.plan_steps(cluster),
        StepSpec("verify", "Write through the proxy, read on every standby"),
    ]


def fastpath_title(cluster: Cluster, node: Node) -> str:
    if not cluster.fast_failover:
        return "Fast failover off"
    return "Fast-path peer" if node.kind == Node.Kind.DATABASE else "Fast-path agent (witness)"


def prepare(ctx: StepContext) -> Verdict | str:
    """Build the cluster's spec (validating timings) and mark the cluster as provisioning."""
    spec = ctx.facts["spec"]
    if ctx.cluster.state == Cluster.State.NEW:
        Cluster.objects.filter(pk=ctx.cluster.pk).update(state=Cluster.State.PROVISIONING)
    members = ", ".join(m.name for m in spec.etcd_members)
    proxies = " and ".join(p.name for p in spec.proxies)
    vip = f" behind {spec.virtual_address}" if spec.virtual_ip else ""
    return (
        f"{len(spec.database_nodes)} database nodes, proxy {proxies}{vip}, etcd on "
        f"{members}; {spec.replication} replication, {spec.failover_profile} profile"
    )


def check_login(ctx: StepContext) -> Verdict | str:
    """Every node answers with its pinned host key, and root or passwordless sudo works."""
    conn = ctx.connections.get(ctx.node)
    if not conn.is_root and not ctx.run("true", sudo=True, echo=False).ok:
        raise StepFailed(f"{ctx.node.credential.username} cannot use sudo without a password")
    manager = daemons.init_system(ctx, ctx.node)
    return f"logged in as {ctx.node.credential.username}; services run by {manager}"


def install_packages(ctx: StepContext) -> Verdict | str:
    """Install every node's packages at once (apt on three servers one after another took
    three times as long); this node's step reports this node's outcome.

    The first of these steps in a run starts all the installs, each in a thread with its own
    node's step context and SSH connection, and waits for them; the later steps read their
    result. A retried run starts them again, and what is already installed is left alone.
    """
    outcomes = ctx.facts.get("installs")
    if outcomes is None or ctx.node.pk not in outcomes:
        steps = ctx.job.steps.filter(name="install_packages").select_related("node")
        contexts = [dataclasses.replace(ctx, step=step) for step in steps]
        with ThreadPoolExecutor(max_workers=len(contexts)) as pool:
            futures = {c.node.pk: pool.submit(_install_in_thread, c) for c in contexts}
        outcomes = ctx.facts["installs"] = {pk: f.result() for pk, f in futures.items()}
    outcome = outcomes[ctx.node.pk]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _install_in_thread(ctx: StepContext) -> str | Exception:
    try:
        return install_on_node(ctx)
    except Exception as exc:  # reported by the node's own step, like any step's failure
        return exc
    finally:
        db.connection.close()  # the thread's own database connection


def install_on_node(ctx: StepContext) -> str:
    """Install what is missing with apt (refreshing its package lists when they are missing or
    old), with the distribution's competing services masked first so the install cannot start
    them; a PostgreSQL cluster the install started on :5432 is stopped."""
    spec = ctx.facts["spec"]
    masked = distro_services.mask(ctx, distro_services.competing_units(spec, ctx.node))
    verdict = packages.install(ctx, packages.wanted(spec, ctx.node))
    if ctx.cluster.adopt_database and ctx.node == existing_postgres.master_node(ctx.cluster):
        verdict += "; the PostgreSQL already running here is left alone (setup takes it over)"
    elif ctx.node.kind == Node.Kind.DATABASE:
        stopped = distro_services.stop_distribution_postgres(ctx)
        verdict += f"; stopped {', '.join(stopped)}" if stopped else ""
    return verdict + (f"; masked {', '.join(masked)}" if masked else "")


def etcd_configure(ctx: StepContext) -> Verdict | str:
    spec = ctx.facts["spec"]
    changed = ctx.ensure_file(
        paths.etcd_config_path(spec), etcd_config(spec, node_spec(ctx, ctx.node)), mode=0o644
    )
    data = paths.etcd_data_dir(spec)
    ctx.run(f"mkdir -p {data} && chown etcd:etcd {data} && chmod 700 {data}", check=True)
    return "etcd configuration written" if changed else "etcd already configured"


def patroni_configure(ctx: StepContext) -> Verdict | str:
    """Write the node's Patroni YAML (passwords inside: mode 0600, owner postgres)."""
    spec = dataclasses.replace(ctx.facts["spec"], monitor_sources=monitor_sources(ctx))
    parent = paths.data_dir(spec).rsplit("/", 1)[0]
    ctx.run(f"mkdir -p /etc/patroni {parent} && chown postgres:postgres {parent}", check=True)
    changed = ctx.ensure_file(
        paths.patroni_config_path(spec),
        patroni_config(spec, node_spec(ctx, ctx.node)),
        mode=0o600,
        owner="postgres",
        group="postgres",
    )
    verdict = "Patroni configuration written" if changed else "Patroni already configured"
    if changed and daemons.pid(ctx, ctx.node, setup_postgres.patroni_daemon(spec)):
        # Asked as it speaks now (tls_active unchanged yet); the reload applies the new REST
        # TLS settings within a loop.
        setup_postgres.patroni_reload(ctx, ctx.node)
        verdict = "Patroni configuration updated and reloaded"
    if spec.tls is not None:
        # From here on this node's Patroni (running or about to start) and its etcd (set up
        # before) speak TLS.
        tls.tls_mark_active(ctx, ctx.node)
    return verdict


def with_spec(step):
    """Every step reads the spec from facts; build it once per run, however the run resumes."""

    def wrapper(ctx: StepContext):
        if "spec" not in ctx.facts:
            # An adopted cluster has no spec of ours (its own layout; perhaps no proxy): its
            # steps read jobs.playbooks.layout instead.
            adopted = ctx.cluster.origin == Cluster.Origin.ADOPTED
            ctx.facts["spec"] = None if adopted else cluster_spec(ctx.cluster)
            if ctx.facts["spec"] is not None and ctx.job.params.get("tls") is False:
                # A cluster built the way HA Center did before TLS: only the tests that
                # convert one ask for it (the API does not pass this parameter on).
                ctx.facts["spec"] = dataclasses.replace(ctx.facts["spec"], tls=None)
            for value in ctx.cluster.secret_values():
                ctx.log_writer.redact.add(value)
        return step(ctx)

    wrapper.__doc__ = step.__doc__
    return wrapper


STEPS = {
    "prepare": prepare,
    "check_login": check_login,
    "install_packages": install_packages,
    "install_patroni": setup_postgres.install_patroni,
    "tls_files": tls.tls_files_step,
    "etcd_configure": etcd_configure,
    "etcd_start": setup_etcd.etcd_start,
    "etcd_verify": setup_etcd.etcd_verify,
    "patroni_configure": patroni_configure,
    "bootstrap_primary": setup_postgres.bootstrap_primary,
    "adopt_inspect": adopt_postgres.adopt_inspect,
    "adopt_primary": adopt_postgres.adopt_primary,
    "set_aside_new_cluster": adopt_postgres.set_aside_new_cluster,
    "start_standby": setup_postgres.start_standby,
    "application_install": application.application_install,
    "application_place": application.application_place,
    "database_roles": setup_finish.database_roles,
    "haproxy": setup_finish.haproxy,
    "keepalived": setup_keepalived.keepalived,
    "firewall": firewall.firewall,
    "fastpath": fastpath.fastpath,
    **tls_convert.STEPS,
    **backup_steps.STEPS,
    "verify": setup_finish.verify,
}

PLAYBOOK = Playbook(
    kind="setup", plan=plan, steps={name: with_spec(fn) for name, fn in STEPS.items()}
)
