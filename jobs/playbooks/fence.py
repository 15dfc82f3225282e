"""Fence: shut a node out that accepts writes without holding the leader key.

Started by the monitor's sentinel the moment it sees such a node (a frozen old primary that
resumed, a standby promoted by hand). Two walls: HAProxy puts the node in maintenance in every
backend (kept across reloads through the server-state file), and Patroni and PostgreSQL are
stopped on the node. Only a verified rebuild lifts it. Not "mutating": it must run even while
another job holds the cluster.

Only the sentinel fences on its own judgement (it starts the job with nobody as requester,
after every node that answers agreed on the leader). A person gets a guarded admin action at
most (``person_fence_refusal``): the node's name typed as confirmation, no other fence or
mutating job running, and never the node holding the leader key or the only writable one.
"""

import shlex

from clusters.models import Cluster, Node, NodeStatus
from jobs.errors import JobRefused
from jobs.playbooks import daemons
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.haproxy_runtime import BACKENDS, haproxy_runtime
from jobs.playbooks.layout import patroni_daemon as layout_daemon
from jobs.playbooks.layout import patroni_layout
from jobs.playbooks.setup import with_spec
from jobs.ssh import SSHError


def unsafe_to_fence(cluster: Cluster, node: Node) -> str | None:
    """Why fencing ``node`` now would stop the cluster's writes (None if it would not), by the
    monitor's last reading: the node holding the leader key, the primary, or the only node
    that accepts writes. A console that has not read the leader yet cannot tell: refused too."""
    status = NodeStatus.objects.filter(node=node).first()
    if not cluster.last_leader:
        return (
            f"the monitor has not read who holds {cluster.name}'s leader key yet, so fencing "
            f"{node.name} could stop the only primary; wait for the cluster page to show it"
        )
    if node.name == cluster.last_leader or (
        status is not None and status.role == NodeStatus.Role.PRIMARY
    ):
        return (
            f"{node.name} holds the leader key (it is the primary): fencing it would stop "
            "every write; use switchover or failover to move the primary first"
        )
    others = NodeStatus.objects.filter(
        node__cluster=cluster, node__kind=Node.Kind.DATABASE, writable=True, fenced=False
    ).exclude(node=node)
    if status is not None and status.writable and not others.exists():
        return f"{node.name} is the only node that accepts writes: fencing it stops them all"
    return None


def person_fence_refusal(cluster: Cluster, node: Node | None, params: dict) -> str | None:
    """Why a person may not fence ``node`` now (None: they may). The job-start service asks
    this for every fence a person requests; the role (admin) is checked by the pages and API."""
    if node is None or node.kind != Node.Kind.DATABASE:
        return "fence needs the database node to shut out"
    if params.get("confirm") != node.name:
        return (
            f"fencing stops PostgreSQL on {node.name} until it is rebuilt; repeat the node's "
            "name in 'confirm' to go ahead"
        )
    return unsafe_to_fence(cluster, node)


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if node is None or node.kind != Node.Kind.DATABASE:
        raise JobRefused("fence needs the database node to shut out")
    proxies = cluster.proxy_nodes
    return [
        *(
            [
                StepSpec("haproxy_maintenance", f"Put {node.name} in maintenance in HAProxy", p)
                for p in proxies  # each proxy has its own runtime state: fence in every one
            ]
            if proxies
            else [StepSpec("haproxy_maintenance", "HAProxy: no proxy in this cluster")]
        ),
        StepSpec("stop_database", "Stop Patroni and PostgreSQL", node),
    ]


def haproxy_maintenance(ctx: StepContext) -> Verdict | str:
    """The first wall: the node in maintenance in every HAProxy backend. A cluster without a
    proxy (an adopted one may have none) has no such wall; the step says so and the fence
    relies on stopping the node."""
    target = ctx.job.node.name
    if ctx.step.node is None:
        return Verdict.warn(
            f"no proxy in {ctx.cluster.name}: nothing routes to {target} that could be shut; "
            "clients that connect to it directly reach it until the next step stops it"
        )
    try:
        replies = haproxy_runtime(
            ctx, ctx.node, [f"set server {b}/{target} state maint" for b in BACKENDS]
        )
    except SSHError as exc:
        if len(ctx.cluster.proxy_nodes) < 2:
            raise
        # One of two proxies is down (the floating address is on the other): the fence must
        # not wait for it. Down, it routes nothing; back up, its checks find the node stopped.
        return Verdict.warn(
            f"{ctx.node.name} did not answer ({exc}); the other proxy is fenced, and the next "
            f"step stops {target}"
        )
    if any(r and "No such" not in r for r in replies):
        raise StepFailed(f"HAProxy refused: {' | '.join(r for r in replies if r)}")
    return f"{target} in maintenance in {', '.join(BACKENDS)}; state saved for reloads"


def stop_database(ctx: StepContext) -> Verdict | str:
    """Stop Patroni (it stops PostgreSQL), then make sure no postmaster is left."""
    layout = patroni_layout(ctx.cluster)
    verdict = daemons.stop(ctx, ctx.node, layout_daemon(ctx.cluster), timeout_s=10)
    data = shlex.quote(layout.data_dir)
    ctx.run(
        f"cd / && if [ -f {data}/postmaster.pid ]; then runuser -u postgres -- "
        f"{shlex.quote(layout.bin_dir)}/pg_ctl stop -D {data} -m immediate; fi; "
        "true",
        check=True,
    )
    NodeStatus.objects.filter(node=ctx.node).update(fenced=True)
    return f"{verdict}; PostgreSQL stopped. Rebuild {ctx.node.name} to bring it back."


PLAYBOOK = Playbook(
    kind="fence",
    plan=plan,
    steps={
        "haproxy_maintenance": with_spec(haproxy_maintenance),
        "stop_database": with_spec(stop_database),
    },
    mutating=False,
    keep_going=True,  # the second wall matters even when the first one fails
)
