"""PostgreSQL parameters: read them (`read_parameters`), change them (`change_parameters`).

A change goes through Patroni's dynamic configuration (`PATCH /config`, `postgresql.parameters`),
so every node, present and future, gets it and Patroni reloads PostgreSQL itself. It is checked
first against the primary's own `pg_settings` (jobs.parameter_rules). A parameter that needs a
restart (context postmaster) is put in effect by a rolling restart: each standby restarted
through Patroni and proven to stream again, then a switchover to a caught-up standby, then the
old primary restarted as a standby. Writes through the proxy stop only for the switchover; a
probe writer measures each step's gap and the job keeps the figures in its params.

Every step reads the live state first, so a retry resumes where it failed; a failed step leaves
a cluster with a primary and its standbys, some perhaps still waiting for a restart.
"""

import json

from django.utils import timezone

from clusters.models import Cluster, ClusterEvent, Node
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.models import Job
from jobs.parameter_rules import (
    RESTART,
    Setting,
    needs_restart,
    protected_reason,
    same_value,
    validate,
)
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.operations import (
    _answering_node,
    _auth,
    _write_probe,
    switchover,
    switchover_check,
)
from jobs.playbooks.setup import with_spec
from jobs.playbooks.setup_postgres import current_primary, members, verify_streaming
from jobs.playbooks.sql import psql, quote_literal

RUNNING = (Cluster.State.HEALTHY, Cluster.State.DEGRADED, Cluster.State.MAINTENANCE)
CATALOG_SQL = (
    "SELECT json_object_agg(name, json_build_object('vartype', vartype, 'context', context, "
    "'setting', setting, 'unit', unit, 'min_val', min_val, 'max_val', max_val, "
    "'enumvals', enumvals, 'source', source, 'pending_restart', pending_restart)) "
    "FROM pg_settings;"
)
APPLY_TIMEOUT_S = 90  # Patroni notices a new dynamic configuration on its next loop
RESTART_TIMEOUT_S = 180


# --- reading ------------------------------------------------------------------------------


def read_settings(ctx: StepContext, node: Node) -> dict[str, dict]:
    """Every pg_settings row of the node, by name (one JSON line through psql)."""
    lines = psql(ctx, node, CATALOG_SQL, echo=False)
    try:
        rows = json.loads("".join(lines))
    except ValueError:
        raise StepFailed(f"pg_settings on {node.name} did not read as JSON") from None
    return rows if isinstance(rows, dict) else {}


def _shown(name: str, value: object) -> object:
    """A value fit for a page: none of a protected parameter's (primary_conninfo carries the
    replication password), none that mentions a password."""
    if protected_reason(name) or "password" in str(value).lower():
        return None
    return value


def catalog_of(rows: dict[str, dict]) -> dict[str, dict]:
    """What validation reads, with the primary's current value where it may be shown."""
    keep = ("vartype", "context", "unit", "min_val", "max_val", "enumvals")
    return {
        name: {**{k: row.get(k) for k in keep}, "setting": _shown(name, row.get("setting"))}
        for name, row in rows.items()
    }


def node_values(rows: dict[str, dict]) -> dict[str, dict]:
    """A node's parameters worth showing: set somewhere (not a built-in default) or waiting
    for a restart."""
    return {
        name: {"setting": _shown(name, row.get("setting")), "pending_restart": bool(pending)}
        for name, row in rows.items()
        if (pending := row.get("pending_restart"))
        or row.get("source") not in ("default", "override", None)
    }


def snapshot_read(ctx: StepContext) -> dict[str, dict]:
    """Read every database node that answers and store the snapshot on the cluster; returns
    the primary's rows."""
    primary = current_primary(ctx)
    primary_rows = read_settings(ctx, primary)
    nodes = {primary.name: node_values(primary_rows)}
    for node in ctx.cluster.database_nodes:
        if node != primary:
            rows = read_settings(ctx, node) if _answers(ctx, node) else {}
            nodes[node.name] = node_values(rows) if rows else {}
    snapshot = {"primary": primary.name, "catalog": catalog_of(primary_rows), "nodes": nodes}
    Cluster.objects.filter(pk=ctx.cluster.pk).update(
        pg_parameters=snapshot, pg_parameters_read=timezone.now()
    )
    return primary_rows


