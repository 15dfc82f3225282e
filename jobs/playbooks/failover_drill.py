"""The failover drill (issue 21 part 6): `failover_drill`. Teams test their disaster recovery
by failing the primary for real: this powers it off through its fence device on an admin's
demand, measures the outage and the loss with a writer through the proxy, powers it on again
and rebuilds it as a standby, and keeps the result in the cluster's history of drills.

1. drill_check (the agent on the witness): the primary Patroni names is still the one the drill was
   planned for, a standby can take over (streaming on its timeline within the failover lag
   limit; in synchronous mode the synchronous standby), and the primary's fence device
   answers "ON" now. Nothing is changed when this fails.
2. drill_writer: the writer (jobs.drill_writer) inserts through the proxy every 50 ms; the
   step waits for its first acknowledged rows, all from the primary.
3. drill_power_off (the agent on the witness): `action=off`, then `action=status` until
   the device confirms OFF.
4. drill_takeover: the first write another server acknowledged, and Patroni naming it leader.
5. drill_loss: the writer stopped; the acknowledged ids the new primary lacks are the RPO.
6. drill_power_on (the agent on the witness): `action=on`, the device confirms ON, the
   node's SSH answers.
7. The Rebuild job's own steps (jobs.playbooks.rebuild) on the old primary: it rejoins with
   pg_rewind (or a full copy) and is let back into HAProxy.
8. drill_finish: the old primary streams from the new one; the drill passed.

The agent gets its options and secret on stdin (jobs.playbooks.fence_test), never on its
command line. Each step writes to the drill's FailoverDrill row as it goes, so a failed drill
stays in the history with its reason. When no standby takes over, or the device cannot
confirm the off, the old primary is powered on again: it is a drill, and the cluster must not
be left without a primary.
"""

import dataclasses
import datetime
import time

import psycopg2
from django.utils import timezone

from clusters.models import Cluster, ClusterSecret, FenceDevice, Node
from jobs import drill_measure, drill_writer, patroni_api
from jobs.errors import JobRefused, StepSkipped
from jobs.models import FailoverDrill
from jobs.playbooks import drill_power, fence_test, rebuild
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.drill_checks import (
    TAKEOVER_STATES,
    drill_refusal,
    primary_of,
    takeover_refusal,
)
from jobs.playbooks.layout import patroni_layout
from jobs.playbooks.setup import with_spec
from jobs.playbooks.setup_finish import node_statuses_record
from jobs.playbooks.setup_postgres import members
from jobs.postgres_tls import proxy_tls

