"""Setup's PostgreSQL steps: Patroni in a venv, the primary's bootstrap, standbys that stream."""

import re
import shlex

from django.conf import settings

from clusters.models import Cluster, Node, NodeStatus
from jobs import patroni_api
from jobs.configs import spec as paths
from jobs.playbooks import wheels
from jobs.playbooks.base import StepContext, StepFailed, Verdict
from jobs.playbooks.daemons import Daemon, start
from jobs.playbooks.layout import rest_auth
from jobs.playbooks.sql import lsn_to_int, psql

PATRONI_BIN = f"{paths.PATRONI_VENV}/bin/patroni"


def patroni_daemon(spec: paths.ClusterSpec) -> Daemon:
    return Daemon(
        name=f"patroni-{spec.name}",
        argv=(PATRONI_BIN, paths.patroni_config_path(spec)),
        user="postgres",
        description="Patroni",
        env={"HOME": "/var/lib/postgresql", "PATH": "/usr/bin:/bin"},
    )


def install_patroni(ctx: StepContext) -> Verdict | str:
    """Patroni from PyPI in /opt/patroni, from wheels the console uploads (no index needed)."""
    want = settings.PATRONI_VERSION
    have = ctx.output(f"{PATRONI_BIN} --version 2>/dev/null || true", echo=False)
    if have and have[0].split()[-1] == want:
        return f"Patroni {want} already installed in {paths.PATRONI_VENV}"
    python, machine = ctx.output(
        'python3 -c \'import sys, platform; print("%d.%d" % sys.version_info[:2]); '
        "print(platform.machine())'"
    )[:2]
    folder = wheels.ensure_wheels(python, machine, ctx.log)
    tarball = wheels.tarball(folder)
    pip_wheel = next(folder.glob("pip-*.whl")).name
    requirement = shlex.quote(wheels.PATRONI_REQUIREMENT.format(version=want))
    ctx.log(f"uploading {len(tarball) // 1024} KB of wheels", host=ctx.node.name)
    # One command: unpack stdin into a private temp dir, install from it, always remove it.
    ctx.run(
        'tmp=$(mktemp -d) && tar -x -C "$tmp" && '
        f"python3 -m venv --without-pip {paths.PATRONI_VENV} && "
        f'{paths.PATRONI_VENV}/bin/python "$tmp/{pip_wheel}/pip" install -q '
        f'--disable-pip-version-check --no-index --find-links "$tmp" {requirement}; '
        'rc=$?; rm -rf "$tmp"; exit $rc',
        stdin=tarball,
        timeout=900,
        check=True,
    )
    have = ctx.output(f"{PATRONI_BIN} --version")
    return f"installed {have[0]} (Python {python}) in {paths.PATRONI_VENV}"


def patroni_reload(ctx: StepContext, node: Node) -> None:
    status, body = patroni_api.post(node, "/reload", {}, auth=rest_auth(ctx.cluster))
    if status not in (200, 202):
        raise StepFailed(f"Patroni on {node.name} refused to reload: {status} {body}")


def members(ctx: StepContext) -> list[dict]:
    """Patroni's member list from the first database node that answers (empty if none)."""
    for node in ctx.cluster.database_nodes:
        try:
            return patroni_api.cluster(node, timeout=2).get("members", [])
        except patroni_api.PatroniUnavailable:
            continue
    return []


def wait_for_sync_standby(ctx: StepContext, timeout: float = 60) -> str | None:
    """On a synchronous cluster, wait until Patroni names a synchronous standby and return its
    name (None on an async cluster). Until then commits are not protected and Patroni would
    promote nobody: a freeze of the primary right after setup or a rebuild stalled with no
    failover."""
    if ctx.cluster.replication != Cluster.Replication.SYNC:
        return None

    def named() -> str | None:
        synchronous = (
            m
            for m in members(ctx)
            if NodeStatus.role_from_patroni(m.get("role")) == NodeStatus.Role.SYNC_REPLICA
        )
        return next((m["name"] for m in synchronous), None)

    return ctx.wait_until(
        named, timeout=timeout, interval=0.5, what="Patroni to name a synchronous standby"
    )


def bootstrap_primary(ctx: StepContext) -> Verdict | str:
    """Start Patroni on the master; it initialises the database and takes the leader key."""
    spec = ctx.facts["spec"]
    current = patroni_api.leader(members(ctx))
    if current and current["name"] != ctx.node.name:
        start(ctx, ctx.node, patroni_daemon(spec))
        return f"the cluster already has a primary, {current['name']}; Patroni runs here too"
    if current is None and ctx.cluster.state not in (
        Cluster.State.NEW,
        Cluster.State.PROVISIONING,
    ):
        return _restart_without_a_leader(ctx)
    started = start(ctx, ctx.node, patroni_daemon(spec))

    def leads() -> dict | None:
        found = patroni_api.leader(members(ctx))
        return (
            found
            if found and found["name"] == ctx.node.name and found.get("state") == "running"
            else None
        )

    leader = ctx.wait_until(
        leads,
        timeout=settings.SETUP_PRIMARY_TIMEOUT_S,
        interval=1,
        what=f"{ctx.node.name} to hold the leader key",
    )
    return f"{started}; {ctx.node.name} is primary on timeline {leader.get('timeline')}"


