"""Rebuild a node as a standby: the product's one-click answer to "the old master is back".

Diagnose first. If Patroni already rejoined it (pg_rewind), verify and say so. Otherwise start
Patroni so it rejoins with pg_rewind; if that does not work in time, move the data directory
aside (timestamped, deleted only after the new standby streams, keeping the last N) and let
Patroni copy the primary afresh, with progress in percent. A fenced node is let back into
HAProxy only after the standby is verified.
"""

import dataclasses
import re
import shlex
import time

from django.conf import settings

from clusters.models import Cluster, Node, NodeStatus
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.models import Job, JobStatus
from jobs.playbooks import daemons, firewall, replica_method, tls
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.etcd_members import etcd_member_repair
from jobs.playbooks.haproxy_runtime import BACKENDS, haproxy_runtime
from jobs.playbooks.layout import patroni_daemon as layout_daemon
from jobs.playbooks.layout import patroni_layout
from jobs.playbooks.setup import patroni_configure, with_spec
from jobs.playbooks.setup_postgres import (
    current_primary,
    install_patroni,
    members,
    verify_streaming,
    wait_for_sync_standby,
)
from jobs.playbooks.sql import psql

# Where a full copy comes from: "" lets Patroni choose (the repository when it holds a backup,
# else the primary); "primary" skips the repository for this copy.
COPY_FROM = ("", "primary")


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if node is None or node.kind != Node.Kind.DATABASE:
        raise JobRefused("name the database node to rebuild")
    if params.get("copy_from", "") not in COPY_FROM:
        raise JobRefused('copy_from is "primary" (skip the backup repository) or absent')
    if cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING):
        raise JobRefused(f"{cluster.name} is not set up yet; run setup")
    # An adopted cluster's Patroni, etcd and (absent) proxy are the customer's: only rejoin or
    # copy its node, with its own service and data directory.
    ours = cluster.origin != Cluster.Origin.ADOPTED
    return [
        StepSpec("diagnose", "Diagnose", node),
        # Both cost one command when nothing is missing; after a wiped disk they reinstall.
        *(
            [
                StepSpec("install_patroni", f"Patroni {settings.PATRONI_VERSION} installed", node),
                # A wiped disk lost the node's certificate and key: etcd and Patroni need them.
                StepSpec("tls_files", "CA, node certificate and keys", node),
                StepSpec("etcd_member", "etcd member healthy", node),
                # A wiped or new disk lost the firewall's file and unit: loaded again.
                StepSpec("firewall", "Host firewall (nftables)", node),
            ]
            if ours
            else []
        ),
        StepSpec("rejoin", "Rejoin with pg_rewind", node),
        StepSpec("reinitialise", "Full copy (if rejoin failed)", node),
        StepSpec("verify", "Verify streaming; tidy old data", node),
        *([StepSpec("unfence", "Let it back into HAProxy", node)] if cluster.proxy_node else []),
    ]


def _member(ctx: StepContext) -> dict:
    return next((m for m in members(ctx) if m["name"] == ctx.node.name), {})


def _streams(ctx: StepContext) -> bool:
    """The node's own Patroni says it streams. The cluster's member list is not enough: a
    member whose Patroni was just killed stays listed as streaming until its key expires."""
    try:
        _, me = patroni_api.member(ctx.node, timeout=2)
    except patroni_api.PatroniUnavailable:
        return False
    # Patroni 4 reports a replica's WAL receiver as `replication_state`; older ones as `state`.
    return "streaming" in (me.get("state"), me.get("replication_state"))


