"""The restore drill (issue 22 part 3): `restore_drill`. A backup that was never restored is a
hope; this restores the latest one, checks it, says how long it took and removes it.

1. drill_snapshot, on the primary: in one transaction the chosen tables are locked against
   writers (SHARE mode: reads go on), counted and checksummed (jobs.drill_tables), and a
   restore point `drill_<job>` is made; after the commit the step waits until that point's
   WAL segment is archived. The copy recovered to the point must hold exactly these rows.
2. drill_prepare, drill_files, drill_recover, on the policy's drill server (never a member of
   any cluster): the restore job's own steps (jobs.playbooks.restore) with the drill's own data
   directory and port; a leftover drill directory of an earlier failed drill is removed first.
3. drill_verify: the same counts on the copy; a table that differs fails the drill, named.
4. drill_teardown: the copy stopped and its directory removed (a throwaway copy, no one's data).

Each step writes to the drill's RestoreDrill row as it goes, so the history shows a failed
drill as failed with its reason. The RTO is the time from the start of the restore (the files
step) until the copy was promoted and its tables checked.
"""

import re
import shlex

from django.utils import timezone

from clusters.inventory import outside_servers
from clusters.models import Cluster, Node
from jobs import drill_tables
from jobs.errors import JobRefused
from jobs.models import Job, JobKind, JobStatus, RestoreDrill
from jobs.playbooks import backup_steps, backups, restore
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.setup import with_spec
from jobs.playbooks.sql import psql

# The copy listens here, not on PostgreSQL's port: a restore job's copy on the same server
# (or Debian's own cluster, stopped by prepare) keeps 5432.
DRILL_PORT = 5439
LABEL = re.compile(r"restore backup set ([0-9A-Za-z_-]+)")
COUNT_TIMEOUT_S = 3600


def drill_dir(ctx: StepContext) -> str:
    """The drill's own data directory on the drill server (never the restore job's)."""
    spec = ctx.facts["spec"]
    return f"/var/lib/postgresql/{spec.postgres_version}/drill-{spec.name}"


def drill_refusal(cluster: Cluster) -> str | None:
    """Why a drill of `cluster` cannot start (None: it can): no drill server, or no backup
    to restore yet. The plan and the page's button (clusters.web.action_checks) share it."""
    policy = backup_steps.policy_of(cluster)
    if not policy.drill_address or policy.drill_credential_id is None:
        return (
            f"set a drill server first (drill_address in PUT /api/v1/clusters/{cluster.pk}/"
            "backups/)"
        )
    if not Job.objects.filter(
        cluster=cluster, kind=JobKind.BACKUP, status=JobStatus.SUCCEEDED
    ).exists():
        return "no successful backup yet: take one first"
    # Two drills would restore into the same directory and port of the drill server.
    running = Job.objects.filter(
        cluster=cluster, kind=JobKind.RESTORE_DRILL, status__in=JobStatus.active()
    ).first()
    if running is not None:
        return f"a restore drill of {cluster.name} is running already (job {running.pk})"
    return outside_servers.member_refusal(policy.drill_address)