POSTGRES_PORT = 5432
# Acknowledged before the power-off (2 s of writes): the path through the proxy works, and an
# asynchronous standby has rows in flight to lose when the power goes.
FIRST_ROWS = 40
FIRST_ROWS_TIMEOUT_S = 30
OFF_CONFIRM_TIMEOUT_S = 60
# The lease path takes 20 to 30 s (docs/reliability.md); a slow profile longer. Past this the
# drill gives up, and powers the old primary on again.
TAKEOVER_TIMEOUT_S = 180
ON_CONFIRM_TIMEOUT_S = 120
# A real server's firmware may take minutes before its OS boots (a container takes seconds).
BOOT_TIMEOUT_S = 900
COUNT_TIMEOUT_S = 60
# Each member rewrites its key once per loop (loop_wait is at most 10 s in every profile).
MEMBER_LIST_WAIT_S = 30


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Check, write, power off, measure, power on, rebuild (the Rebuild job's steps), verify."""
    if node is not None:
        raise JobRefused("a failover drill powers off the primary; name no node")
    if reason := drill_refusal(cluster):
        raise JobRefused(reason)
    primary = primary_of(cluster)
    if params.get("confirm") != cluster.name:
        raise JobRefused(
            f"a failover drill powers {primary.name} off through its fence device: writes stop "
            "until a standby takes over, and on an asynchronous cluster acknowledged writes may "
            "be lost; repeat the cluster's name in 'confirm' to go ahead"
        )
    rebuild_steps = [
        dataclasses.replace(s, title=f"Rebuild {primary.name}: {s.title}")
        for s in rebuild.plan(cluster, primary, {})
    ]
    return [
        # The steps that act on the primary name it; its fence agent runs on the witness.
        StepSpec("drill_check", "Check the fence device and a standby to take over", primary),
        StepSpec("drill_writer", "Start writing through the proxy"),
        StepSpec("drill_power_off", "Power off through the fence device; wait for OFF", primary),
        StepSpec("drill_takeover", "Wait for the new primary's first write"),
        StepSpec("drill_loss", "Stop writing; count the acknowledged rows lost"),
        StepSpec("drill_power_on", "Power on through the fence device; wait for it", primary),
        *rebuild_steps,
        StepSpec("drill_finish", f"Verify {primary.name} streams; record the drill"),
    ]


# --- the drill's record -------------------------------------------------------------------


def _drill(ctx: StepContext) -> FailoverDrill:
    return FailoverDrill.objects.get(job=ctx.job)


def _device(ctx: StepContext) -> FenceDevice:
    return drill_power.device_of(ctx, _drill(ctx).primary_before)


def _update(ctx: StepContext, **fields) -> None:
    FailoverDrill.objects.filter(job=ctx.job).update(**fields)


def _writer(ctx: StepContext) -> "drill_writer.DrillWriter | None":
    return ctx.facts.get("drill_writer")


def _stop_writer(ctx: StepContext) -> None:
    writer = _writer(ctx)
    if writer is not None:
        writer.stop()


def recorded(step):
    """Run a drill step; when it fails, the writer stops and the drill is marked failed with
    the reason (a retry that gets further marks it running again)."""

    def wrapper(ctx: StepContext) -> Verdict | str:
        _update(ctx, outcome=FailoverDrill.Outcome.RUNNING, finished=None)
        try:
            return step(ctx)
        except StepSkipped:  # the job goes on with its next step
            raise
        except BaseException as exc:
            _stop_writer(ctx)
            _update(
                ctx,
                outcome=FailoverDrill.Outcome.FAILED,
                message=f"{ctx.step.title}: {exc}"[:2000],
                finished=timezone.now(),
            )
            raise

    wrapper.__doc__ = step.__doc__
    return wrapper


# --- the writer -----------------------------------------------------------------------------


def writer_dsn(cluster: Cluster) -> dict:
    """Where applications write (the floating address, else the first proxy), as the
    cluster's superuser, with libpq's TLS settings for the proxy."""
    password = (
        cluster.secrets.filter(name=ClusterSecret.Name.SUPERUSER)
        .values_list("value", flat=True)
        .first()
        or ""
    )
    return {
        "host": cluster.virtual_address or cluster.proxy_node.address,
        "port": POSTGRES_PORT,
        "user": patroni_layout(cluster).superuser,
        "password": password,
        "dbname": "postgres",
        **proxy_tls(cluster),
    }


def _address_names(cluster: Cluster) -> dict[str, str]:
    return {n.address: n.name for n in cluster.database_nodes}


# --- the steps ------------------------------------------------------------------------------


def _live_cluster(ctx: StepContext) -> dict:
    """Patroni's /cluster from the first database node that answers (members, pause)."""
    for node in ctx.cluster.database_nodes:
        try:
            return patroni_api.cluster(node, timeout=2)
        except patroni_api.PatroniUnavailable:
            continue
    raise StepFailed("no Patroni answers; nothing was changed")


def drill_check(ctx: StepContext) -> Verdict | str:
    """Live, before anything changes: the planned primary leads, a standby can take over, and
    the primary's fence device answers ON from the witness."""
    primary = ctx.node.name
    FailoverDrill.objects.filter(job=ctx.job).delete()  # a retry starts the drill afresh
    FailoverDrill.objects.create(
        cluster=ctx.cluster,
        job=ctx.job,
        primary_before=primary,
        replication=ctx.cluster.replication,
    )
    live = _live_cluster(ctx)
    if live.get("pause"):
        raise StepFailed(
            "Patroni is paused (maintenance mode): nothing would fail over; nothing was changed"
        )
    current = live.get("members") or []
    leader = patroni_api.leader(current)
    if leader is None:
        raise StepFailed("no primary at the moment; nothing was changed")
    if leader["name"] != primary:
        raise StepFailed(
            f"the primary is {leader['name']} now, not {primary} as when the drill was started; "
            "nothing was changed: start a new drill"
        )
    synchronous = ctx.cluster.replication == Cluster.Replication.SYNC
    if reason := takeover_refusal(current, leader, synchronous=synchronous):
        raise StepFailed(f"{reason}; nothing was changed")
    device = _device(ctx)
    agent = fence_test.AGENT_DIR + "/" + device.agent
    witness = drill_power.witness(ctx)
    if not ctx.run(f"test -x {agent}", node=witness, sudo=False, echo=False, timeout=30).ok:
        raise StepFailed(
            f"{device.agent} is not installed on the witness {witness.name}: run setup"
        )
    power, line = drill_power.power_state(ctx, device)
    if power != "on":
        raise StepFailed(
            f"{primary}'s fence device must answer ON before it is told to power off; it said: "
            f"{line}. Nothing was changed."
        )
    standbys = ", ".join(
        m["name"] for m in current if m["name"] != primary and m.get("state") in TAKEOVER_STATES
    )
    return f"{primary} leads; {standbys} can take over; its fence device says {line}"


def drill_writer_start(ctx: StepContext) -> Verdict | str:
    """The writer started through the proxy; its first rows acknowledged, by the primary."""
    drill = _drill(ctx)
    _stop_writer(ctx)
    dsn = writer_dsn(ctx.cluster)
    writer = drill_writer.DrillWriter(dsn, drill.pk)
    ctx.facts["drill_writer"] = writer
    writer.start()
    entry = f"{dsn['host']}:{dsn['port']}"
    ctx.log(f"writing into {drill_writer.TABLE} through {entry} every 50 ms")
    began = time.monotonic()
    try:
        ctx.wait_until(
            lambda: len(writer.acks) >= FIRST_ROWS,
            timeout=FIRST_ROWS_TIMEOUT_S,
            interval=0.2,
            what=f"{FIRST_ROWS} writes through {entry}",
        )
    except StepFailed as exc:
        said = writer.errors[-1][1] if writer.errors else "no error"
        raise StepFailed(f"{exc} (last error: {said})") from None
    names = _address_names(ctx.cluster)
    servers = {names.get(a.server, a.server) for a in writer.acks}
    if servers != {drill.primary_before}:
        raise StepFailed(
            f"writes through {entry} went to {', '.join(sorted(servers))}, not only to the "
            f"primary {drill.primary_before}"
        )
    took = time.monotonic() - began
    return (
        f"{len(writer.acks)} rows acknowledged by {drill.primary_before} through {entry} "
        f"in {took:.1f} s"
    )


def drill_power_off(ctx: StepContext) -> Verdict | str:
    """`action=off` to the primary's device, then `action=status` until it confirms OFF. The
    RTO counts from the moment the off is sent."""
    drill = _drill(ctx)
    device = _device(ctx)
    if _writer(ctx) is None:
        power, line = drill_power.power_state(ctx, device)
        if power == "off":  # a retry after the off went through
            return f"{drill.primary_before} is off already ({line}); the drill's writer is gone"
        raise StepFailed(
            "the drill's writer ran in an earlier attempt of this job, so nothing could be "
            f"measured; {drill.primary_before} was left on: start a new drill"
        )
    ctx.facts["off_at"] = time.monotonic()
    off_wall = timezone.now()
    _update(ctx, powered_off_at=off_wall)
    ctx.log(f"{device.agent}: action=off for {drill.primary_before} (options and secret on stdin)")
    status, out, err = drill_power.agent(ctx, device, "off")
    if status != 0:
        said = fence_test.answer_line(err) or fence_test.answer_line(out) or "no output"
        ctx.log(f"the agent did not confirm the off ({said}, exit {status}); asking its status")
    try:
        line = drill_power.wait_power(ctx, device, "off", OFF_CONFIRM_TIMEOUT_S)
    except StepFailed as exc:
        drill_power.power_on_again(ctx, device, "the device did not confirm the off")
        raise StepFailed(f"{exc}; nothing was measured") from None
    confirmed = timezone.now()
    _update(ctx, off_confirmed_at=confirmed)
    took = (confirmed - off_wall).total_seconds()
    return f"{drill.primary_before} powered off: {line} {took:.1f} s after the off was sent"


def drill_takeover(ctx: StepContext) -> Verdict | str:
    """The first write a server other than the old primary acknowledged after the off (the
    RTO), then Patroni naming that server leader."""
    drill = _drill(ctx)
    names = _address_names(ctx.cluster)
    old = next((a for a, n in names.items() if n == drill.primary_before), "")
    writer, off_at = _writer(ctx), ctx.facts.get("off_at")
    if writer is None or off_at is None:
        return _takeover_unmeasured(ctx, drill)
    seen: list[drill_measure.Takeover] = []

    def taken_over() -> bool:
        found = drill_measure.takeover(list(writer.acks), old, off_at)
        if found is not None:
            seen.append(found)
        return found is not None

    remaining = max(1.0, TAKEOVER_TIMEOUT_S - (time.monotonic() - off_at))
    try:
        ctx.wait_until(taken_over, timeout=remaining, interval=0.2, what="a write on a new primary")
    except StepFailed:
        said = writer.errors[-1][1] if writer.errors else "none"
        _stop_writer(ctx)
        drill_power.power_on_again(ctx, _device(ctx), "no standby took over")
        raise StepFailed(
            f"no new primary acknowledged a write within {TAKEOVER_TIMEOUT_S} s of the power-off "
            f"(the writer's last error: {said}); {drill.primary_before} was powered on again: "
            "look at the cluster page, then rebuild it if it does not rejoin by itself"
        ) from None
    result = seen[0]
    new = names.get(result.first.server, result.first.server)
    leader = ctx.wait_until(
        lambda: (patroni_api.leader(members(ctx)) or {}).get("name"),
        timeout=30,
        interval=0.5,
        what="Patroni to name the new leader",
    )
    if leader != new:
        raise StepFailed(f"writes went to {new} but Patroni names {leader} leader")
    first_wall = drill.powered_off_at + datetime.timedelta(seconds=result.rto_s)
    _update(
        ctx,
        primary_after=new,
        first_write_at=first_wall,
        rto_s=result.rto_s,
        outage_s=result.outage_s,
    )
    return (
        f"{new} took over: its first write {result.rto_s:.1f} s after the power-off "
        f"(writes stopped for {result.outage_s:.1f} s)"
    )


def _takeover_unmeasured(ctx: StepContext, drill: FailoverDrill) -> Verdict:
    """A retry after the writer stopped: the new primary is named, nothing is measured."""
    leader = ctx.wait_until(
        lambda: (patroni_api.leader(members(ctx)) or {}).get("name"),
        timeout=TAKEOVER_TIMEOUT_S,
        interval=1,
        what="a primary",
    )
    if leader == drill.primary_before:
        raise StepFailed(
            f"{drill.primary_before} leads again (it was powered on when no standby took over): "
            "nothing to rebuild; start a new drill"
        )
    _update(ctx, primary_after=leader, message="not measured: the writer of an earlier attempt")
    return Verdict.warn(f"{leader} is the primary; not measured (the job was retried)")


def drill_loss(ctx: StepContext) -> Verdict | str:
    """The writer stopped; the acknowledged ids the new primary lacks are the RPO. The drill's
    rows are removed once counted."""
    drill = _drill(ctx)
    writer = _writer(ctx)
    if writer is None:
        return Verdict.warn("not measured: the drill's writer ran in an earlier attempt")
    writer.stop()
    dsn = writer_dsn(ctx.cluster)
    stored: list[set[int]] = []

    def counted() -> bool:
        try:
            stored[:] = [drill_writer.stored_ids(dsn, drill.pk)]
        except psycopg2.Error as exc:
            ctx.log(f"counting through the proxy: {str(exc).strip().splitlines()[0]}")
            return False
        return True

    ctx.wait_until(counted, timeout=COUNT_TIMEOUT_S, interval=1, what="the rows to be counted")
    acks = list(writer.acks)
    lost = drill_measure.lost_ids(acks, stored[0])
    _update(ctx, acknowledged=len(acks), rpo_rows=len(lost))
    try:
        drill_writer.forget(dsn, drill.pk)
    except psycopg2.Error as exc:  # kept rows cost little; the next drill's ids are its own
        ctx.log(f"the drill's rows were not removed: {str(exc).strip().splitlines()[0]}")
    said = f"{len(lost)} of {len(acks)} acknowledged rows lost"
    if lost:
        ctx.log(f"lost ids: {drill_measure.ids_text(lost)}")
        if drill.replication == Cluster.Replication.SYNC:
            return Verdict.warn(f"{said}: a synchronous cluster must lose none")
    return said


def drill_power_on(ctx: StepContext) -> Verdict | str:
    """`action=on` to the old primary's device, the device confirms ON, its SSH answers."""
    drill = _drill(ctx)
    device = _device(ctx)
    began = time.monotonic()
    status, out, err = drill_power.agent(ctx, device, "on")
    if status != 0:
        said = fence_test.answer_line(err) or fence_test.answer_line(out) or "no output"
        ctx.log(f"the agent did not confirm the on ({said}, exit {status}); asking its status")
    line = drill_power.wait_power(ctx, device, "on", ON_CONFIRM_TIMEOUT_S)
    node = device.node
    ctx.wait_until(
        lambda: drill_power.ssh_answers(node.address, node.ssh_port),
        timeout=BOOT_TIMEOUT_S,
        interval=1,
        what=f"{node.name}'s SSH to answer",
    )
    took = time.monotonic() - began
    return f"{drill.primary_before} is on ({line}); its SSH answers {took:.0f} s after the on"


def drill_finish(ctx: StepContext) -> Verdict | str:
    """Patroni lists the old primary as a streaming standby of the new primary: the drill
    passed, with its RTO and RPO."""
    drill = _drill(ctx)
    seen: dict = {}

    def listed_streaming() -> list[dict] | None:
        current = members(ctx)
        seen.update(next((m for m in current if m.get("name") == drill.primary_before), {}))
        return current if seen.get("state") == "streaming" else None

    # The list is the members' keys in etcd, each rewritten once per Patroni loop: a node that
    # the Rebuild just saw streaming can still be listed "stopped" for up to loop_wait.
    try:
        current = ctx.wait_until(
            listed_streaming, timeout=MEMBER_LIST_WAIT_S, what="the member list to agree"
        )
    except StepFailed:
        raise StepFailed(
            f"{drill.primary_before} is {seen.get('state') or 'absent'} in Patroni's member "
            f"list, not streaming, {MEMBER_LIST_WAIT_S} s after the Rebuild"
        ) from None
    leader = (patroni_api.leader(current) or {}).get("name")
    # What the drill saw is the cluster's state now: the monitor's next pass agrees or corrects.
    node_statuses_record(cluster=ctx.cluster, members=current)
    Cluster.objects.filter(pk=ctx.cluster.pk).update(last_leader=leader or "")
    drill.refresh_from_db()
    rto = "not measured" if drill.rto_s is None else f"{drill.rto_s:.1f} s"
    rpo = (
        "not measured"
        if drill.rpo_rows is None
        else f"{drill.rpo_rows} of {drill.acknowledged} acknowledged rows"
    )
    summary = (
        f"{drill.primary_before} → {drill.primary_after or leader}: RTO {rto}, RPO {rpo}; "
        f"{drill.primary_before} streams from {leader} again"
    )
    measured = drill.rto_s is not None and drill.rpo_rows is not None
    _update(
        ctx,
        outcome=FailoverDrill.Outcome.PASSED if measured else FailoverDrill.Outcome.FAILED,
        finished=timezone.now(),
        message="" if measured else drill.message or "not measured",
    )
    return summary if measured else Verdict.warn(summary)


PLAYBOOK = Playbook(
    kind="failover_drill",
    plan=plan,
    steps={
        **{
            name: with_spec(recorded(fn))
            for name, fn in {
                "drill_check": drill_check,
                "drill_writer": drill_writer_start,
                "drill_power_off": drill_power_off,
                "drill_takeover": drill_takeover,
                "drill_loss": drill_loss,
                "drill_power_on": drill_power_on,
                "drill_finish": drill_finish,
            }.items()
        },
        # The Rebuild job's own steps on the old primary (already wrapped with_spec).
        **{name: recorded(fn) for name, fn in rebuild.PLAYBOOK.steps.items()},
    },
)
