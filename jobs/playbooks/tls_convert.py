"""Converting a cluster built before TLS, node by node and without a failover (issue 17 item 6).

Setup includes these steps (after the TLS files are on every node, before its own etcd and
Patroni steps) when the cluster was set up once and a node does not speak TLS yet
(`Node.tls_active`). When they are done, setup's own steps find every file as they would
write it and say "already …".

The order, and why:

1. Patroni is paused (maintenance): nothing below can start a failover, and a primary that
   loses etcd for a few seconds keeps running (a paused Patroni neither demotes nor stops
   PostgreSQL, not even when Patroni itself stops).
2. etcd, in two rolling passes, one member at a time, so a quorum always stands:
   a. each member restarts with the TLS files but its old plain URLs: it now dials a peer that
      speaks https with its certificate, while still taking plain connections itself (etcd
      ignores the TLS settings on an http listener, and says so);
   b. each member's peer URL is changed to https (`etcdctl member update`) and the member
      restarts with the final configuration (https peers and clients, client certificates
      required). Between the two it cannot be reached; the other two keep the quorum.
   Once the last member serves clients over https only, the Patroni daemons (plain clients)
   lose etcd until step 4 restarts them: they are paused.
3. HAProxy's routes are held: every server that is up stops being health-checked (`disable
   health` keeps it up), so Patroni's REST API going away and coming back on https does not
   take writes or reads off a node whose PostgreSQL never stopped.
4. Patroni restarts on each database node with its final configuration (REST on https, etcd
   over TLS, PostgreSQL's `ssl = on` and `hostssl` rules), the primary first: its PostgreSQL
   then requires TLS for new replication connections while the standbys' running ones go on;
   each standby reconnects with TLS when its own Patroni restarts. PostgreSQL keeps running
   (its postmaster's pid is compared before and after). The node is marked `tls_active`.
5. HAProxy gets the final configuration (checks over TLS) by a graceful reload and its checks
   come back on.
6. The leader and its timeline must be the same as before; the pause is lifted unless an
   operator had put the cluster in maintenance mode.

Every step looks at the servers first, so setup run again after a crash half way completes
the conversion: a member whose peer URL is https already is not updated again, a daemon is
restarted only when its configuration is newer than the process, a node already on TLS is left
alone.
"""

import dataclasses
import json
import shlex
import time

from clusters.models import Cluster, Node, NodeStatus
from jobs import patroni_api
from jobs.configs import spec as paths
from jobs.configs.etcd import etcd_config, etcd_config_dict
from jobs.configs.patroni import patroni_config
from jobs.configs.yamlout import dump
from jobs.models import Job, StepStatus
from jobs.playbooks import daemons, setup_finish
from jobs.playbooks.base import StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.haproxy_runtime import BACKENDS, haproxy_runtime
from jobs.playbooks.monitor_sources import monitor_sources
from jobs.playbooks.patroni_pause import pause_set, paused
from jobs.playbooks.setup_etcd import etcd_daemon, etcdctl_line
from jobs.playbooks.setup_postgres import members, patroni_daemon
from jobs.playbooks.tls import tls_files_put, tls_mark_active

# How long one daemon gets to come back after its restart.
RESTART_TIMEOUT_S = 60
# Setup's URL keys of the etcd config: plain during the first pass.
ETCD_URL_KEYS = (
    "listen-peer-urls",
    "listen-client-urls",
    "initial-advertise-peer-urls",
    "advertise-client-urls",
    "initial-cluster",
)


def needs_conversion(cluster: Cluster, params: dict) -> bool:
    """A cluster that was set up (it ran once) and has a node that does not speak TLS yet;
    never when the job was asked to build without TLS (`tls: false`, tests only)."""
    if params.get("tls") is False or cluster.origin == Cluster.Origin.ADOPTED:
        return False
    if cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING):
        return False
    # The second proxy runs neither etcd nor Patroni: nothing of it is converted (its HAProxy
    # gets the TLS checks from setup's haproxy step, which marks it), so it never asks for a
    # conversion; before that mark existed, it made every later setup convert again.
    witness = cluster.proxy_node
    return any(
        not n.tls_active
        for n in cluster.nodes.all()
        if n.kind == Node.Kind.DATABASE or (witness is not None and n.pk == witness.pk)
    )


