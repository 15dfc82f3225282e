"""Operations on a running cluster: planned switchover and maintenance mode (Patroni pause).

Each refuses when the cluster's state makes it unsafe, says why, and is safe to run again.
"""

import time

from django.conf import settings

from clusters.alerts.events import event_record
from clusters.alerts.incidents import incident_measure
from clusters.models import Cluster, ClusterEvent, ClusterSecret, Node, NodeStatus
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.haproxy_runtime import haproxy_runtime
from jobs.playbooks.layout import patroni_layout, rest_auth
from jobs.playbooks.patroni_pause import pause_set
from jobs.playbooks.probe import WriteProbe
from jobs.playbooks.setup import with_spec
from jobs.playbooks.setup_finish import routed_writes
from jobs.playbooks.setup_postgres import members
from jobs.postgres_tls import proxy_tls
from jobs.ssh import SSHError


def _auth(ctx: StepContext) -> tuple[str, str] | None:
    return rest_auth(ctx.cluster)


def _write_probe(ctx: StepContext) -> WriteProbe:
    """Writes through the proxy; without one, straight to whichever node takes writes."""
    proxy = ctx.cluster.proxy_node
    password = (
        ctx.cluster.secrets.filter(name=ClusterSecret.Name.SUPERUSER)
        .values_list("value", flat=True)
        .first()
        or ""
    )
    user = patroni_layout(ctx.cluster).superuser
    tls = proxy_tls(ctx.cluster)
    if proxy is not None:
        # Where clients write: the floating address when the cluster has one.
        return WriteProbe(
            ctx.cluster.virtual_address or proxy.address, password, user=user, tls=tls
        )
    nodes = [n.address for n in ctx.cluster.database_nodes]
    return WriteProbe(nodes, password, user=user, tls=tls)


def _answering_node(ctx: StepContext) -> Node:
    for node in ctx.cluster.database_nodes:
        try:
            patroni_api.cluster(node, timeout=2)
            return node
        except patroni_api.PatroniUnavailable:
            continue
    raise StepFailed("no Patroni member answers")


# --- switchover ---------------------------------------------------------------------------