def _answers(ctx: StepContext, node: Node) -> bool:
    return bool(psql(ctx, node, "SELECT 1;", echo=False, check=False, timeout=15))


def read_step(ctx: StepContext) -> Verdict | str:
    """Read pg_settings on every node; changes nothing."""
    rows = snapshot_read(ctx)
    pending = sorted(n for n, r in rows.items() if r.get("pending_restart"))
    text = f"read {len(rows)} parameters"
    return text + (f"; waiting for a restart: {', '.join(pending)}" if pending else "")


# --- changing -----------------------------------------------------------------------------


def _remember(ctx: StepContext, **values: object) -> None:
    # Kept with the job, not in facts: a retry resumes with what the first steps decided.
    ctx.job.params = dict(ctx.job.params, **values)
    Job.objects.filter(pk=ctx.job.pk).update(params=ctx.job.params)


def validate_step(ctx: StepContext) -> Verdict | str:
    """Judge the requested values by the primary's pg_settings; refuse before any change."""
    rows = snapshot_read(ctx)
    judgement = validate(rows, ctx.job.params.get("parameters") or {})
    if judgement.errors:
        raise StepFailed(
            "refused: " + "; ".join(f"{n}: {why}" for n, why in judgement.errors.items())
        )
    restart = needs_restart(judgement.changes)
    if restart and not ctx.job.params.get("restart"):
        names = ", ".join(c.name for c in judgement.changes if c.action == RESTART)
        raise StepFailed(
            f"{names} needs a restart, which the confirmed preview did not say; preview again"
        )
    _remember(
        ctx,
        send={c.name: c.value for c in judgement.changes},
        expected={c.name: c.expected for c in judgement.changes},
        restart_names=[c.name for c in judgement.changes if c.action == RESTART],
    )
    described = ", ".join(f"{c.name}={c.value} ({c.action})" for c in judgement.changes)
    return f"valid on {current_primary(ctx).name}: {described}"


def apply_step(ctx: StepContext) -> Verdict | str:
    """PATCH /config with the new values; nothing to do when Patroni already holds them."""
    send: dict[str, str] = ctx.job.params["send"]
    node = _answering_node(ctx)
    held = (patroni_api.config(node).get("postgresql") or {}).get("parameters") or {}
    if all(str(held.get(name)) == value for name, value in send.items()):
        return "Patroni's dynamic configuration already holds these values"
    body = {"postgresql": {"parameters": send}}
    status, answer = patroni_api.post(node, "/config", body, auth=_auth(ctx), method="PATCH")
    if status != 200:
        raise StepFailed(f"Patroni refused the change: {status} {str(answer)[:200]}")
    ctx.log(f"Patroni's dynamic configuration now sets {', '.join(send)}")
    return f"written to Patroni's dynamic configuration: {', '.join(send)}"


def _readings(ctx: StepContext, node: Node) -> dict[str, tuple[str, bool]]:
    """The node's value and pending_restart of each changed parameter (empty if it does not
    answer)."""
    names = ", ".join(quote_literal(n) for n in ctx.job.params["expected"])
    # Every name is a quote_literal: validated names, quoted again all the same.
    sql = f"SELECT name, setting, pending_restart FROM pg_settings WHERE name IN ({names});"  # noqa: S608
    found = {}
    for line in psql(ctx, node, sql, echo=False, check=False, timeout=15):
        name, _, rest = line.partition("|")
        setting, _, pending = rest.rpartition("|")
        found[name] = (setting, pending == "t")
    return found


def _lagging(ctx: StepContext, node: Node, *, pending_ok: bool) -> list[str]:
    """The changed parameters the node does not report yet ("name=value" as it reads)."""
    expected: dict[str, str] = ctx.job.params["expected"]
    catalog = (ctx.cluster.pg_parameters or {}).get("catalog", {})
    found = _readings(ctx, node)
    behind = []
    for name, want in expected.items():
        setting = Setting.from_dict(name, catalog.get(name) or {"vartype": "string"})
        value, pending = found.get(name, ("?", False))
        if not (same_value(setting, value, want) or (pending_ok and pending)):
            behind.append(f"{name}={value}" + (" (pending restart)" if pending else ""))
    return behind