def _primary_first(cluster: Cluster, nodes: list[Node]) -> list[Node]:
    primary = set(
        NodeStatus.objects.filter(node__cluster=cluster, role=NodeStatus.Role.PRIMARY).values_list(
            "node__name", flat=True
        )
    ) or {cluster.last_leader}
    return sorted(nodes, key=lambda n: (n.name not in primary, n.name))


def plan_steps(cluster: Cluster, nodes: list[Node], etcd_members: list[Node]) -> list[StepSpec]:
    """The conversion's steps for setup's plan (see the module docstring for the order)."""
    db_nodes = [n for n in nodes if n.kind == Node.Kind.DATABASE]
    # The proxy (where setup keeps etcd's raft leader) last: one election instead of two.
    members_order = sorted(etcd_members, key=lambda n: (n.kind == Node.Kind.PROXY, n.name))
    proxy = next(n for n in nodes if n.kind == Node.Kind.PROXY)
    return [
        StepSpec("convert_begin", "TLS conversion: pause automatic failover"),
        *[
            StepSpec("convert_etcd_dial", "etcd: reach its peers with TLS", n)
            for n in members_order
        ],
        *[StepSpec("convert_etcd", "etcd: peers and clients on TLS", n) for n in members_order],
        StepSpec("convert_hold_proxy", "HAProxy: hold the routes while Patroni restarts", proxy),
        *[
            StepSpec("convert_patroni", "Patroni: REST API on https, etcd over TLS", n)
            for n in _primary_first(cluster, db_nodes)
        ],
        StepSpec("convert_haproxy", "HAProxy: checks over TLS", proxy),
        StepSpec("convert_finish", "TLS conversion: same primary, failover back on"),
    ]


# --- helpers ------------------------------------------------------------------------------


def _remember(ctx: StepContext, **values: object) -> None:
    # With the job, not in facts: a retry that resumes half way must still know them.
    ctx.job.params = dict(ctx.job.params, **values)
    Job.objects.filter(pk=ctx.job.pk).update(params=ctx.job.params)


def _node_spec(ctx: StepContext, node: Node) -> paths.NodeSpec:
    return next(n for n in ctx.facts["spec"].nodes if n.name == node.name)


def _leader(ctx: StepContext) -> dict | None:
    return patroni_api.leader(members(ctx))


def _etcdctl(ctx: StepContext, node: Node, *args: str, echo: bool = False) -> list[str]:
    """etcdctl on `node` against every member, over https or plain http, whichever answers.

    While the conversion runs some members serve clients over TLS and some do not, and
    etcdctl dials every endpoint of one command with the first one's credentials: one scheme
    per command, the one that answered last tried first."""
    spec = ctx.facts["spec"]
    schemes = ["http", "https"]
    if ctx.facts.get("etcd_scheme") == "https":
        schemes.reverse()
    failures = []
    for scheme in schemes:
        endpoints = ",".join(
            f"{scheme}://{paths.host_port(m.address, paths.ETCD_CLIENT_PORT)}"
            for m in spec.etcd_members
        )
        lines: list[str] = []
        result = ctx.run(
            etcdctl_line(endpoints, *args, tls=scheme == "https"),
            node=node,
            echo=echo,
            collect=lines,
        )
        if result.ok:
            ctx.facts["etcd_scheme"] = scheme
            return lines
        failures.append(f"{scheme}: {(result.stderr_tail or ['?'])[-1]}")
    raise StepFailed(f"etcd did not answer `etcdctl {args[0]} {args[1]}`: {'; '.join(failures)}")


def _etcd_members(ctx: StepContext, node: Node) -> list[dict]:
    """`etcdctl member list` asked on `node`."""
    lines = _etcdctl(ctx, node, "member", "list", "-w", "json")
    return json.loads("".join(lines)).get("members", [])


def _member(ctx: StepContext, node: Node) -> dict:
    found = next((m for m in _etcd_members(ctx, node) if m.get("name") == node.name), None)
    if found is None:
        raise StepFailed(f"etcd does not list {node.name} as a member")
    return found