def diagnose(ctx: StepContext) -> Verdict | str:
    """Reachable? Patroni running? Already a streaming standby? Refuse to rebuild the primary.
    A fence of the node that is still running is waited for first: it stops Patroni, and a
    Rebuild that saw the node streaming a moment before would end with it stopped (the chaos
    suite's freeze round, where the sentinel fenced the resumed old primary)."""
    fencing = Job.objects.filter(node=ctx.node, kind="fence", status__in=JobStatus.active())
    if fencing.exists():
        ctx.log(f"waiting for the fence of {ctx.node.name} to finish", host=ctx.node.name)
        ctx.wait_until(
            lambda: not fencing.exists(),
            timeout=120,
            interval=1,
            what=f"the fence of {ctx.node.name} to finish",
        )
    primary = current_primary(ctx)
    if primary == ctx.node:
        raise StepFailed(f"{ctx.node.name} is the primary; switch over first to rebuild it")
    running = daemons.pid(ctx, ctx.node, layout_daemon(ctx.cluster))
    member = _member(ctx)
    data = patroni_layout(ctx.cluster).data_dir
    has_data = ctx.run(f"[ -f {data}/PG_VERSION ]", echo=False).ok
    ctx.facts["had_data"] = has_data
    return (
        f"reachable; Patroni {'running' if running else 'stopped'}; "
        f"{'data present' if has_data else 'no data directory'}; Patroni sees it as "
        f"{member.get('role', 'absent')}/{member.get('state', '-')} on timeline "
        f"{member.get('timeline', '?')} (primary {primary.name})"
    )


def rejoin(ctx: StepContext) -> Verdict | str:
    """Start Patroni (configuration re-applied); it rewinds and follows the new primary. The
    wait lasts as long as the node makes progress (crash recovery, pg_rewind, replay), so a
    large database is not given up on and copied afresh merely for being large."""
    ctx.facts["rejoined"] = False
    if ctx.job.params.get("full_copy"):
        return "skipped: a full copy was asked for"
    if _streams(ctx):
        ctx.facts["rejoined"] = True
        return "already streaming: Patroni rejoined it by itself"
    if ctx.facts["spec"] is not None:  # an adopted cluster keeps its own configuration
        patroni_configure(ctx)
    daemons.start(ctx, ctx.node, layout_daemon(ctx.cluster))
    progress = RejoinProgress(settings.REBUILD_REJOIN_TIMEOUT_S)
    sampling = ActivitySampling(ACTIVITY_EVERY_S)

    def streams_or_stalls() -> bool:
        if _streams(ctx):
            return True
        if not sampling.due():
            return False
        activity = _rejoin_activity(ctx)
        if progress.observe(activity):
            ctx.log(f"rejoining: {activity or 'waiting for Patroni'}", host=ctx.node.name)
        if progress.stalled():
            raise StepFailed(f"no progress for {progress.limit_s:g} s")
        return False

    try:
        # Asked often: Patroni's REST answer is cheap, and every second between the node
        # streaming and the job noticing is a second of the Rebuild. What the node does
        # (an SSH round trip) is looked at less often; it only feeds the stall limit.
        ctx.wait_until(
            streams_or_stalls,
            timeout=settings.REBUILD_REJOIN_MAX_S,
            interval=STREAMS_EVERY_S,
            what=f"{ctx.node.name} to stream from the primary",
        )
    except StepFailed as exc:
        return Verdict.warn(f"did not rejoin ({exc}); falling back to a full copy")
    ctx.facts["rejoined"] = True
    if not ctx.facts.get("had_data", True):
        return "rejoined: the data directory was empty, so Patroni copied the primary afresh"
    return "rejoined: Patroni rewound it (pg_rewind) and it streams"


def _rejoin_activity(ctx: StepContext) -> str:
    """What the node does towards rejoining, as its processes show it: pg_rewind or
    single-user crash recovery on this data directory, and the postmaster's startup process
    (the WAL segment it replays) and WAL receiver (the position it received)."""
    data = patroni_layout(ctx.cluster).data_dir
    # [p]/[-]: the pattern must not match this very shell's command line.
    tools = shlex.quote(f"[p]g_rewind.*{data}|[-]-single.*{data}")
    script = (
        f"pm=$(head -n 1 {shlex.quote(data)}/postmaster.pid 2>/dev/null); "
        'if [ -n "$pm" ]; then ps --ppid "$pm" -o args= | grep -E "startup|walreceiver"; fi; '
        f"pgrep -a -f -- {tools}; true"
    )
    lines = ctx.output(script, sudo=True, echo=False)
    # pgrep prints "<pid> <command line>": the pid says nothing about progress.
    return "; ".join(line.split(" ", 1)[-1][:160] for line in lines if line.strip())


STREAMS_EVERY_S = 0.25  # how often the rejoin asks the node's Patroni whether it streams
ACTIVITY_EVERY_S = 1.0  # how often it looks at the node's processes for progress