def plan_switchover(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Refused unless the cluster is healthy and the target (if named) is a streaming standby."""
    if cluster.state != Cluster.State.HEALTHY:
        raise JobRefused(
            f"{cluster.name} is {cluster.state}; a switchover needs a healthy "
            "cluster (a failover is the tool for a broken one)"
        )
    if node is not None and node.kind != Node.Kind.DATABASE:
        raise JobRefused(f"{node.name} is not a database node")
    # Whether the target streams is checked live in the first step, not from stored status.
    return [
        StepSpec("switchover_check", "Check the candidate", node),
        StepSpec("switchover", "Switch over and wait for the proxy"),
    ]


def switchover_check(ctx: StepContext) -> Verdict | str:
    """The candidate streams on the leader's timeline with little lag (now, not as recorded).

    Members' views lag each other by up to a Patroni loop (a standby that just reconnected
    reports its new timeline a loop later), so a candidate gets a few seconds to qualify."""
    target = ctx.step.node.name if ctx.step.node else None
    seen: dict = {}

    def qualified() -> list[dict] | None:
        current = members(ctx)
        leader = seen["leader"] = patroni_api.leader(current)
        if leader is None or target == leader["name"]:
            return [leader] if leader else None
        standbys = seen["standbys"] = [
            m
            for m in current
            if m["name"] != leader["name"] and (target is None or m["name"] == target)
        ]
        ok = [
            m
            for m in standbys
            if m.get("state") == "streaming"
            and m.get("timeline") == leader.get("timeline")
            and isinstance(m.get("lag"), int)
            and m["lag"] <= settings.SWITCHOVER_MAX_LAG_BYTES
        ]
        return ok or None

    try:
        ok = ctx.wait_until(qualified, timeout=10, interval=1, what="a qualified candidate")
    except StepFailed:
        leader = seen.get("leader")
        if leader is None:
            raise StepFailed("no primary at the moment") from None
        described = (
            ", ".join(
                f"{m['name']} ({m.get('state')}, timeline {m.get('timeline')}, lag {m.get('lag')})"
                for m in seen.get("standbys", [])
            )
            or "none"
        )
        raise StepFailed(
            f"no candidate streams on the primary's timeline {leader.get('timeline')} with "
            f"lag ≤ {settings.SWITCHOVER_MAX_LAG_BYTES} bytes: {described}"
        ) from None
    leader = seen["leader"]
    if target == leader["name"]:
        ctx.facts["candidate"] = None
        return f"{target} is already the primary; nothing to do"
    best = min(ok, key=lambda m: m["lag"])
    ctx.facts.update(candidate=best["name"], old_leader=leader["name"])
    return f"{best['name']} streams on timeline {leader.get('timeline')}, lag {best['lag']} bytes"


def _route_now(ctx: StepContext, candidate: str, old: str) -> None:
    """Tell HAProxy at once what Patroni just confirmed (the candidate holds the leader key),
    instead of waiting for its checks (rise 2 at 1 s): about 2 s less without writes. Its own
    checks go on and agree; if the runtime API fails, they route writes a little later."""
    commands = [
        f"set server primary/{candidate} health up",
        f"set server primary/{old} health down",
    ]
    for proxy in ctx.cluster.proxy_nodes:
        try:
            haproxy_runtime(ctx, proxy, commands)
        except (StepFailed, SSHError) as exc:
            ctx.log(
                f"{proxy.name}'s HAProxy runtime API did not answer ({exc}); "
                "its checks will route writes"
            )


def switchover(ctx: StepContext) -> Verdict | str:
    """POST /switchover, wait until the candidate leads and HAProxy routes writes to it only;
    a probe writer through the proxy measures how long writes stopped."""
    if "candidate" not in ctx.facts:
        switchover_check(ctx)  # a retry that resumes here: decide again from live data
    candidate, old = ctx.facts.get("candidate"), ctx.facts.get("old_leader")
    if candidate is None:
        return "nothing to do"
    proxied = ctx.cluster.proxy_node is not None
    probe = _write_probe(ctx)
    probe.start()
    try:
        leader_node = ctx.cluster.nodes.get(name=old)
        status, body = patroni_api.post(
            leader_node,
            "/switchover",
            {"leader": old, "candidate": candidate},
            auth=_auth(ctx),
            timeout=60,
        )
        if status != 200:
            raise StepFailed(f"Patroni refused the switchover: {status} {body}")
        ctx.log(f"Patroni: {body}")
        if proxied:
            _route_now(ctx, candidate, old)

        def routed() -> bool:
            leader = patroni_api.leader(members(ctx))
            return bool(
                leader
                and leader["name"] == candidate
                and (not proxied or routed_writes(ctx) == [candidate])
            )

        ctx.wait_until(
            routed,
            timeout=60,
            interval=0.3,
            what=f"{candidate} to lead" + (" and receive the proxy's writes" if proxied else ""),
        )
        routed_at = time.monotonic()
        ctx.wait_until(
            lambda: bool(probe.acks) and probe.acks[-1] > routed_at,
            timeout=30,
            interval=0.2,
            what="writes through the proxy to resume",
        )
    finally:
        probe.stop()
    downtime = probe.longest_gap()
    _record_switchover(ctx, old, candidate, downtime)
    through = "through the proxy" if proxied else "(no proxy: measured on the nodes)"
    done = f"{candidate} is primary; writes {through} stopped for {downtime:.1f} s"
    # The job ends with a cluster that can switch over again: the old primary streams.
    try:
        ctx.wait_until(
            lambda: any(m["name"] == old and m.get("state") == "streaming" for m in members(ctx)),
            timeout=60,
            interval=0.5,
            what=f"{old} to stream from {candidate}",
        )
    except StepFailed as exc:
        return Verdict.warn(f"{done}; but {exc}: rebuild {old} if it does not come back")
    return f"{done}; {old} streams from it"


def _record_switchover(ctx: StepContext, old: str, new: str, downtime: float) -> None:
    """One switchover event with the measured downtime (the monitor may have made it first)."""
    recent = ctx.cluster.events.filter(
        kind=ClusterEvent.Kind.SWITCHOVER, new_primary=new, at__gte=ctx.job.started
    ).first()
    if recent:
        recent.downtime_s = round(downtime, 1)
        recent.details = dict(recent.details, measured_by_probe=True, job=ctx.job.pk)
        recent.save(update_fields=["downtime_s", "details"])
        incident_measure(incident_id=recent.incident_id)  # the probe's figure is the finer one
    else:
        # What the monitor needs to finish the timings as it does for its own hand-overs: the
        # old primary's last reading bounds which promotion in Patroni's history is this one
        # (an earlier one to the same node is not), and its LSN then gives the WAL lost.
        last = NodeStatus.objects.filter(node__cluster=ctx.cluster, node__name=old).first()
        seen = last.last_seen if last else None
        event_record(
            ctx.cluster,
            ClusterEvent.Kind.SWITCHOVER,
            f"switchover from {old} to {new}",
            old_primary=old,
            new_primary=new,
            downtime_s=round(downtime, 1),
            details={
                "measured_by_probe": True,
                "job": ctx.job.pk,
                "old_last_healthy": seen.isoformat() if seen else None,
                "old_wal_position": last.wal_position if last else None,
                "promoted_at": None,
                "proxy_routed_at": None,
            },
        )
    Cluster.objects.filter(pk=ctx.cluster.pk).update(last_leader=new)


# --- maintenance --------------------------------------------------------------------------


def _plan_maintenance(pause: bool):
    def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
        if cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING):
            raise JobRefused(f"{cluster.name} is not set up yet")
        return [StepSpec("set_pause", "Pause Patroni" if pause else "Resume Patroni")]

    return plan


def set_pause(ctx: StepContext) -> Verdict | str:
    """PATCH /config {pause}; verified by reading /cluster back. Idempotent."""
    pause = ctx.job.kind == "maintenance_on"
    pause_set(ctx, pause)
    Cluster.objects.filter(pk=ctx.cluster.pk).update(maintenance=pause)
    if pause:
        return "maintenance mode on: Patroni will not fail over or restart PostgreSQL"
    return "maintenance mode off: automatic failover is back"


SWITCHOVER = Playbook(
    kind="switchover",
    plan=plan_switchover,
    steps={"switchover_check": with_spec(switchover_check), "switchover": with_spec(switchover)},
)
MAINTENANCE_ON = Playbook(
    kind="maintenance_on", plan=_plan_maintenance(True), steps={"set_pause": with_spec(set_pause)}
)
MAINTENANCE_OFF = Playbook(
    kind="maintenance_off", plan=_plan_maintenance(False), steps={"set_pause": with_spec(set_pause)}
)
