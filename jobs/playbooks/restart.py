"""Safe restart of a node's PostgreSQL (the primary's too) without a failover: pause Patroni,
restart through Patroni's REST API, verify, resume. The vendor manuals' "shut the slave down
before restarting the master" becomes one job."""

from clusters.models import Cluster, Node
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.models import Job
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.operations import _answering_node, _auth
from jobs.playbooks.setup import with_spec
from jobs.playbooks.setup_postgres import current_primary, members, verify_streaming
from jobs.playbooks.sql import psql


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if cluster.state not in (
        Cluster.State.HEALTHY,
        Cluster.State.DEGRADED,
        Cluster.State.MAINTENANCE,
    ):
        raise JobRefused(f"{cluster.name} is {cluster.state}; restart needs a running cluster")
    if node is not None and node.kind != Node.Kind.DATABASE:
        raise JobRefused("only database nodes run PostgreSQL")
    return [
        StepSpec("pause", "Pause automatic failover"),
        StepSpec("restart", "Restart PostgreSQL", node),
        StepSpec("resume", "Resume automatic failover"),
    ]


def _paused(ctx: StepContext) -> bool:
    return bool(patroni_api.cluster(_answering_node(ctx)).get("pause"))


def _set_pause(ctx: StepContext, pause: bool) -> None:
    status, body = patroni_api.post(
        _answering_node(ctx), "/config", {"pause": pause}, auth=_auth(ctx), method="PATCH"
    )
    if status != 200:
        raise StepFailed(f"Patroni refused: {status} {body}")
    ctx.wait_until(lambda: _paused(ctx) == pause, timeout=30, what=f"pause={pause}")


def _remember(ctx: StepContext, was_paused: bool) -> None:
    # Kept with the job, not in facts: a retry must still know whether to resume.
    ctx.job.params = dict(ctx.job.params, was_paused=was_paused)
    Job.objects.filter(pk=ctx.job.pk).update(params=ctx.job.params)


def pause(ctx: StepContext) -> Verdict | str:
    if _paused(ctx):
        _remember(ctx, True)
        return "already in maintenance mode; it stays on afterwards"
    _remember(ctx, False)
    _set_pause(ctx, True)
    return "paused: Patroni will not fail over while PostgreSQL restarts"


def restart(ctx: StepContext) -> Verdict | str:
    """POST /restart on the node, then prove it serves again in its role."""
    if not _paused(ctx):
        raise StepFailed("Patroni is not paused; restarting now could trigger a failover")
    primary = current_primary(ctx)
    node = ctx.step.node or primary
    status, body = patroni_api.post(node, "/restart", {}, auth=_auth(ctx), timeout=90)
    if status != 200:
        raise StepFailed(f"Patroni on {node.name} refused to restart: {status} {body}")
    ctx.log(f"Patroni: {body}", host=node.name)

    def serving() -> bool:
        me = next((m for m in members(ctx) if m["name"] == node.name), {})
        return me.get("state") in ("running", "streaming")

    ctx.wait_until(serving, timeout=120, what=f"PostgreSQL on {node.name} to serve again")
    if current_primary(ctx) != primary:
        raise StepFailed(f"the primary changed to {current_primary(ctx).name} during the restart")
    if node == primary:
        psql(ctx, node, "SELECT 1;", echo=False)
        return f"{node.name} restarted and is still the primary"
    return f"{node.name} restarted; {verify_streaming(ctx, node, primary)}"


def resume(ctx: StepContext) -> Verdict | str:
    if ctx.job.params.get("was_paused", False):
        return "left in maintenance mode, as it was before"
    _set_pause(ctx, False)
    return "automatic failover is back"


PLAYBOOK = Playbook(
    kind="restart",
    plan=plan,
    steps={
        name: with_spec(fn)
        for name, fn in {"pause": pause, "restart": restart, "resume": resume}.items()
    },
    keep_going=True,  # resume even when the restart failed; restart refuses unless paused
)