def _peer_on_tls(member: dict) -> bool:
    urls = member.get("peerURLs") or []
    return bool(urls) and all(u.startswith("https://") for u in urls)


def _etcd_healthy(ctx: StepContext, node: Node, scheme: str) -> bool:
    endpoint = f"{scheme}://{paths.host_port(node.address, paths.ETCD_CLIENT_PORT)}"
    line = etcdctl_line(endpoint, "endpoint", "health", tls=scheme == "https")
    return ctx.run(line, node=node, echo=False).ok


def _dialing_config(spec: paths.ClusterSpec, node: paths.NodeSpec) -> str:
    """The final etcd configuration with plain URLs: TLS files for dialing peers that already
    speak https, plain listeners for those that do not yet."""
    config = etcd_config_dict(spec, node)
    for key in ETCD_URL_KEYS:
        config[key] = str(config[key]).replace("https://", "http://")
    return dump(config, paths.header(spec))


def _postmaster_pid(ctx: StepContext, node: Node) -> str:
    pid_file = f"{paths.data_dir(ctx.facts['spec'])}/postmaster.pid"
    lines = ctx.output(
        f"head -n 1 {shlex.quote(pid_file)} 2>/dev/null || true", node=node, sudo=True, echo=False
    )
    return (lines or [""])[0].strip()


# What a setup run that carries on an unfinished conversion takes from the run that began it.
CARRIED = ("convert_leader", "convert_timeline", "convert_resume", "convert_started")


def _unfinished_conversion(ctx: StepContext) -> Job | None:
    """The last earlier setup run of this cluster that began a conversion and did not finish
    it (canceled, failed, lost), if any."""
    earlier = (
        Job.objects.filter(cluster=ctx.cluster, kind=ctx.job.kind, params__has_key="convert_leader")
        .exclude(pk=ctx.job.pk)
        .order_by("-created")
        .first()
    )
    if earlier is None:
        return None
    finished = earlier.steps.filter(name="convert_finish", status__in=StepStatus.done())
    return None if finished.exists() else earlier


# --- steps --------------------------------------------------------------------------------


def convert_begin(ctx: StepContext) -> Verdict | str:
    """Note the leader and its timeline, put every node's TLS files in place, pause Patroni."""
    spec = ctx.facts["spec"]
    if spec is None or spec.tls is None:
        raise StepFailed("the cluster's spec has no certificates; nothing to convert to")
    leader = _leader(ctx)
    if leader is None:
        raise StepFailed("no primary at the moment: the conversion needs a running cluster")
    if "convert_leader" not in ctx.job.params:
        earlier = _unfinished_conversion(ctx)
        if earlier is not None:
            # Its pause is ours, not an operator's (the monitor shows any pause as
            # maintenance), and its leader is the one from before the conversion began.
            ctx.log(f"carrying on the conversion setup job #{earlier.pk} began")
            _remember(ctx, **{k: earlier.params.get(k) for k in CARRIED})
        else:
            _remember(
                ctx,
                convert_leader=leader["name"],
                convert_timeline=leader.get("timeline"),
                # An operator's maintenance mode stays on afterwards; only our pause is lifted.
                convert_resume=not ctx.cluster.maintenance,
                convert_started=time.time(),
            )
    for node in ctx.cluster.nodes.all():
        changed = tls_files_put(ctx, node, spec)
        if changed:
            ctx.log(f"{node.name}: wrote {', '.join(changed)}", host=node.name)
    if paused(ctx):
        return f"{leader['name']} leads on timeline {leader.get('timeline')}; already paused"
    pause_set(ctx, True)
    ctx.log("Patroni paused: no failover until the conversion is done")
    return f"{leader['name']} leads on timeline {leader.get('timeline')}; Patroni paused"


