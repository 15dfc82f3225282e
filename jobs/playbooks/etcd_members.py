"""Change etcd's membership on a running cluster, one member at a time, keeping the quorum.

Node changes (add, replace, remove) can change which hosts run etcd (`ClusterSpec.etcd_members`:
the proxy and an odd number of database nodes) or where one of them lives. The step here makes
etcd's own member list match the spec: first remove members that left or moved (a dead host's
member counts against the quorum until removed), then add each new member with
`etcdctl member add` and start it with `initial-cluster-state: existing`, waiting until it is
healthy before the next. Every command runs on the proxy against its local etcd, the one member
that never moves; except while the proxy itself is being replaced (`anchor`).
"""

import json
import shlex

from clusters.models import Node
from jobs.configs import spec as paths
from jobs.configs.etcd import etcd_config, peer_url, scheme
from jobs.playbooks import daemons
from jobs.playbooks.base import StepContext, StepFailed, Verdict
from jobs.playbooks.setup_etcd import etcd_daemon, etcd_verify, etcdctl_line


def local_etcdctl(*args: str, tls: bool = True) -> str:
    """An etcdctl command line against the proxy's own member (over TLS, presenting the node
    certificate, for every cluster HA Center builds)."""
    protocol = "https" if tls else "http"
    return etcdctl_line(
        f"{protocol}://127.0.0.1:{paths.ETCD_CLIENT_PORT}", *args, tls=tls, command_timeout="10s"
    )


def _local(spec: paths.ClusterSpec, *args: str) -> str:
    return local_etcdctl(*args, tls=spec.tls is not None)


def anchor(ctx: StepContext) -> Node:
    """Where the membership commands run: the proxy (the witness), unless this job replaces
    the witness itself, whose new server has no etcd until it joins; then the first database
    node that is a member (it stays one throughout)."""
    proxy = ctx.cluster.proxy_node
    if ctx.job.kind == "replace_node" and ctx.job.node_id == proxy.pk:
        spec = ctx.facts["spec"]
        first = next(m for m in spec.etcd_members if m.name != proxy.name)
        return ctx.cluster.nodes.get(name=first.name)
    return proxy


def member_list(ctx: StepContext) -> list[dict]:
    """etcd's members as `{id, name, peer}`; a member added but not started has no name."""
    lines = ctx.output(
        _local(ctx.facts["spec"], "member", "list", "-w", "json"),
        node=anchor(ctx),
        echo=False,
    )
    found = json.loads("".join(lines)).get("members", [])
    return [
        {"id": m["ID"], "name": m.get("name", ""), "peer": (m.get("peerURLs") or [""])[0]}
        for m in found
    ]


def _start_joining_member(ctx: StepContext, node: Node, spec: paths.ClusterSpec) -> None:
    """Start etcd on a node that joins: an empty data dir (an old one is moved aside, never
    deleted) and a config that says the cluster already exists."""
    member = next(m for m in spec.etcd_members if m.name == node.name)
    daemon = etcd_daemon(spec)
    daemons.stop(ctx, node, daemon)
    data = paths.etcd_data_dir(spec)
    aside = shlex.quote(f"{data}.joined-{ctx.job.created:%Y%m%dT%H%M%SZ}")
    ctx.run(
        f"if [ -e {data} ]; then mv -T {data} {aside}; fi; "
        f"mkdir -p {data} && chown etcd:etcd {data} && chmod 700 {data}",
        node=node,
        check=True,
    )
    ctx.ensure_file(
        paths.etcd_config_path(spec),
        etcd_config(spec, member, cluster_state="existing"),
        node=node,
        mode=0o644,
    )
    daemons.start(ctx, node, daemon)


def etcd_membership(ctx: StepContext) -> Verdict | str:
    """Make etcd's member list match the cluster's nodes: remove, then add and start."""
    spec = ctx.facts["spec"]
    wanted = {m.name: peer_url(spec, m) for m in spec.etcd_members}
    members = member_list(ctx)
    changes = []
    for m in members:
        if m["peer"] not in wanted.values():
            ctx.run(
                _local(spec, "member", "remove", f"{m['id']:x}"),
                node=anchor(ctx),
                check=True,
            )
            changes.append(f"removed {m['name'] or '?'} ({m['peer']})")
    present = {m["peer"]: m for m in members if m["peer"] in wanted.values()}
    for name, url in wanted.items():
        member = present.get(url)
        if member is not None and member["name"]:
            continue  # a running member; its data dir holds the cluster, nothing to do
        if member is None:
            ctx.run(
                _local(spec, "member", "add", name, f"--peer-urls={url}"),
                node=anchor(ctx),
                check=True,
            )
        node = ctx.cluster.nodes.get(name=name)
        _start_joining_member(ctx, node, spec)

        def joined(url: str = url) -> bool:
            return any(m["peer"] == url and m["name"] for m in member_list(ctx))

        ctx.wait_until(joined, timeout=60, interval=1, what=f"etcd on {name} to join")
        changes.append(f"added {name} ({url})")
    if not changes:
        return f"etcd members already {', '.join(wanted)}"
    # Staying members keep running on their data; their files should still name the new list
    # (the same file setup writes), so a later setup run finds nothing to change.
    for member in spec.etcd_members:
        if present.get(peer_url(spec, member), {}).get("name"):
            ctx.ensure_file(
                paths.etcd_config_path(spec),
                etcd_config(spec, member),
                node=ctx.cluster.nodes.get(name=member.name),
            )
    if len(member_list(ctx)) != len(wanted):
        raise StepFailed(f"etcd has {len(member_list(ctx))} members, expected {len(wanted)}")
    health = etcd_verify(ctx)
    return f"{'; '.join(changes)}; {health}"


def etcd_member_repair(ctx: StepContext) -> Verdict | str:
    """If this node runs an etcd member, make it healthy again: restart it on its data, or,
    when its data is gone (a wiped disk), remove the member and let it join again empty.

    The health probe is asked only of a member whose daemon runs: against a stopped one (the
    usual case after a power-off without systemd) etcdctl retries until its command timeout,
    which cost every such Rebuild 5 s for an answer the pid already gives."""
    spec = ctx.facts["spec"]
    me = next((m for m in spec.etcd_members if m.name == ctx.node.name), None)
    if me is None:
        return "not an etcd member"
    endpoint = f"{scheme(spec)}://{paths.host_port(me.address, paths.ETCD_CLIENT_PORT)}"
    health = etcdctl_line(endpoint, "endpoint", "health", tls=spec.tls is not None)

    def healthy() -> bool:
        return ctx.run(health, node=ctx.cluster.proxy_node, echo=False).ok

    if daemons.pid(ctx, ctx.node, etcd_daemon(spec)) and healthy():
        return "etcd member healthy"
    data = paths.etcd_data_dir(spec)
    if ctx.run(f"[ -d {data}/member ]", echo=False).ok:
        ctx.ensure_file(paths.etcd_config_path(spec), etcd_config(spec, me), mode=0o644)
        started = daemons.start(ctx, ctx.node, etcd_daemon(spec))
        ctx.wait_until(healthy, timeout=60, interval=1, what=f"etcd on {ctx.node.name}")
        return f"etcd member back on its data ({started})"
    for m in member_list(ctx):
        if m["peer"] == peer_url(spec, me):
            ctx.run(
                _local(spec, "member", "remove", f"{m['id']:x}"),
                node=ctx.cluster.proxy_node,
                check=True,
            )
    return "its etcd data was gone; " + etcd_membership(ctx)
