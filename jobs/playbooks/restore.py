"""Point-in-time recovery (issue 22 part 2): `restore_point` and `restore`.

restore_point: `pg_create_restore_point(name)` on the primary, then a WAL switch, and the
step waits until the segment holding the point is in the archive (a point not yet archived
cannot be restored to).

restore: the repository's backups and WAL onto a server that is NOT a member of any cluster
the console knows (a new host; the admin types its address to confirm), recovered to a
restore point, a time, or the end of the archive, and started there as a standalone PostgreSQL
(not under Patroni) that is promoted at the target. The target reaches the repository's TLS
server with a certificate the console issues now from the cluster's CA (CN
RESTORE_CLIENT_CN, which the repository lets in); no key of a member goes to it.

The restored server is started with settings that undo what only made sense in the cluster
(Patroni wrote them into the data directory, and the backup carries them): its own addresses,
no TLS files of a member, and above all no archiving, so the copy never pushes its WAL into
the cluster's archive.

The restore drill (jobs.playbooks.restore_drill) runs the same preparation, restore and
recovery (prepare_server, restore_into, recover) with its own data directory and port.
"""

import ipaddress
import re
import shlex

from clusters.inventory import outside_servers
from clusters.models import Cluster, Node
from jobs.configs import firewall as fw
from jobs.configs import pgbackrest as conf
from jobs.configs import spec as paths
from jobs.errors import JobRefused
from jobs.playbooks import backup_steps, backup_tls, distro_services, packages
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.setup import with_spec
from jobs.playbooks.sql import psql, quote_literal

POINT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,63}")
TARGET_TYPES = ("name", "time", "latest")
# A restored server recovers for as long as there is WAL to replay.
RECOVERY_TIMEOUT_S = 6 * 3600
RESTORE_TIMEOUT_S = 12 * 3600
ARCHIVE_WAIT_S = 120


# --- restore point ----------------------------------------------------------------------