def convert_etcd_dial(ctx: StepContext) -> Verdict | str:
    """First pass: the member restarts with the TLS files and its plain URLs."""
    spec, node = ctx.facts["spec"], ctx.node
    if _peer_on_tls(_member(ctx, node)):
        return f"{node.name}'s etcd is on TLS already"
    path = paths.etcd_config_path(spec)
    changed = ctx.ensure_file(path, _dialing_config(spec, _node_spec(ctx, node)), mode=0o644)
    daemon = etcd_daemon(spec)
    if not changed and daemons.started_after(ctx, node, daemon, path):
        return "already reaches its peers with TLS (plain URLs until the next pass)"
    ctx.log(f"restarting etcd on {node.name} with the TLS files, plain URLs", host=node.name)
    daemons.restart(ctx, node, daemon)
    ctx.wait_until(
        lambda: _etcd_healthy(ctx, node, "http"),
        timeout=RESTART_TIMEOUT_S,
        what=f"etcd on {node.name} to be healthy again",
    )
    return "restarted with the TLS files; healthy on its plain URLs"


def convert_etcd(ctx: StepContext) -> Verdict | str:
    """Second pass: peer URL to https, then the final configuration (TLS everywhere)."""
    spec, node = ctx.facts["spec"], ctx.node
    member = _member(ctx, node)
    done = []
    if not _peer_on_tls(member):
        peer = f"https://{paths.host_port(node.address, paths.ETCD_PEER_PORT)}"
        ctx.log(f"etcd member {node.name}: peer URL → {peer}", host=node.name)
        _etcdctl(
            ctx,
            node,
            "member",
            "update",
            f"{int(member['ID']):x}",
            f"--peer-urls={peer}",
            echo=True,
        )
        done.append("peer URL updated")
    path = paths.etcd_config_path(spec)
    changed = ctx.ensure_file(path, etcd_config(spec, _node_spec(ctx, node)), mode=0o644)
    daemon = etcd_daemon(spec)
    if changed or not daemons.started_after(ctx, node, daemon, path):
        ctx.log(f"restarting etcd on {node.name} on TLS", host=node.name)
        daemons.restart(ctx, node, daemon)
        done.append("restarted on TLS")
    ctx.wait_until(
        lambda: _etcd_healthy(ctx, node, "https"),
        timeout=RESTART_TIMEOUT_S,
        what=f"etcd on {node.name} to be healthy over TLS",
    )
    if not done:
        return "already on TLS and healthy"
    return f"{', '.join(done)}; healthy over TLS with client certificates"


def convert_hold_proxy(ctx: StepContext) -> Verdict | str:
    """Stop health checks on every database server HAProxy has up (it keeps them up), so the
    REST API's restart on https moves no traffic."""
    db_names = {n.name for n in ctx.cluster.database_nodes}
    rows = setup_finish.stats(ctx, ctx.node)
    if not rows:
        raise StepFailed("HAProxy's stats did not answer; its routes cannot be held")
    held = [
        f"{r['pxname']}/{r['svname']}"
        for r in rows
        if r.get("pxname") in BACKENDS
        and r.get("svname") in db_names
        # "no check": held by an earlier run that did not finish.
        and (r.get("status", "").startswith("UP") or r.get("status") == "no check")
    ]
    held = sorted(set(held) | set(ctx.job.params.get("convert_held", [])))
    _remember(ctx, convert_held=held)
    if held:
        haproxy_runtime(ctx, ctx.node, [f"disable health {s}" for s in held])
    return f"routes held, checks paused on {', '.join(held) or 'no server'}"


