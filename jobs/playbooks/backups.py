"""Backups with pgBackRest (issue 22 part 1): `configure_backups` and `backup`.

configure_backups, on a running cluster whose BackupPolicy is on:
1. on the repository host, then each database node: pgBackRest installed, its config
   (jobs/configs/pgbackrest.py), a private copy of the node key for its TLS server, the server
   running (`hacenter-pgbackrest.service`);
2. each database node's Patroni configured to archive (archive_mode=on, archive_command
   pushing to the repository), reloaded, and restarted in place where PostgreSQL says the
   change needs it (standbys first, no failover: Patroni restarts its own PostgreSQL);
3. on the repository host: `stanza-create` (pgBackRest says so when the stanza exists) and
   `check`, which forces a WAL switch and waits until that segment is in the archive;
4. the repository's `info` read and kept for the cluster page and the API.

backup: `pgbackrest backup --type=full|diff|incr` on the repository host (it finds the
primary among the pgN-hosts itself), then the same info step. After the repository's first
good backup, each database node's Patroni file is written again: from then on a new or
rebuilt standby is restored from the repository (jobs/configs/patroni.replica_methods).

Setup runs the steps of configure_backups itself when the cluster has a policy
(jobs/playbooks/backup_steps.py, which both use), so archiving starts with the cluster;
configure_backups is for a cluster whose backups were turned on later (and repairs one).
"""

import shlex

from django.utils import timezone

from clusters.models import Cluster, Node
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.playbooks import firewall
from jobs.playbooks.backup_steps import (
    STEPS,
    check_steps,
    host_steps,
    pgbackrest,
    policy_of,
)
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.layout import rest_auth
from jobs.playbooks.setup import cluster_spec, patroni_configure, with_spec
from jobs.playbooks.setup_postgres import members
from jobs.playbooks.sql import psql
from jobs.ssh import SSHError

BACKUP_TYPES = ("full", "diff", "incr")
# A backup of a big database takes hours; the step's SSH read loop stays cancellable.
BACKUP_TIMEOUT_S = 12 * 3600
RESTART_TIMEOUT_S = 120
# How long a backup waits for its WAL to reach the archive (pgBackRest's default: 60 s). After
# a bulk load the primary has hundreds of segments waiting, pushed one by one: measured, a
# full backup right after `pgbench -i -s 400` (6 GB) failed with "WAL segment … was not
# archived before the 60000ms timeout".
BACKUP_ARCHIVE_TIMEOUT_S = 1800


def refuse_unless_running(cluster: Cluster, what: str) -> None:
    if cluster.origin == Cluster.Origin.ADOPTED:
        raise JobRefused(f"{cluster.name} is an adopted Patroni cluster: {what} is not managed")
    if cluster.state not in (
        Cluster.State.HEALTHY,
        Cluster.State.DEGRADED,
        Cluster.State.MAINTENANCE,
    ):
        raise JobRefused(f"{cluster.name} is {cluster.state}; {what} needs a running cluster")
    if not cluster.ca_certificate:
        raise JobRefused(f"{cluster.name} has no CA yet: run setup first (pgBackRest uses TLS)")


