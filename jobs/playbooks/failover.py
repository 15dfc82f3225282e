"""Manual failover: for a paused cluster, or when Patroni cannot choose a candidate by itself.

It may lose data (the candidate may lag the old primary), so it names that risk and needs the
cluster's name repeated; a switchover is the safe tool for a healthy cluster.
"""

from clusters.models import Cluster, Node
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.operations import _answering_node, _auth
from jobs.playbooks.setup import with_spec
from jobs.playbooks.setup_finish import routed_writes
from jobs.playbooks.setup_postgres import members


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if node is None or node.kind != Node.Kind.DATABASE:
        raise JobRefused("name the standby to promote ('node')")
    if params.get("confirm") != cluster.name:
        raise JobRefused(
            f"a manual failover to {node.name} loses every write {node.name} has not received "
            "yet; repeat the cluster's name in 'confirm' to accept that risk"
        )
    return [StepSpec("failover", f"Promote {node.name}", node)]


# Patroni's member states of a standby it can promote.
PROMOTABLE_STATES = ("running", "streaming")


def promotion_refusal(member: dict, *, synchronous: bool) -> str | None:
    """Why Patroni would refuse to promote this member (its live /cluster entry), or None.
    Asked before the failover: Patroni otherwise takes the request and the job waits out its
    90 s for a promotion that cannot happen."""
    name = member.get("name", "the candidate")
    if not member:
        return "its Patroni is not in the cluster's member list (stopped, or cut off)"
    state = member.get("state") or "unknown"
    if state not in PROMOTABLE_STATES:
        return f"its PostgreSQL is {state}: only a running standby can take over"
    if (member.get("tags") or {}).get("nofailover"):
        return f"{name} is tagged nofailover"
    if synchronous and member.get("role") not in ("sync_standby", "quorum_standby"):
        return "in synchronous mode Patroni promotes only the synchronous standby"
    return None


def failover(ctx: StepContext) -> Verdict | str:
    """POST /failover with the candidate once Patroni's live member list shows it can be
    promoted; wait until it leads and HAProxy (if the cluster has one) routes to it."""
    candidate = ctx.node.name
    me = next((m for m in members(ctx) if m["name"] == candidate), {})
    if me.get("role") in ("leader", "primary", "master"):
        return f"{candidate} is already the primary; nothing to do"
    refusal = promotion_refusal(me, synchronous=ctx.cluster.replication == Cluster.Replication.SYNC)
    if refusal:
        raise StepFailed(f"Patroni would not promote {candidate}: {refusal}. Nothing was changed.")
    lag = me.get("lag")
    ctx.log(f"{candidate} lag before the failover: {lag} bytes (may be lost)")
    status, body = patroni_api.post(
        _answering_node(ctx),
        "/failover",
        {"candidate": candidate},
        auth=_auth(ctx),
        timeout=60,
    )
    if status != 200:
        raise StepFailed(f"Patroni refused the failover: {status} {body}")
    # A cluster without a proxy (an adopted one may have none): leading is the whole answer;
    # its clients find the new primary themselves (libpq multi-host, target_session_attrs).
    proxied = ctx.cluster.proxy_node is not None
    ctx.wait_until(
        lambda: (
            (patroni_api.leader(members(ctx)) or {}).get("name") == candidate
            and (not proxied or routed_writes(ctx) == [candidate])
        ),
        timeout=90,
        interval=0.5,
        what=f"{candidate} to lead" + (" and receive the proxy's writes" if proxied else ""),
    )
    return f"{candidate} is primary (it lagged {lag} bytes before); rebuild the old primary"


PLAYBOOK = Playbook(kind="failover", plan=plan, steps={"failover": with_spec(failover)})