def convert_patroni(ctx: StepContext) -> Verdict | str:
    """Final Patroni configuration and a restart under pause; PostgreSQL keeps running."""
    node = ctx.node
    spec = dataclasses.replace(ctx.facts["spec"], monitor_sources=monitor_sources(ctx))
    path = paths.patroni_config_path(spec)
    changed = ctx.ensure_file(
        path,
        patroni_config(spec, _node_spec(ctx, node)),
        mode=0o600,
        owner="postgres",
        group="postgres",
    )
    daemon = patroni_daemon(spec)
    if not changed and node.tls_active and daemons.started_after(ctx, node, daemon, path):
        return "Patroni already on TLS"
    if paused(ctx) is False:
        raise StepFailed("Patroni is not paused; restarting it now could start a failover")
    before = _postmaster_pid(ctx, node)
    ctx.log(f"restarting Patroni on {node.name} (paused: PostgreSQL keeps running)", host=node.name)
    daemons.restart(ctx, node, daemon)
    tls_mark_active(ctx, node)

    def answers_on_https() -> bool:
        try:
            status, me = patroni_api.member(node, timeout=2)
        except patroni_api.PatroniUnavailable:
            return False
        return status == 200 and me.get("state") == "running"

    ctx.wait_until(
        answers_on_https,
        timeout=RESTART_TIMEOUT_S,
        what=f"Patroni on {node.name} to answer over https",
    )
    ctx.wait_until(
        lambda: any(m.get("name") == node.name for m in members(ctx)),
        timeout=RESTART_TIMEOUT_S,
        what=f"{node.name} to be listed in etcd again",
    )
    after = _postmaster_pid(ctx, node)
    kept = (
        "PostgreSQL kept running"
        if before and before == after
        else (f"PostgreSQL pid {before or '?'} → {after or '?'}")
    )
    return f"Patroni restarted: REST on https, etcd over TLS; {kept}"


def convert_haproxy(ctx: StepContext) -> Verdict | str:
    """Checks over TLS (graceful reload, state kept), then the held checks back on."""
    haproxy_runtime(ctx, ctx.node, [])  # saves the servers' state for the new process
    action = setup_finish.haproxy_apply(ctx)
    # The new process keeps the held servers up and unchecked (from the state file): their
    # checks come back on now, over TLS, before writes are looked for.
    held = ctx.job.params.get("convert_held", [])

    def checks_back_on() -> bool:
        # Until the new process has taken over, the admin socket may still be the old one's:
        # asked again while the stats (served by the new process) show a held server unchecked.
        unchecked = {
            f"{r['pxname']}/{r['svname']}"
            for r in setup_finish.stats(ctx, ctx.node)
            if r.get("status") == "no check"
        } & set(held)
        if unchecked:
            haproxy_runtime(ctx, ctx.node, [f"enable health {s}" for s in sorted(unchecked)])
        return not unchecked

    if held:
        ctx.wait_until(checks_back_on, timeout=30, interval=0.5, what="HAProxy's checks back on")
    primary = setup_finish.haproxy_wait_for_primary(ctx)
    tls_mark_active(ctx, ctx.node)
    return f"{action}; health checks over TLS on again; writes go to {primary}"


def convert_finish(ctx: StepContext) -> Verdict | str:
    """Every member runs, the leader and timeline are those from before; failover back on."""
    before = ctx.job.params.get("convert_leader"), ctx.job.params.get("convert_timeline")
    db_names = {n.name for n in ctx.cluster.database_nodes}

    def settled() -> dict | None:
        current = members(ctx)
        leader = patroni_api.leader(current)
        running = {m["name"] for m in current if m.get("state") in ("running", "streaming")}
        return leader if leader and db_names <= running else None

    leader = ctx.wait_until(settled, timeout=RESTART_TIMEOUT_S, what="every member to run")
    if leader["name"] != before[0] or leader.get("timeline") != before[1]:
        raise StepFailed(
            f"the primary is {leader['name']} on timeline {leader.get('timeline')}, it was "
            f"{before[0]} on timeline {before[1]}; automatic failover left paused"
        )
    resume = ctx.job.params.get("convert_resume", True)
    if resume and paused(ctx):
        pause_set(ctx, False)
    took = time.time() - float(ctx.job.params.get("convert_started", time.time()))
    back = "automatic failover back on" if resume else "maintenance mode stays on, as it was"
    return (
        f"{leader['name']} still leads on timeline {leader.get('timeline')}: no failover; "
        f"every node on TLS in {took:.0f} s; {back}"
    )


STEPS = {
    "convert_begin": convert_begin,
    "convert_etcd_dial": convert_etcd_dial,
    "convert_etcd": convert_etcd,
    "convert_hold_proxy": convert_hold_proxy,
    "convert_patroni": convert_patroni,
    "convert_haproxy": convert_haproxy,
    "convert_finish": convert_finish,
}