def _restart_without_a_leader(ctx: StepContext) -> str:
    """A cluster set up before, with no leader now (its servers were off, or Patroni stopped):
    Patroni starts on every database node and elects the one with the latest data. Waiting
    for the master of the first setup instead would wait in vain whenever another node is
    ahead of it (Patroni lets no member lead that lags the last leader's position)."""
    spec = ctx.facts["spec"]
    for node in ctx.cluster.database_nodes:
        start(ctx, node, patroni_daemon(spec))
    leader = ctx.wait_until(
        lambda: patroni_api.leader(members(ctx)),
        timeout=settings.SETUP_PRIMARY_TIMEOUT_S,
        interval=1,
        what="a database node to take the leader key",
    )
    return (
        "no primary when setup began: Patroni started on every database node, and "
        f"{leader['name']} took the leader key"
    )


def primary_position(ctx: StepContext, primary: Node) -> tuple[int, str]:
    """A fresh WAL position of the primary and its timeline (from the WAL file name)."""
    row = psql(
        ctx,
        primary,
        "SELECT pg_current_wal_lsn(), substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8);",
        echo=False,
    )[0]
    lsn, timeline = row.split("|")
    return int(timeline, 16), lsn


def verify_streaming(ctx: StepContext, node: Node, primary: Node, timeout: float = 60) -> str:
    """Proof that `node` streams from `primary`: its received timeline is the primary's and it
    replayed past a fresh LSN of the primary (`state = 'streaming'` alone is not proof)."""
    timeline, target = primary_position(ctx, primary)

    def caught_up() -> str | None:
        rows = psql(
            ctx,
            node,
            "SELECT received_tli, pg_last_wal_replay_lsn() FROM pg_stat_wal_receiver;",
            echo=False,
            check=False,
        )
        if not rows or "|" not in rows[0]:
            return None
        tli, replay = rows[0].split("|")
        ok = (
            tli == str(timeline)
            and re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", replay)
            and lsn_to_int(replay) >= lsn_to_int(target)
        )
        return replay if ok else None

    replay = ctx.wait_until(
        caught_up,
        timeout=timeout,
        interval=0.5,
        what=f"{node.name} to replay past {target} on timeline {timeline}",
    )
    return (
        f"streams from {primary.name} on timeline {timeline}; replayed {replay} "
        f"≥ primary's {target}"
    )


def wait_streaming_member(ctx: StepContext, node: Node, timeout: float) -> None:
    def streaming() -> bool:
        me = next((m for m in members(ctx) if m["name"] == node.name), {})
        return me.get("state") == "streaming"

    ctx.wait_until(
        streaming, timeout=timeout, interval=1, what=f"{node.name} to stream from the primary"
    )


def current_primary(ctx: StepContext, wait_s: float = 30) -> Node:
    """The primary the database nodes' Patronis agree on. A node whose network just came back
    may still show an old view, or no leader until its etcd link is back (the chaos suite's
    network cut): wait up to `wait_s` for agreement rather than act on one node's word."""
    verdict: list[str] = []

    def agreed() -> str | None:
        views, silent = [], []
        for node in ctx.cluster.database_nodes:
            try:
                views.append(patroni_api.cluster(node, timeout=2).get("members", []))
            except patroni_api.PatroniUnavailable as exc:
                silent.append(f"{node.name}: {exc}")
        name, why = agreed_leader(views)
        verdict[:] = ["; ".join([why, *silent])]  # what each node answered, for the error
        return name

    try:
        name = ctx.wait_until(agreed, timeout=wait_s, interval=1, what="one agreed primary")
    except StepFailed:
        raise StepFailed(f"the cluster has no primary right now ({verdict[0]})") from None
    return ctx.cluster.nodes.get(name=name)


def agreed_leader(views: list[list[dict]]) -> tuple[str | None, str]:
    """The leader named by every member list that names one, or None and why not. A list
    without a leader (its node cannot reach etcd) neither counts for nor against."""
    named = {leader["name"] for view in views if (leader := patroni_api.leader(view))}
    if not views:
        return None, "no Patroni answers"
    if not named:
        return None, "no node reports a leader"
    if len(named) > 1:
        return None, f"the nodes disagree: {' and '.join(sorted(named))} each shown as leader"
    return named.pop(), ""


def start_standby(ctx: StepContext) -> Verdict | str:
    """Start Patroni on a standby and wait until it provably streams. After a failover the
    node setup planned as a standby may be the primary: then there is nothing to wait for."""
    started = start(ctx, ctx.node, patroni_daemon(ctx.facts["spec"]))
    primary = current_primary(ctx)
    if primary == ctx.node:
        return f"{started}; {ctx.node.name} is the primary now (since a failover)"
    wait_streaming_member(ctx, ctx.node, settings.SETUP_STANDBY_TIMEOUT_S)
    return verify_streaming(ctx, ctx.node, primary)