class ActivitySampling:
    """Whether it is time to look at the node's processes again: at most every `every_s`,
    the first look at once."""

    def __init__(self, every_s: float, clock=time.monotonic) -> None:
        self.every_s, self._clock = every_s, clock
        self._last: float | None = None

    def due(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self.every_s:
            return False
        self._last = now
        return True


WAL_SEGMENT = re.compile(r"\b[0-9A-F]{24}\b")
LSN = re.compile(r"\b([0-9A-F]{1,8})/([0-9A-F]{1,8})\b")


class RejoinProgress:
    """Whether a rejoin still moves: pg_rewind or single-user crash recovery running (they say
    nothing until done, and while they run they work), or the startup process or the WAL
    receiver further along than ever before. A WAL receiver that connects, fails and
    reconnects changes what ps shows without moving: that is not progress."""

    def __init__(self, limit_s: float, clock=time.monotonic) -> None:
        self.limit_s, self._clock = limit_s, clock
        self._since = clock()
        self._furthest = (-1, -1)  # (WAL segment, LSN) as numbers
        self._kind = ""

    def observe(self, activity: str) -> bool:
        """Record what ps showed; True when the kind of activity changed (worth a log line)."""
        segments = [int(s, 16) for s in WAL_SEGMENT.findall(activity)]
        lsns = [(int(hi, 16) << 32) + int(lo, 16) for hi, lo in LSN.findall(activity)]
        furthest = (max(segments, default=-1), max(lsns, default=-1))
        working = "pg_rewind" in activity or "--single" in activity
        if working or furthest[0] > self._furthest[0] or furthest[1] > self._furthest[1]:
            self._since = self._clock()
        self._furthest = max(self._furthest[0], furthest[0]), max(self._furthest[1], furthest[1])
        kind = LSN.sub("", WAL_SEGMENT.sub("", activity))
        changed, self._kind = kind != self._kind, kind
        return changed

    def stalled(self) -> bool:
        return self._clock() - self._since >= self.limit_s


def reinitialise(ctx: StepContext) -> Verdict | str:
    """Move the data directory aside and let Patroni copy the node afresh, reporting progress:
    restored from the backup repository when it holds a backup (Patroni's `pgbackrest`
    replica method), else, or when that fails, pg_basebackup from the primary. The summary
    says which one it was."""
    # Asked of the node only when this run has no rejoin verdict (a retry that resumes here).
    rejoined = ctx.facts["rejoined"] if "rejoined" in ctx.facts else _streams(ctx)
    if not ctx.job.params.get("full_copy") and rejoined:
        return "not needed: the node rejoined"
    data = patroni_layout(ctx.cluster).data_dir
    aside = f"{data}.rebuild-{ctx.job.created:%Y%m%dT%H%M%SZ}"
    # A retry of this job (its worker died, its connection dropped) finds the old data already
    # aside: the data directory then holds the copy the earlier attempt started, not old data.
    resumed = ctx.run(f"[ -e {shlex.quote(aside)} ]", echo=False).ok
    if resumed and _streams(ctx):
        ctx.progress(100)
        return f"the copy an earlier attempt started is done and streams; old data in {aside}"
    # Asked now, not taken from diagnose (minutes may have passed), and before the node is
    # touched: without a primary to copy from, the step fails with the node as it was.
    primary = current_primary(ctx, wait_s=60)
    total = _primary_size(ctx, primary)
    daemon = layout_daemon(ctx.cluster)
    daemons.stop(ctx, ctx.node, daemon, timeout_s=60)
    if resumed:
        ctx.run(f"rm -rf {shlex.quote(data)}", check=True)
        ctx.log(
            f"removed the unfinished copy of an earlier attempt; old data stays in {aside}",
            host=ctx.node.name,
        )
    else:
        ctx.run(f"if [ -e {data} ]; then mv -T {data} {shlex.quote(aside)}; fi", check=True)
        ctx.log(f"old data kept in {aside} until the new standby streams", host=ctx.node.name)
    spec = ctx.facts["spec"]
    if spec is not None:  # an adopted cluster keeps its own configuration
        # The replica methods as they are now (a backup taken since the node's file was
        # written); "primary" leaves the repository out of this one copy.
        skip = ctx.job.params.get("copy_from") == "primary"
        ctx.facts["spec"] = dataclasses.replace(spec, backup_replicas=False) if skip else spec
        patroni_configure(ctx)
        ctx.facts["spec"] = spec
        repository = spec.backup_replicas and not skip
        methods = "pgbackrest, then basebackup" if repository else "basebackup"
        ctx.log(f"Patroni creates the replica with: {methods}", host=ctx.node.name)
    since = int(ctx.output("date +%s", echo=False)[0])
    daemons.start(ctx, ctx.node, daemon)

    def copied() -> bool:
        size = ctx.output(f"du -sb {data} 2>/dev/null | cut -f1 || echo 0", sudo=True, echo=False)
        done = int(size[0]) if size and size[0].isdigit() else 0
        ctx.progress(min(99, 100 * done // max(total, 1)))
        return _streams(ctx)

    ctx.wait_until(
        copied,
        timeout=settings.SETUP_STANDBY_TIMEOUT_S * 4,
        interval=1,
        what=f"the copy of {primary.name} to finish",
    )
    ctx.progress(100)
    how = replica_method.copy_method(ctx, data, daemon, since)
    if spec is not None and ctx.job.params.get("copy_from") == "primary":
        patroni_configure(ctx)  # the repository first again for the next copy
    return f"{how}: {total // 1024**2} MB, streams from {primary.name}; old data in {aside}"


def _primary_size(ctx: StepContext, primary: Node) -> int:
    """The bytes a copy of `primary` will hold, asked of its PostgreSQL, which must accept
    writes: the node's data is moved aside next, and a copy from a node that is not really
    the primary (a stale view named it; its PostgreSQL was just stopped) cannot work."""
    sql = "SELECT pg_is_in_recovery(), sum(pg_database_size(datname)) FROM pg_database;"
    in_recovery, size = psql(ctx, primary, sql, echo=False)[0].split("|")
    if in_recovery != "f":
        raise StepFailed(f"{primary.name} is named primary but its PostgreSQL is in recovery")
    return int(size)


def verify(ctx: StepContext) -> Verdict | str:
    """Prove streaming, then delete moved-aside copies beyond the newest N."""
    verdict = verify_streaming(ctx, ctx.node, current_primary(ctx))
    if sync := wait_for_sync_standby(ctx):
        verdict += f"; {sync} is the synchronous standby"
    data = patroni_layout(ctx.cluster).data_dir
    keep = settings.REBUILD_KEEP_OLD_DATA
    old = ctx.output(f"ls -d {data}.rebuild-* 2>/dev/null | sort -r || true", sudo=True, echo=False)
    for path in old[keep:]:
        ctx.run(f"rm -rf {shlex.quote(path)}", check=True)
    if old[keep:]:
        verdict += f"; removed {len(old[keep:])} older copies, kept {min(keep, len(old))}"
    return verdict


def unfence(ctx: StepContext) -> Verdict | str:
    status = NodeStatus.objects.filter(node=ctx.node).first()
    was_fenced = bool(status and status.fenced)
    replies = [
        reply
        for proxy in ctx.cluster.proxy_nodes  # every proxy: each has its own runtime state
        for reply in haproxy_runtime(
            ctx, proxy, [f"set server {b}/{ctx.node.name} state ready" for b in BACKENDS]
        )
    ]
    if any(r and "No such" not in r for r in replies):
        raise StepFailed(f"HAProxy refused: {' | '.join(r for r in replies if r)}")
    NodeStatus.objects.filter(node=ctx.node).update(fenced=False, fence_reason="")
    return "fence lifted; HAProxy checks it again" if was_fenced else "HAProxy checks it as usual"


PLAYBOOK = Playbook(
    kind="rebuild",
    plan=plan,
    steps={
        name: with_spec(fn)
        for name, fn in {
            "diagnose": diagnose,
            "install_patroni": install_patroni,
            "tls_files": tls.tls_files_step,
            "etcd_member": etcd_member_repair,
            "firewall": firewall.firewall,
            "rejoin": rejoin,
            "reinitialise": reinitialise,
            "verify": verify,
            "unfence": unfence,
        }.items()
    },
)