def _checked_nodes(ctx: StepContext) -> tuple[list[Node], list[str]]:
    """The nodes to check, and the names of those left out: a reload may run on a degraded
    cluster, and a member that is down takes Patroni's configuration when it comes back. A
    change that restarts runs on a healthy cluster only, and checks every node."""
    nodes = list(ctx.cluster.database_nodes)
    if ctx.job.params.get("restart_names"):
        return nodes, []
    running = {m["name"] for m in members(ctx) if m.get("state") in ("running", "streaming")}
    return [n for n in nodes if n.name in running], [n.name for n in nodes if n.name not in running]


def _left_out(text: str, down: list[str]) -> Verdict | str:
    if not down:
        return text
    text = text.replace("every node", "every running node", 1)
    return Verdict.warn(
        f"{text}; {', '.join(down)} not running: it takes the values from Patroni when it is back"
    )


def wait_applied_step(ctx: StepContext) -> Verdict | str:
    """Every node reports each new value, or says it waits for a restart."""
    ctx.cluster.refresh_from_db(fields=["pg_parameters"])
    seen: dict[str, list[str]] = {}
    nodes, down = _checked_nodes(ctx)

    def everywhere() -> bool:
        for node in nodes:
            seen[node.name] = _lagging(ctx, node, pending_ok=True)
        return not any(seen.values())

    try:
        ctx.wait_until(everywhere, timeout=APPLY_TIMEOUT_S, interval=2, what="the new values")
    except StepFailed:
        behind = "; ".join(f"{n}: {', '.join(v)}" for n, v in seen.items() if v)
        raise StepFailed(f"not every node took the new values: {behind}") from None
    if ctx.job.params.get("restart_names"):
        return "every node has the new values or waits for a restart"
    return _left_out("every node reports the new values", down)


def _restart_standbys(ctx: StepContext, *, none_left: str) -> str:
    """Restart, one at a time, each standby that does not yet run the new values; each is
    proven to stream again before the next. A probe writer measures writes through the proxy."""
    ctx.cluster.refresh_from_db(fields=["pg_parameters"])
    primary = current_primary(ctx)
    done = []
    probe = _write_probe(ctx)
    probe.start()
    try:
        for node in ctx.cluster.database_nodes:
            if node == primary or not _lagging(ctx, node, pending_ok=False):
                continue
            try:
                status, body = patroni_api.post(node, "/restart", {}, auth=_auth(ctx), timeout=90)
            except patroni_api.PatroniUnavailable as exc:
                raise StepFailed(f"cannot restart {node.name}: {exc}") from None
            if status != 200:
                raise StepFailed(f"Patroni on {node.name} refused to restart: {status} {body}")
            ctx.log(f"Patroni: {body}", host=node.name)

            def streams(name: str = node.name) -> bool:
                return any(
                    m["name"] == name and m.get("state") == "streaming" for m in members(ctx)
                )

            ctx.wait_until(streams, timeout=RESTART_TIMEOUT_S, what=f"{node.name} to stream")
            ctx.log(verify_streaming(ctx, node, primary), host=node.name)
            behind = _lagging(ctx, node, pending_ok=False)
            if behind:
                raise StepFailed(f"{node.name} restarted but reports {', '.join(behind)}")
            done.append(node.name)
    finally:
        probe.stop()
    gap = probe.longest_gap()
    _gap_record(ctx, gap)
    if not done:
        return none_left
    return f"restarted {', '.join(done)}; each streams again; longest write gap {gap:.1f} s"


def _gap_record(ctx: StepContext, gap: float) -> None:
    gaps = dict(ctx.job.params.get("write_gaps") or {})
    gaps[ctx.step.name] = round(gap, 2)
    _remember(ctx, write_gaps=gaps)
    ctx.log(f"longest gap between writes through the proxy in this step: {gap:.2f} s")


def restart_standbys_step(ctx: StepContext) -> Verdict | str:
    """Standbys first: a standby's restart does not stop writes."""
    return _restart_standbys(ctx, none_left="every standby already runs the new values")