def plan_drill(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Snapshot on the primary, restore on the drill server, verify, tear down."""
    backups.refuse_unless_running(cluster, "a restore drill")
    if node is not None:
        raise JobRefused("a restore drill runs on the drill server; name no node")
    if reason := drill_refusal(cluster):
        raise JobRefused(reason)
    address = backup_steps.policy_of(cluster).drill_address
    return [
        StepSpec("drill_snapshot", "Count the tables and make a restore point on the primary"),
        StepSpec("drill_prepare", f"Prepare {address}: packages, certificate, config"),
        StepSpec("drill_files", f"Restore the latest backup onto {address}"),
        StepSpec("drill_recover", "Start the copy and recover to the restore point"),
        StepSpec("drill_verify", "Compare the copy's tables with the primary's"),
        StepSpec("drill_teardown", f"Stop the copy and remove it from {address}"),
    ]


def _drill(ctx: StepContext) -> RestoreDrill:
    return RestoreDrill.objects.get(job=ctx.job)


def recorded(step):
    """Run a drill step; when it fails, the drill is marked failed with the reason."""

    def wrapper(ctx: StepContext) -> Verdict | str:
        # A retry goes on with the same drill: it runs again until a step fails.
        RestoreDrill.objects.filter(job=ctx.job).update(
            outcome=RestoreDrill.Outcome.RUNNING, reason="", finished=None
        )
        try:
            return step(ctx)
        except Exception as exc:
            RestoreDrill.objects.filter(job=ctx.job).update(
                outcome=RestoreDrill.Outcome.FAILED,
                reason=f"{step.__name__}: {exc}"[:2000],
                finished=timezone.now(),
            )
            raise

    wrapper.__doc__ = step.__doc__
    wrapper.__name__ = step.__name__
    return wrapper


def drill_server_of(ctx: StepContext) -> Node:
    """The policy's drill server, checked again now: still no member of any cluster."""
    policy = backup_steps.policy_of(ctx.cluster)
    server = policy.drill_server()
    if server is None:
        raise StepFailed("the policy has no drill server any more")
    if reason := outside_servers.member_refusal(server.address):
        raise StepFailed(reason)
    return server


on_drill_server = restore.on_server(drill_server_of)


def drill_snapshot(ctx: StepContext) -> Verdict | str:
    """The chosen tables (or the database's five largest) counted and checksummed in one
    transaction that shuts writers out and makes the restore point; then the point's WAL
    segment archived."""
    policy = backup_steps.policy_of(ctx.cluster)
    server = drill_server_of(ctx)
    RestoreDrill.objects.filter(job=ctx.job).delete()  # a retry starts the drill afresh
    drill = RestoreDrill.objects.create(
        cluster=ctx.cluster,
        job=ctx.job,
        target_address=server.address,
        database=policy.drill_database,
        restore_point=f"drill_{ctx.job.pk}",
    )
    primary = backup_steps.primary_node(ctx)
    if primary is None:
        raise StepFailed("no primary at the moment; run the drill once there is one")
    database = policy.drill_database
    tables = [t for t in (drill_tables.table_name(n) for n in policy.drill_tables) if t]
    if not tables:
        found = psql(ctx, primary, drill_tables.LARGEST_TABLES_SQL, database=database, echo=False)
        tables = [t for t in (drill_tables.table_name(n) for n in found) if t]
    ctx.log(f"tables to check in {database}: {', '.join(tables) or 'none'}", host=primary.name)
    lines = psql(
        ctx,
        primary,
        drill_tables.snapshot_sql(tables, drill.restore_point),
        database=database,
        timeout=COUNT_TIMEOUT_S,
    )
    try:
        results, lsn = drill_tables.parse_counts(lines, tables)
    except ValueError as exc:
        raise StepFailed(f"the primary's counts were unreadable: {exc}") from None
    if not lsn:
        raise StepFailed("the restore point was not made (psql printed no LSN)")
    segment = restore.archive_wait(ctx, primary, lsn)
    drill.results = results
    drill.save(update_fields=["results"])
    rows = sum(r["rows"] for r in results)
    return (
        f"{len(tables)} table{'s' if len(tables) != 1 else ''} of {database} counted on "
        f"{primary.name} ({rows} rows); restore point {drill.restore_point} at {lsn}, segment "
        f"{segment} archived"
    )


def drill_prepare(ctx: StepContext) -> Verdict | str:
    """The restore job's preparation, for the drill's directory."""
    return restore.prepare_server(ctx, drill_dir(ctx))


def drill_files(ctx: StepContext) -> Verdict | str:
    """An earlier failed drill's copy (this drill's own directory only) stopped and removed,
    then `pgbackrest restore` of the latest backup, recovering to the drill's restore point."""
    data = drill_dir(ctx)
    removed = _remove_copy(ctx, data)
    drill = _drill(ctx)
    RestoreDrill.objects.filter(pk=drill.pk).update(restore_started=timezone.now())
    args = f"--type=name --target={shlex.quote(drill.restore_point)} --target-action=promote"
    size, lines = restore.restore_into(ctx, data, args)
    label = next((m.group(1) for ln in lines if (m := LABEL.search(ln))), "")
    RestoreDrill.objects.filter(pk=drill.pk).update(backup_label=label)
    said = f"restored backup {label or '?'} ({size}) into {data}"
    return f"an earlier drill's copy removed; {said}" if removed else said


def _remove_copy(ctx: StepContext, data: str) -> bool:
    """Stop a copy running in the drill's directory and remove the directory and its log;
    whether there was one."""
    if not restore.holds_data(ctx, data) and not ctx.output(
        f"[ -e {shlex.quote(data)} ] && echo yes || true", sudo=True, echo=False
    ):
        return False
    quoted = shlex.quote(data)
    status = ctx.run(backup_steps.as_user(ctx.node, f"{restore.pg_ctl(ctx)} -D {quoted} status"))
    if status.ok:
        ctx.run(
            backup_steps.as_user(ctx.node, f"{restore.pg_ctl(ctx)} -D {quoted} -m fast -w stop"),
            timeout=300,
            check=True,
        )
    ctx.run(f"rm -rf -- {quoted} {shlex.quote(data + '.log')}", check=True, timeout=1800)
    return True


def drill_recover(ctx: StepContext) -> Verdict | str:
    """Start the copy on the drill's port and wait until it is promoted at the point."""
    data = drill_dir(ctx)
    restore.recover(ctx, data, DRILL_PORT)
    drill = _drill(ctx)
    RestoreDrill.objects.filter(pk=drill.pk).update(restored_at=timezone.now())
    return (
        f"the copy recovered to {drill.restore_point} and was promoted on "
        f"{ctx.node.address}:{DRILL_PORT}"
    )


def drill_verify(ctx: StepContext) -> Verdict | str:
    """The same counts and checksums on the copy; a table that differs fails the drill."""
    drill = _drill(ctx)
    tables = [r["table"] for r in drill.results]
    lines = psql(
        ctx,
        ctx.node,
        drill_tables.count_sql(tables) if tables else "SELECT 1;",
        database=drill.database,
        port=DRILL_PORT,
        timeout=COUNT_TIMEOUT_S,
    )
    try:
        copy, _ = drill_tables.parse_counts(lines, tables)
    except ValueError as exc:
        raise StepFailed(f"the copy's counts were unreadable: {exc}") from None
    merged, differ = drill_tables.compare(drill.results, copy)
    now = timezone.now()
    rto = (now - drill.restore_started).total_seconds() if drill.restore_started else None
    RestoreDrill.objects.filter(pk=drill.pk).update(results=merged, rto_seconds=rto)
    if differ:
        # The copy stays for a look; the next drill removes it (drill_files).
        raise StepFailed(f"the copy differs from the primary: {'; '.join(differ)}")
    return (
        f"{len(tables)} table{'s' if len(tables) != 1 else ''} identical on the copy "
        f"({', '.join(tables) or 'none chosen'}); RTO {_seconds(rto)}"
    )


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} s"


def drill_teardown(ctx: StepContext) -> Verdict | str:
    """`pg_ctl stop -m fast` and the drill's directory removed; the drill passed."""
    data = drill_dir(ctx)
    _remove_copy(ctx, data)
    drill = _drill(ctx)
    RestoreDrill.objects.filter(pk=drill.pk).update(
        outcome=RestoreDrill.Outcome.PASSED, finished=timezone.now(), reason=""
    )
    return f"copy stopped, {data} removed; drill passed, RTO {_seconds(drill.rto_seconds)}"


PLAYBOOK = Playbook(
    kind="restore_drill",
    plan=plan_drill,
    steps={
        "drill_snapshot": with_spec(recorded(drill_snapshot)),
        **{
            name: with_spec(recorded(on_drill_server(fn)))
            for name, fn in {
                "drill_prepare": drill_prepare,
                "drill_files": drill_files,
                "drill_recover": drill_recover,
                "drill_verify": drill_verify,
                "drill_teardown": drill_teardown,
            }.items()
        },
    },
    # It changes no server of the cluster (a restore point and a WAL switch only).
    mutating=False,
)