def plan_restore_point(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """One step on whichever node is primary when it runs."""
    backup_steps.policy_of(cluster)
    name = params.get("name", "")
    if not isinstance(name, str) or not POINT_NAME.fullmatch(name):
        raise JobRefused("a restore point needs a name: 1-63 letters, digits, '_', '-' or '.'")
    if node is not None:
        raise JobRefused("a restore point is made on the primary; name no node")
    return [StepSpec("restore_point_create", f"Create restore point {name}")]


def restore_point_create(ctx: StepContext) -> Verdict | str:
    """Create the point, switch WAL, wait until that segment is archived."""
    name = ctx.job.params["name"]
    primary = backup_steps.primary_node(ctx)
    if primary is None:
        raise StepFailed("no primary at the moment; make the restore point once there is one")
    lsn = psql(ctx, primary, f"SELECT pg_create_restore_point({quote_literal(name)});")[0]
    segment = archive_wait(ctx, primary, lsn)
    return f"restore point {name} at {lsn} on {primary.name}; segment {segment} archived"


def archive_wait(ctx: StepContext, primary: Node, lsn: str) -> str:
    """Switch WAL on the primary and wait until the segment holding `lsn` is archived (a point
    not yet archived cannot be restored to); that segment's name."""
    segment = psql(ctx, primary, f"SELECT pg_walfile_name('{lsn}'::pg_lsn);", echo=False)[0]
    psql(ctx, primary, "SELECT pg_switch_wal();", echo=False)

    def archived() -> bool:
        last = psql(
            ctx,
            primary,
            "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;",
            echo=False,
        )
        # Same timeline: names compare as numbers; a later segment means this one went first.
        return bool(last) and last[0][:24] >= segment

    ctx.wait_until(archived, timeout=ARCHIVE_WAIT_S, what=f"segment {segment} to be archived")
    return segment


# --- restore -----------------------------------------------------------------------------


def _target_node(cluster: Cluster, params: dict) -> Node:
    """The target server as an unsaved Node (never in the inventory), its host key pinned
    from an earlier scan like a new node's; JobRefused when something is missing or wrong."""
    address = params.get("address", "")
    if not address:
        raise JobRefused("a restore needs the target server's address")
    if reason := outside_servers.member_refusal(address):
        raise JobRefused(reason)
    if params.get("confirm") != address:
        raise JobRefused(f'type the target\'s address to confirm: confirm="{address}"')
    try:
        return outside_servers.outside_server(
            cluster,
            address=address,
            port=params.get("ssh_port", 22),
            credential_id=params.get("credential"),
            fingerprint=params.get("host_key_fingerprint", ""),
            name="restore-target",
        )
    except outside_servers.NotAnOutsideServer as exc:
        raise JobRefused(f"a restore: {exc}") from None


def plan_restore(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Prepare the target, restore, recover and start; refused onto any cluster's member."""
    backup_steps.policy_of(cluster)
    if node is not None:
        raise JobRefused("a restore goes onto a new server (address), never a node of the cluster")
    _target_node(cluster, params)
    kind = params.get("target_type", "latest")
    if kind not in TARGET_TYPES:
        raise JobRefused(f"target_type {kind!r} is not one of {', '.join(TARGET_TYPES)}")
    if kind != "latest" and not params.get("target"):
        raise JobRefused(f"a restore to a {kind} needs `target`")
    if kind == "name" and not POINT_NAME.fullmatch(str(params["target"])):
        raise JobRefused("a restore point's name is 1-63 letters, digits, '_', '-' or '.'")
    if kind == "time" and not re.fullmatch(r"[0-9: .+-]{10,40}", str(params["target"])):
        raise JobRefused("a time is like 2026-12-05 07:30:00+00")
    address = params["address"]
    return [
        StepSpec("restore_prepare", f"Prepare {address}: packages, certificate, config"),
        StepSpec("restore_files", f"Restore the backup onto {address}"),
        StepSpec("restore_recover", "Start PostgreSQL and recover to the target"),
    ]


def on_server(make_node):
    """Run a step with a server outside the inventory as its node (the step row has none):
    `make_node(ctx)` builds it once per run."""

    def decorate(step):
        def wrapper(ctx: StepContext) -> Verdict | str:
            if "target" not in ctx.facts:
                ctx.facts["target"] = make_node(ctx)
            ctx.step.node = ctx.facts["target"]
            try:
                return step(ctx)
            finally:
                ctx.step.node = None

        wrapper.__doc__ = step.__doc__
        wrapper.__name__ = step.__name__
        return wrapper

    return decorate


# The restore job's target: the server its parameters name.
on_target = on_server(lambda ctx: _target_node(ctx.cluster, ctx.job.params))


def restored_dir(ctx: StepContext) -> str:
    spec = ctx.facts["spec"]
    return f"/var/lib/postgresql/{spec.postgres_version}/restored-{spec.name}"


def prepare_server(ctx: StepContext, data_dir: str) -> str:
    """PostgreSQL (the cluster's major) and pgBackRest from apt; Debian's own cluster stopped;
    the CA, a client certificate from the cluster's CA and the config (restoring into
    `data_dir`) in place; the repository reached. What was done, in words."""
    spec = ctx.facts["spec"]
    installed = packages.install(ctx, [f"postgresql-{spec.postgres_version}", "pgbackrest"])
    stopped = distro_services.stop_distribution_postgres(ctx)
    layout = backup_steps.layout_of(ctx)
    ctx.run(f"install -d -m 0755 {paths.TLS_DIR} {conf.CONFIG_DIR}", check=True)
    ctx.run(f"install -d -m 0750 -o postgres -g postgres {conf.LOG_DIR}", check=True)
    cluster = Cluster.objects.get(pk=ctx.cluster.pk)
    ctx.connections.get(ctx.node).upload(
        paths.TLS_CA_FILE, cluster.ca_certificate.encode(), mode=0o644
    )
    # A client certificate the repository lets in (RESTORE_CLIENT_CN), none of a member's.
    backup_tls.certificate_put(ctx, ctx.node, "postgres", conf.RESTORE_CLIENT_CN)
    text = conf.restore_config(layout, data_dir)
    ctx.ensure_file(conf.CONFIG_FILE, text, mode=0o640, owner="root", group="postgres")
    let_in = repository_let_in(ctx, add=True)
    # Reaches the repository: `info` through its TLS server, with the new certificate.
    ctx.run(
        backup_steps.as_user(ctx.node, f"pgbackrest --stanza={shlex.quote(layout.stanza)} info"),
        check=True,
    )
    return (
        f"{installed}"
        + (f"; stopped {', '.join(stopped)}" if stopped else "")
        + (f"; {let_in}" if let_in else "")
    )


def repository_let_in(ctx: StepContext, *, add: bool) -> str:
    """Let the server through the repository host's firewall to pgBackRest's port for this
    restore (the table lets the cluster's hosts only), or take it out again: an element of
    the table's set, which the next firewall job's reload drops too. "" when the host has no
    table of ours (the cluster's firewall is off)."""
    repo = backup_steps.policy_of(ctx.cluster).repository_node()
    address = ipaddress.ip_address(ctx.node.address)
    family = f"{fw.BACKUP_RULE}_v{address.version}"
    verb = "add" if add else "delete"
    where = f"{fw.FAMILY} {fw.TABLE} {family}"
    command = (
        f"nft list set {where} >/dev/null 2>&1 || exit 3; "
        f"nft {verb} element {where} {{ {address} }}"
    )
    result = ctx.run(command, node=repo, echo=False)
    if result.exit_status == 3:
        return ""
    if add and not result.ok and "exists" not in " ".join(result.stderr_tail):
        raise StepFailed(f"could not let {address} through {repo.name}'s firewall")
    if add:
        return f"{repo.name}'s firewall lets {address} reach pgBackRest for this restore"
    return f"{address} no longer let through {repo.name}'s firewall"


def restore_prepare(ctx: StepContext) -> Verdict | str:
    """PostgreSQL (the cluster's major) and pgBackRest from apt; Debian's own cluster stopped;
    the CA, a client certificate from the cluster's CA and the config in place."""
    return prepare_server(ctx, restored_dir(ctx))


def _target_args(params: dict) -> str:
    kind = params.get("target_type", "latest")
    if kind == "latest":
        return "--type=default"
    # promote: the copy becomes a writable server at the target instead of pausing there.
    return f"--type={kind} --target={shlex.quote(str(params['target']))} --target-action=promote"


def holds_data(ctx: StepContext, data_dir: str) -> bool:
    """Whether `data_dir` on the step's server already holds a data directory."""
    data = shlex.quote(data_dir)
    return bool(ctx.output(f"[ -e {data}/PG_VERSION ] && echo yes || true", sudo=True, echo=False))


def restore_into(ctx: StepContext, data_dir: str, target_args: str) -> tuple[str, list[str]]:
    """`pgbackrest restore` into `data_dir`, which must not hold a data directory (the
    callers decide what to do about one); the restored size and pgBackRest's lines."""
    data = shlex.quote(data_dir)
    ctx.run(f"install -d -m 0700 -o postgres -g postgres {data}", check=True)
    stanza = shlex.quote(ctx.facts["spec"].name)
    lines: list[str] = []
    result = ctx.run(
        backup_steps.as_user(ctx.node, f"pgbackrest --stanza={stanza} {target_args} restore"),
        timeout=RESTORE_TIMEOUT_S,
        collect=lines,
    )
    if not result.ok:
        said = [ln for ln in lines + result.stderr_tail if "ERROR" in ln] or result.stderr_tail
        raise StepFailed(f"pgbackrest restore failed: {' | '.join(said[-2:])[-400:]}")
    size = ctx.output(f"du -sh {data} | cut -f1", sudo=True, echo=False)
    return (size[0] if size else "?"), lines


def restore_files(ctx: StepContext) -> Verdict | str:
    """`pgbackrest restore` into an empty directory (never over data already there)."""
    if holds_data(ctx, restored_dir(ctx)):
        raise StepFailed(
            f"{restored_dir(ctx)} already holds a data directory on {ctx.node.address}; "
            "move it aside first (a restore never overwrites one)"
        )
    size, _ = restore_into(ctx, restored_dir(ctx), _target_args(ctx.job.params))
    return f"restored {size} into {restored_dir(ctx)}"


def start_options(ctx: StepContext, data: str, port: int = paths.POSTGRES_PORT) -> str:
    """-c settings that override what the cluster's Patroni wrote into the data directory."""
    settings = {
        "listen_addresses": f"{ctx.node.address},127.0.0.1",
        "port": str(port),
        "unix_socket_directories": paths.SOCKET_DIR,
        "hba_file": f"{data}/pg_hba.conf",
        "ident_file": f"{data}/pg_ident.conf",
        "ssl": "off",
        # The copy must never push WAL into the cluster's archive.
        "archive_mode": "off",
        "hot_standby": "on",
    }
    return " ".join(f"-c {k}={v}" for k, v in settings.items())


def pg_ctl(ctx: StepContext) -> str:
    return f"{paths.bin_dir(ctx.facts['spec'].postgres_version)}/pg_ctl"


def recover(ctx: StepContext, data: str, port: int) -> None:
    """Start the restored server in `data` on `port` (pg_ctl, as postgres) unless it runs, and
    wait until it has replayed to the target and been promoted; the replay position is logged
    as it moves."""
    running = ctx.run(
        backup_steps.as_user(ctx.node, f"{pg_ctl(ctx)} -D {shlex.quote(data)} status")
    )
    if not running.ok:
        ctx.run(
            backup_steps.as_user(
                ctx.node,
                f"{pg_ctl(ctx)} -D {shlex.quote(data)} -l {shlex.quote(data + '.log')} -w -t 600 "
                f"-o {shlex.quote(start_options(ctx, data, port))} start",
            ),
            timeout=900,
            check=True,
        )
    seen: list[str] = []

    def promoted() -> bool:
        row = psql(
            ctx,
            ctx.node,
            "SELECT pg_is_in_recovery() || ' ' || coalesce(pg_last_wal_replay_lsn()::text, '-');",
            echo=False,
            check=False,
            port=port,
        )
        if row and row[0] != (seen[-1] if seen else ""):
            seen.append(row[0])
            ctx.log(f"in recovery, replayed to: {row[0]}", host=ctx.node.name)
        return bool(row) and row[0].startswith("false")

    ctx.wait_until(promoted, timeout=RECOVERY_TIMEOUT_S, interval=2, what="recovery to the target")
    # Promoted: it fetches no more WAL from the repository.
    repository_let_in(ctx, add=False)


def restore_recover(ctx: StepContext) -> Verdict | str:
    """Start the restored server (pg_ctl, as postgres) and wait until it has replayed to the
    target and been promoted; the replay position is logged as it moves."""
    spec = ctx.facts["spec"]
    data = restored_dir(ctx)
    recover(ctx, data, paths.POSTGRES_PORT)
    kind = ctx.job.params.get("target_type", "latest")
    target = "the end of the archive" if kind == "latest" else f"{kind} {ctx.job.params['target']}"
    return (
        f"PostgreSQL {spec.postgres_version} recovered to {target} and promoted on "
        f"{ctx.node.address}:{paths.POSTGRES_PORT} ({data}); standalone, not in the cluster"
    )


RESTORE_POINT = Playbook(
    kind="restore_point",
    plan=plan_restore_point,
    steps={"restore_point_create": with_spec(restore_point_create)},
    mutating=False,
)

RESTORE = Playbook(
    kind="restore",
    plan=plan_restore,
    steps={
        name: with_spec(on_target(fn))
        for name, fn in {
            "restore_prepare": restore_prepare,
            "restore_files": restore_files,
            "restore_recover": restore_recover,
        }.items()
    },
    # It changes no server of the cluster: it may run beside the cluster's own jobs.
    mutating=False,
)