def switchover_step(ctx: StepContext) -> Verdict | str:
    """Hand the primary role to a caught-up standby that already runs the new values, so the
    old primary can restart as a standby; skipped when the primary already runs them."""
    ctx.cluster.refresh_from_db(fields=["pg_parameters"])
    primary = current_primary(ctx)
    if not _lagging(ctx, primary, pending_ok=False):
        return f"{primary.name}, the primary, already runs the new values; no switchover"
    for node in ctx.cluster.database_nodes:
        if node != primary and (behind := _lagging(ctx, node, pending_ok=False)):
            raise StepFailed(f"{node.name} still reports {', '.join(behind)}; not switching")
    switchover_check(ctx)
    verdict = switchover(ctx)
    event = ClusterEvent.objects.filter(
        cluster=ctx.cluster, kind=ClusterEvent.Kind.SWITCHOVER, details__job=ctx.job.pk
    ).first()
    if event is not None and event.downtime_s is not None:
        _gap_record(ctx, event.downtime_s)
    return verdict


def restart_old_primary_step(ctx: StepContext) -> Verdict | str:
    """The old primary, a standby now, restarts with the new values. Patroni's demotion in the
    switchover restarts PostgreSQL already, so usually nothing is left to do."""
    return _restart_standbys(
        ctx,
        none_left="the old primary already runs the new values (the switchover restarted it "
        "as a standby)",
    )


def verify_step(ctx: StepContext) -> Verdict | str:
    """Every node reports every new value, none waits for a restart; the snapshot is renewed."""
    ctx.cluster.refresh_from_db(fields=["pg_parameters"])
    nodes, down = _checked_nodes(ctx)
    behind = {
        node.name: lagging for node in nodes if (lagging := _lagging(ctx, node, pending_ok=False))
    }
    snapshot_read(ctx)
    if behind:
        raise StepFailed(
            "not in effect: " + "; ".join(f"{n}: {', '.join(v)}" for n, v in behind.items())
        )
    values = ", ".join(f"{n}={v}" for n, v in ctx.job.params["expected"].items())
    gaps = ctx.job.params.get("write_gaps") or {}
    text = f"every node reports {values}"
    if gaps:
        text += f"; longest write gap through the proxy {max(gaps.values()):.1f} s"
    return _left_out(text, down)


# --- plans ----------------------------------------------------------------------------------


def plan_read(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING):
        raise JobRefused(f"{cluster.name} is not set up yet")
    return [StepSpec("read", "Read PostgreSQL's parameters")]


def plan_change(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """A reload needs a running cluster; a rolling restart a healthy one (it switches over)."""
    wanted = params.get("parameters")
    if not isinstance(wanted, dict) or not wanted:
        raise JobRefused("name the parameters to change: {name: value}")
    restart = bool(params.get("restart"))
    if restart and cluster.state != Cluster.State.HEALTHY:
        raise JobRefused(
            f"{cluster.name} is {cluster.state}; a change that needs a restart switches over "
            "and needs a healthy cluster"
        )
    if cluster.state not in RUNNING:
        raise JobRefused(f"{cluster.name} is {cluster.state}; a change needs a running cluster")
    if restart and cluster.maintenance:
        raise JobRefused(f"{cluster.name} is in maintenance mode; a switchover needs Patroni on")
    specs = [
        StepSpec("validate", "Check the values against the primary's pg_settings"),
        StepSpec("apply", "Write them to Patroni's dynamic configuration"),
        StepSpec("wait_applied", "Wait until every node has them (or waits for a restart)"),
    ]
    if restart:
        specs += [
            StepSpec("restart_standbys", "Restart the standbys, one at a time"),
            StepSpec("switchover", "Switch over to a standby with the new values"),
            StepSpec("restart_old_primary", "Restart the old primary as a standby"),
        ]
    return [*specs, StepSpec("verify", "Check every node reports the new values")]


READ_PARAMETERS = Playbook(
    kind="read_parameters",
    plan=plan_read,
    steps={"read": with_spec(read_step)},
    mutating=False,
)
CHANGE_PARAMETERS = Playbook(
    kind="change_parameters",
    plan=plan_change,
    steps={
        name: with_spec(fn)
        for name, fn in {
            "validate": validate_step,
            "apply": apply_step,
            "wait_applied": wait_applied_step,
            "restart_standbys": restart_standbys_step,
            "switchover": switchover_step,
            "restart_old_primary": restart_old_primary_step,
            "verify": verify_step,
        }.items()
    },
)