def plan_configure(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Repository host first, then the database nodes; stanza and check; info."""
    refuse_unless_running(cluster, "configuring backups")
    repo = policy_of(cluster).repository_node()
    if node is not None:
        raise JobRefused("backups are configured on every node at once; name no node")
    db_nodes = list(cluster.database_nodes.order_by("name"))
    return [
        # pgBackRest's TLS port between the cluster's hosts, before its servers listen.
        *[
            StepSpec("firewall", "Host firewall (nftables)", n)
            for n in cluster.nodes.order_by("name")
        ],
        *host_steps(cluster, repo),
        *[StepSpec("patroni_configure", "Archive WAL from Patroni", n) for n in db_nodes],
        StepSpec("backup_restart_pending", "Restart PostgreSQL where archiving needs it"),
        *check_steps(repo),
    ]


def plan_backup(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """One backup from the repository host, then its info."""
    refuse_unless_running(cluster, "a backup")
    repo = policy_of(cluster).repository_node()
    kind = params.get("backup_type", "full")
    if kind not in BACKUP_TYPES:
        raise JobRefused(f"backup_type {kind!r} is not one of {', '.join(BACKUP_TYPES)}")
    if node is not None:
        raise JobRefused("a backup runs on the repository host; name no node")
    policy = policy_of(cluster)
    # The first good backup changes how standbys are created; later ones change nothing there
    # (a node missed now, being off, gets its file from its Rebuild).
    first = [] if policy.holds_backup() else list(cluster.database_nodes.order_by("name"))
    return [
        StepSpec("backup_run", f"Take a {kind} backup", repo),
        StepSpec("backup_info", "Read the repository", repo),
        *[StepSpec("backup_replicas", "New standbys restored from the backup", n) for n in first],
    ]


def backup_restart_pending(ctx: StepContext) -> Verdict | str:
    """Restart PostgreSQL in place (through Patroni, standbys first) on each node whose running
    archive_mode is not yet `on`; nothing when all already archive."""
    nodes = list(ctx.cluster.database_nodes.order_by("name"))
    leader = patroni_api.leader(members(ctx)) or {}
    nodes.sort(key=lambda n: n.name == leader.get("name"))
    restarted = []
    for node in nodes:

        def mode(node: Node = node) -> str:
            lines = psql(ctx, node, "SHOW archive_mode;", echo=False, check=False)
            return lines[0].strip() if lines else ""

        # The reload before may still be on its way: give Patroni a loop to apply it.
        ctx.wait_until(
            lambda node=node: _pending_or_done(ctx, node, mode),
            timeout=30,
            what=f"Patroni on {node.name} to take the archive settings",
        )
        if mode() == "on":
            continue
        status, body = patroni_api.post(
            node, "/restart", {"restart_pending": True}, auth=rest_auth(ctx.cluster), timeout=90
        )
        if status not in (200, 202):
            raise StepFailed(f"Patroni on {node.name} refused to restart: {status} {body}")
        ctx.wait_until(
            lambda: mode() == "on",
            timeout=RESTART_TIMEOUT_S,
            what=f"PostgreSQL on {node.name} to archive after its restart",
        )
        restarted.append(node.name)
    if not restarted:
        return "every node already archives (archive_mode=on)"
    return f"restarted in place: {', '.join(restarted)}; every node archives now"


def _pending_or_done(ctx: StepContext, node: Node, mode) -> bool:
    if mode() == "on":
        return True
    try:
        _status, body = patroni_api.member(node, timeout=3)
    except patroni_api.PatroniUnavailable:
        return False
    return isinstance(body, dict) and bool(body.get("pending_restart"))


def backup_run(ctx: StepContext) -> Verdict | str:
    """The backup itself; pgBackRest's own lines go to the log."""
    kind = ctx.job.params.get("backup_type", "full")
    stanza = shlex.quote(policy_of(ctx.cluster).stanza)
    started = timezone.now()
    pgbackrest(
        ctx,
        f"--stanza={stanza} --type={kind} --archive-timeout={BACKUP_ARCHIVE_TIMEOUT_S} backup",
        timeout=BACKUP_TIMEOUT_S,
    )
    seconds = (timezone.now() - started).total_seconds()
    return f"{kind} backup taken in {seconds:.0f} s"


def backup_replicas(ctx: StepContext) -> Verdict | str:
    """Write the node's Patroni file again now that the repository holds a backup: Patroni
    creates its replicas with pgBackRest first (jobs/configs/patroni.replica_methods). A node
    that cannot be reached is left as it is: its Rebuild writes its file before copying."""
    if not ctx.facts.get("spec_after_backup"):
        # The spec of this run was built before the backup: build it again.
        ctx.facts["spec"] = cluster_spec(ctx.cluster)
        ctx.facts["spec_after_backup"] = True
    spec = ctx.facts["spec"]
    if not spec.backup_replicas:
        return "the repository holds no good backup yet: replicas are copied from the primary"
    try:
        verdict = patroni_configure(ctx)
    except (SSHError, OSError) as exc:
        return Verdict.warn(f"not reached ({exc}); its Rebuild writes its Patroni file")
    return f"{verdict}; replicas are restored with pgBackRest, then pg_basebackup"


CONFIGURE = Playbook(
    kind="configure_backups",
    plan=plan_configure,
    steps={
        name: with_spec(fn)
        for name, fn in {
            "firewall": firewall.firewall,
            "patroni_configure": patroni_configure,
            "backup_restart_pending": backup_restart_pending,
            **STEPS,
        }.items()
    },
)

BACKUP = Playbook(
    kind="backup",
    plan=plan_backup,
    steps={
        name: with_spec(fn)
        for name, fn in {
            "backup_run": backup_run,
            "backup_info": STEPS["backup_info"],
            "backup_replicas": backup_replicas,
        }.items()
    },
    # A backup reads the cluster and changes no server's configuration: it may run beside a
    # switchover (pgBackRest finds the new primary) and is never blocked by one.
    mutating=False,
)
