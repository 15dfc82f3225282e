"""The steps of pgBackRest's configuration that setup and configure_backups share (issue 22
part 1): pgBackRest on a host with its TLS server, the stanza and the archive's check, and the
repository's info for the cluster page. Setup runs them when the cluster has a backup policy
before it is set up (so WAL is archived from its first minutes); configure_backups
(jobs/playbooks/backups.py) on a cluster whose backups were turned on later. Neither imports
the other's playbook: this module sits below both.
"""

import json
import shlex

from django.utils import timezone

from clusters.alerts.events import event_record
from clusters.models import BackupPolicy, Cluster, ClusterEvent, ClusterSecret, Node
from jobs import patroni_api
from jobs.configs import pgbackrest as conf
from jobs.configs import spec as paths
from jobs.errors import JobRefused
from jobs.playbooks import backup_info as info_text
from jobs.playbooks import backup_tls, daemons, packages
from jobs.playbooks.base import StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.setup_postgres import members
from jobs.playbooks.sql import psql


def plan_steps(cluster: Cluster) -> list[StepSpec]:
    """Setup's: the hosts, the stanza and the info, or none when the cluster has no policy on
    (or nowhere to keep backups). Setup wrote Patroni's file with the archive settings and
    started PostgreSQL with them: nothing needs a restart."""
    policy = BackupPolicy.objects.filter(cluster=cluster, enabled=True).first()
    repo = policy.repository_node() if policy else None
    if repo is None:
        return []
    return [*host_steps(cluster, repo), *check_steps(repo)]


def policy_of(cluster: Cluster) -> BackupPolicy:
    """The cluster's policy; JobRefused when backups are not turned on."""
    policy = BackupPolicy.objects.filter(cluster=cluster, enabled=True).first()
    if policy is None:
        raise JobRefused(
            f"{cluster.name} has no backups turned on; set them with "
            f"PUT /api/v1/clusters/{cluster.pk}/backups/ first"
        )
    if policy.repository_node() is None:
        raise JobRefused(f"{cluster.name} has no proxy and no repository host was chosen")
    return policy


def host_steps(cluster: Cluster, repo: Node) -> list[StepSpec]:
    """pgBackRest on the repository host, then each database node."""
    db_nodes = list(cluster.database_nodes.order_by("name"))
    hosts = [repo] + [n for n in db_nodes if n.pk != repo.pk]
    return [StepSpec("backup_host", "Install and configure pgBackRest", n) for n in hosts]


def check_steps(repo: Node) -> list[StepSpec]:
    """The stanza, the archive's check, and the repository's info."""
    return [
        StepSpec("backup_stanza", "Create the stanza and check the archive", repo),
        StepSpec("backup_info", "Read the repository", repo),
    ]


def layout_of(ctx: StepContext) -> conf.BackupLayout:
    """The layout from the spec and the policy; the passphrase is redacted from the log."""
    spec = ctx.facts["spec"]
    policy = policy_of(ctx.cluster)
    repo = policy.repository_node()
    cipher = ClusterSecret.objects.get(cluster=ctx.cluster, name=ClusterSecret.Name.BACKUP_CIPHER)
    ctx.log_writer.redact.add(cipher.value)
    return conf.BackupLayout(
        stanza=policy.stanza,
        repo_name=repo.name,
        repo_address=repo.address,
        repo_path=policy.repo_path,
        retention_full=policy.retention_full,
        data_dir=paths.data_dir(spec),
        databases=tuple(conf.BackupHost(n.name, n.address) for n in spec.database_nodes),
        cipher_pass=cipher.value,
    )


def server_user(node: Node) -> str:
    """Who runs pgBackRest on the node: postgres on database nodes (it reads the data
    directory), a `pgbackrest` system user on a host without PostgreSQL."""
    return "postgres" if node.kind == Node.Kind.DATABASE else conf.REPO_USER


def server_daemon(node: Node) -> daemons.Daemon:
    return daemons.Daemon(
        name="pgbackrest",
        argv=("/usr/bin/pgbackrest", f"--config={conf.CONFIG_FILE}", "server"),
        user=server_user(node),
        description="pgBackRest TLS server",
    )


def as_user(node: Node, command: str) -> str:
    """`command` as the node's pgBackRest user, from / (its home may not be readable)."""
    return f"cd / && runuser -u {shlex.quote(server_user(node))} -- {command}"


