"""Rotate the cluster's node certificates without a failover (issue 17 item 1).

New certificates from the same CA, so a node with the new one and a peer still on the old one
trust each other throughout. Node by node, standbys first, the proxy, the primary last: the
files go up (jobs.playbooks.tls), then each daemon takes them without a restart:

- etcd reads its certificate files again on every new handshake (etcd ≥ 3.2): nothing to do.
- Patroni: POST /reload (a SIGHUP) makes it compare the serial of `restapi.certfile` on disk
  with the one it serves (`RestApiServer.reload_local_certificate`, Patroni 4.1) and, when
  they differ, re-open its REST socket with the new certificate; the same reload sends
  PostgreSQL a SIGHUP.
- PostgreSQL (≥ 10) reloads its SSL files on SIGHUP: `pg_reload_conf()` as well, so the swap
  does not hang on Patroni's loop.
- HAProxy reads certificates only when it starts: reloaded gracefully if its config uses the
  node's own certificate.

Each node's step then reads the serial every daemon serves (a fresh handshake from the node,
jobs.playbooks.tls_probe) and waits until each is the new one; its verdict names them. The
last step checks that the leader and its timeline are those from before.
"""

from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import Cluster, Node, NodeStatus
from jobs import patroni_api
from jobs.configs import spec as paths
from jobs.configs.haproxy import haproxy_config
from jobs.errors import JobRefused
from jobs.models import Job
from jobs.playbooks import daemons, tls_probe
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.setup import cluster_spec, with_spec
from jobs.playbooks.setup_finish import haproxy_daemon
from jobs.playbooks.setup_postgres import members, patroni_reload
from jobs.playbooks.sql import psql
from jobs.playbooks.tls import tls_files_put

# How long a daemon gets to serve the new certificate after its reload (Patroni swaps its REST
# socket on its next loop: loop_wait is at most 10 s in every profile).
SWAP_TIMEOUT_S = 30


def ordered_nodes(cluster: Cluster) -> list[Node]:
    """Standbys first, then the proxy, the primary last (as the monitor last saw the roles):
    the primary's REST socket is re-opened only once the rest of the cluster has shown that
    the swap goes through."""
    nodes = list(cluster.nodes.all())
    primary_names = set(
        NodeStatus.objects.filter(node__cluster=cluster, role=NodeStatus.Role.PRIMARY).values_list(
            "node__name", flat=True
        )
    ) or {cluster.last_leader}

    def rank(node: Node) -> int:
        if node.kind == Node.Kind.PROXY:
            return 1
        return 2 if node.name in primary_names else 0

    return sorted(nodes, key=lambda n: (rank(n), n.name))


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Refused unless the cluster runs with HA Center's TLS on every node."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        raise JobRefused(
            f"{cluster.name} is an adopted Patroni cluster: HA Center does not manage its TLS"
        )
    if cluster.state not in (
        Cluster.State.HEALTHY,
        Cluster.State.DEGRADED,
        Cluster.State.MAINTENANCE,
    ):
        raise JobRefused(
            f"{cluster.name} is {cluster.state}; rotating certificates needs a running cluster"
        )
    if node is not None:
        raise JobRefused("certificates are rotated on every node at once; name no node")
    plain = [n.name for n in cluster.nodes.all() if not n.tls_active]
    if plain or not cluster.ca_certificate:
        raise JobRefused(
            f"not on TLS yet: {', '.join(plain) or cluster.name}. Run setup again, which "
            "converts the cluster, then rotate"
        )
    return [
        StepSpec("rotate_issue", "Issue new certificates from the cluster's CA"),
        *[
            StepSpec("rotate_node", "Put the new certificate in place", n)
            for n in ordered_nodes(cluster)
        ],
        StepSpec("rotate_verify", "Same primary, same timeline"),
    ]


def _leader(ctx: StepContext) -> tuple[str, int | None]:
    leader = patroni_api.leader(members(ctx))
    if leader is None:
        raise StepFailed("no primary at the moment; rotate once the cluster has one")
    return leader["name"], leader.get("timeline")


def _remember(ctx: StepContext, **values: object) -> None:
    # Kept with the job, not in facts: a retry that resumes at a node's step must still know
    # the leader from before and the serials it waits for.
    ctx.job.params = dict(ctx.job.params, **values)
    Job.objects.filter(pk=ctx.job.pk).update(params=ctx.job.params)


def _refresh_spec(ctx: StepContext) -> paths.ClusterSpec:
    """The spec with the certificates now in the inventory, and their keys redacted."""
    cluster = Cluster.objects.get(pk=ctx.cluster.pk)
    for value in cluster.secret_values():
        ctx.log_writer.redact.add(value)
    spec = ctx.facts["spec"] = cluster_spec(cluster)
    return spec