def backup_host(ctx: StepContext) -> Verdict | str:
    """Package, user, directories, certificate, config, server; each only when missing or
    different, and the server restarted only when its config or certificate changed."""
    node = ctx.node
    layout = layout_of(ctx)
    is_repo = node.name == layout.repo_name
    installed = packages.install(ctx, [packages.BACKUP_PACKAGE])
    user = shlex.quote(server_user(node))
    if server_user(node) == conf.REPO_USER:
        ctx.run(
            f"id -u {user} >/dev/null 2>&1 || useradd --system --home-dir "
            f"{shlex.quote(layout.repo_path)} --shell /usr/sbin/nologin {user}",
            check=True,
        )
    dirs = [conf.LOG_DIR] + ([layout.repo_path] if is_repo else [])
    ctx.run(
        f"install -d -m 0755 {conf.CONFIG_DIR} && "
        + " && ".join(f"install -d -m 0750 -o {user} -g {user} {shlex.quote(d)}" for d in dirs),
        check=True,
    )
    cert_changed = backup_tls.certificate_put(ctx, node, server_user(node))
    text = conf.repository_config(layout) if is_repo else conf.database_config(layout)
    changed = ctx.ensure_file(conf.CONFIG_FILE, text, mode=0o640, owner="root", group=user)
    daemon = server_daemon(node)
    if (changed or cert_changed) and daemons.pid(ctx, node, daemon):
        started = daemons.restart(ctx, node, daemon)
    else:
        started = daemons.start(ctx, node, daemon)
    role = "repository" if is_repo else "database node"
    config = "config written" if changed else "config in place"
    return f"{role}: {installed}; {config}; {started}"


def pgbackrest(ctx: StepContext, args: str, **kwargs) -> list[str]:
    """Run pgBackRest as the node's user with its config; stdout lines (StepFailed on error)."""
    lines: list[str] = []
    result = ctx.run(
        as_user(ctx.node, f"pgbackrest --config={conf.CONFIG_FILE} {args}"),
        collect=lines,
        **kwargs,
    )
    if not result.ok:
        # ERROR says what failed; the WARN lines before it often say why ("unable to check
        # pg1: ...").
        said = [ln for ln in lines + result.stderr_tail if "ERROR" in ln or "WARN" in ln]
        said = said or result.stderr_tail
        raise StepFailed(f"pgbackrest {args.split()[-1]} failed: {' | '.join(said[-3:])[-600:]}")
    return lines


def backup_stanza(ctx: StepContext) -> Verdict | str:
    """stanza-create (pgBackRest tells an existing, valid stanza apart itself), then check."""
    stanza = shlex.quote(policy_of(ctx.cluster).stanza)
    created = pgbackrest(ctx, f"--stanza={stanza} stanza-create", timeout=300)
    pgbackrest(ctx, f"--stanza={stanza} check", timeout=300)
    existed = any("already exists" in line for line in created)
    return f"stanza {stanza} {'already there' if existed else 'created'}; check passed"


def backup_info(ctx: StepContext) -> Verdict | str:
    """Read `pgbackrest info` and the primary's archiver; keep them on the policy."""
    policy = policy_of(ctx.cluster)
    lines = pgbackrest(
        ctx, f"--stanza={shlex.quote(policy.stanza)} --output=json info", echo=False, timeout=120
    )
    try:
        summary = info_text.summarize(json.loads("\n".join(lines)), policy.stanza)
    except (ValueError, KeyError, TypeError) as exc:
        raise StepFailed(f"pgbackrest info said something unreadable: {exc}") from None
    primary = primary_node(ctx)
    if primary is not None:
        row = psql(ctx, primary, info_text.ARCHIVER_SQL, echo=False, check=False)
        summary["archiver"] = info_text.parse_archiver(row[0] if row else "")
    BackupPolicy.objects.filter(pk=policy.pk).update(info=summary, info_read=timezone.now())
    said = info_text.describe(summary)
    trouble = info_text.archive_trouble(summary.get("archiver") or {})
    if trouble:
        event_record(
            ctx.cluster,
            ClusterEvent.Kind.ARCHIVE_BEHIND,
            f"WAL archive of {ctx.cluster.name} falls behind: {trouble}",
            severity=ClusterEvent.Severity.WARNING,
            node=primary.name if primary else "",
        )
        return Verdict.warn(said)
    return said


def primary_node(ctx: StepContext) -> Node | None:
    leader = patroni_api.leader(members(ctx))
    if leader is None:
        return None
    return ctx.cluster.nodes.filter(name=leader["name"]).first()


STEPS = {"backup_host": backup_host, "backup_stanza": backup_stanza, "backup_info": backup_info}