def rotate_issue(ctx: StepContext) -> Verdict | str:
    """Note the leader and its timeline, then a new certificate for every node (same CA)."""
    leader, timeline = _leader(ctx)
    issued = cluster_tls_ensure(cluster=ctx.cluster, renew=True)
    spec = _refresh_spec(ctx)
    if spec.tls is None:
        raise StepFailed("the cluster's spec has no certificates; run setup again first")
    serials = {name: tls_probe.certificate_serial(t.certificate) for name, t in spec.tls.nodes}
    # Strings: JSON cannot hold 159-bit integers faithfully everywhere.
    _remember(
        ctx,
        leader_before=leader,
        timeline_before=timeline,
        serials={name: f"{s:X}" for name, s in serials.items()},
    )
    for name in sorted(issued):
        ctx.log(f"{name}: new certificate, serial {tls_probe.short(serials[name])}")
    return f"{len(issued)} new certificates; {leader} leads on timeline {timeline}"


def _uses_node_certificate_in_haproxy(spec: paths.ClusterSpec) -> bool:
    config = haproxy_config(spec)
    return paths.TLS_CERT_FILE in config or paths.TLS_KEY_FILE in config


def _reload(ctx: StepContext, node: Node, spec: paths.ClusterSpec) -> list[str]:
    """Ask every daemon on `node` that does not re-read its files by itself to do so."""
    done = []
    if node.kind == Node.Kind.DATABASE:
        patroni_reload(ctx, node)
        psql(ctx, node, "SELECT pg_reload_conf();", echo=False)
        done.append("Patroni and PostgreSQL reloaded")
    if node.kind == Node.Kind.PROXY and _uses_node_certificate_in_haproxy(spec):
        running = daemons.pid(ctx, node, haproxy_daemon())
        if running:
            ctx.run(f"kill -USR2 {running}", node=node, check=True)
            done.append("HAProxy reloaded gracefully")
    return done


def rotate_node(ctx: StepContext) -> Verdict | str:
    """Put the node's new files in place, make its daemons take them, and wait until every one
    serves the new certificate (read back from a fresh handshake)."""
    node = ctx.node
    # Built from the inventory when the run started, or again by rotate_issue after it issued.
    spec = ctx.facts["spec"]
    want_hex = ctx.job.params.get("serials", {}).get(node.name)
    if spec.tls is None or want_hex is None:
        raise StepFailed("no new certificate was issued for this node; retry from the start")
    want = int(want_hex, 16)
    if tls_probe.certificate_serial(spec.tls.node(node.name).certificate) != want:
        raise StepFailed(
            f"{node.name}'s certificate in the inventory changed since this job issued it; "
            "start a new rotation"
        )
    changed = tls_files_put(ctx, node, spec)
    ctx.log(f"files: {', '.join(changed) or 'already in place'}", host=node.name)
    reloads = _reload(ctx, node, spec)
    seen: dict[str, int | None] = {}

    def all_new() -> bool:
        seen.update(tls_probe.served_serials(ctx, node, spec))
        return bool(seen) and all(s == want for s in seen.values())

    try:
        ctx.wait_until(
            all_new,
            timeout=SWAP_TIMEOUT_S,
            interval=1,
            what=f"every daemon on {node.name} to serve the new certificate",
        )
    except StepFailed as exc:
        raise StepFailed(f"{exc}: {tls_probe.describe(seen, want)}") from None
    how = "; ".join(reloads) if reloads else "no reload needed"
    if not seen:
        return f"files in place ({how}); no TLS daemon on this node"
    return f"serving {tls_probe.describe(seen, want)} ({how})"


def rotate_verify(ctx: StepContext) -> Verdict | str:
    """The leader and its timeline are those noted before the first node was touched."""
    before = ctx.job.params.get("leader_before"), ctx.job.params.get("timeline_before")
    now = _leader(ctx)
    if now[0] != before[0]:
        raise StepFailed(f"the primary changed from {before[0]} to {now[0]} during the rotation")
    if now[1] != before[1]:
        raise StepFailed(f"the timeline moved from {before[1]} to {now[1]} during the rotation")
    return f"{now[0]} still leads on timeline {now[1]}: no failover"


PLAYBOOK = Playbook(
    kind="rotate_certificates",
    plan=plan,
    steps={
        name: with_spec(fn)
        for name, fn in {
            "rotate_issue": rotate_issue,
            "rotate_node": rotate_node,
            "rotate_verify": rotate_verify,
        }.items()
    },
)
