"""Node changes for proxies: add a second proxy, replace one, remove the second (issue 20).

The same three jobs as for database nodes (`add_node`, `replace_node`, `remove_node`, in
jobs/playbooks/nodes.py), whose plans hand a proxy to the plans here. The steps are setup's:

- ``add``: a cluster has one or two proxies. The new one gets its login, packages and TLS files
  (HAProxy checks Patroni over TLS with the CA), every node's firewall lets it in, every
  database node's pg_hba lets it in (clients reach PostgreSQL from the proxy's address) and
  its certificate names its address (clients verify it through the proxy), then HAProxy on
  the new proxy and, with a floating address, keepalived on both. It never runs etcd: the
  first proxy stays the witness, so the new one's name must sort after the witness's.
- ``remove``: only the second proxy (never the witness, never the last one); its HAProxy and
  keepalived stop with their configs moved aside, the other proxy's keepalived holds the
  floating address alone (if the removed one held it, the address moves over as its
  keepalived stops), the others' firewalls and pg_hba drop its address, the node goes last.
- ``replace``: the inventory already points the name at the new server; refused while the old
  server still answers. The second proxy is set up like an added one; the witness also moves
  its etcd member (remove the old, add the new) after checking the two other members are
  healthy: with one of three gone, two remain, still a majority.

Every change ends with a write through the floating address (or the first proxy) and through
each proxy's own address.
"""

import secrets
import socket

import psycopg2

from clusters.alerts.events import event_record
from clusters.inventory.virtual_ip import virtual_ip_problems
from clusters.models import Cluster, ClusterEvent, Node
from jobs.configs import keepalived as keepalived_config
from jobs.configs import spec as paths
from jobs.configs.etcd import scheme
from jobs.errors import JobRefused
from jobs.playbooks import daemons, rotate_certificates, setup_finish, tls_probe
from jobs.playbooks.base import StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.remove import _move_aside
from jobs.playbooks.setup_etcd import etcdctl_line
from jobs.playbooks.setup_keepalived import keepalived_daemon
from jobs.postgres_tls import proxy_tls
from jobs.ssh import SSHError

MAX_PROXIES = 2


def _is_witness(cluster: Cluster, node: Node) -> bool:
    return cluster.proxy_node == node


def _setup_steps(cluster: Cluster, node: Node) -> list[StepSpec]:
    """Setup's steps for one new proxy server, then what the rest of the cluster needs."""
    return [
        StepSpec("check_login", "SSH login and sudo", node),
        StepSpec("install_packages", "Install packages", node),
        StepSpec("tls_files", "CA, node certificate and keys", node),
        *[StepSpec("firewall", "Host firewall (nftables)", n) for n in cluster.nodes.all()],
    ]


def _cluster_steps(cluster: Cluster, node: Node) -> list[StepSpec]:
    """After the proxy's own setup: certificates and pg_hba on the database nodes, HAProxy on
    the proxy, keepalived on every proxy (the witness first, so the last waits for a holder).

    The certificate first: Patroni skips its certificate check on a reload that also finds its
    config file changed (Patroni 4.1, `if local or sighup and reload_local_certificate()`), so
    the two reloads must not fall into one. The certificate step waits until Patroni serves
    the new one; the config's reload comes after."""
    database = list(cluster.database_nodes)
    return [
        *[
            StepSpec("proxy_certificate", f"Certificate names {node.name}'s address", n)
            for n in database
        ],
        *[StepSpec("patroni_configure", f"pg_hba lets {node.name} in", n) for n in database],
        StepSpec("haproxy", "Configure and start HAProxy", node),
        *[
            StepSpec("keepalived", f"Floating address {cluster.virtual_address}", p)
            for p in cluster.proxy_nodes
            if cluster.virtual_ip
        ],
        StepSpec("proxy_verify", "A write through the floating address and each proxy"),
    ]


def add_plan(cluster: Cluster, node: Node) -> list[StepSpec]:
    """The new proxy is in the inventory already (jobs.node_changes.node_add)."""
    proxies = cluster.proxy_nodes
    if len(proxies) > MAX_PROXIES:
        raise JobRefused(
            f"{cluster.name} has {len(proxies) - 1} proxies already; a cluster has at most "
            f"{MAX_PROXIES} (replace one instead)"
        )
    if len(proxies) == 1:
        raise JobRefused(f"{node.name} is {cluster.name}'s proxy already; add a new server")
    if _is_witness(cluster, node):
        witness = proxies[1]
        raise JobRefused(
            f"the first proxy by name is the etcd witness ({witness.name}); name the new "
            f"proxy so it sorts after {witness.name}"
        )
    if cluster.virtual_ip and (
        problems := virtual_ip_problems(
            cluster.virtual_ip,
            [p.address for p in proxies],
            [n.address for n in cluster.nodes.all()],
        )
    ):
        raise JobRefused(" ".join(problems))
    return [*_setup_steps(cluster, node), *_cluster_steps(cluster, node)]


def replace_plan(cluster: Cluster, node: Node) -> list[StepSpec]:
    """Like add for the second proxy; the witness also moves its etcd member."""
    witness = _is_witness(cluster, node)
    return [
        StepSpec("check_old_proxy", "The old server is gone", node),
        *([StepSpec("check_etcd_quorum", "The other etcd members are healthy")] if witness else []),
        *_setup_steps(cluster, node),
        *([StepSpec("etcd_membership", "etcd members match the nodes")] if witness else []),
        # With the witness moved, every Patroni's etcd hosts name its new address (the same
        # step rewrites pg_hba).
        *_cluster_steps(cluster, node),
    ]


def remove_plan(cluster: Cluster, node: Node, params: dict) -> list[StepSpec]:
    """Only the second proxy: the witness runs etcd's third member."""
    proxies = cluster.proxy_nodes
    if len(proxies) < 2:
        raise JobRefused(f"{node.name} is {cluster.name}'s only proxy; clients need one")
    if _is_witness(cluster, node):
        raise JobRefused(
            f"{node.name} is the etcd witness (the third member); remove the other proxy, "
            f"or replace {node.name} with a new server"
        )
    if params.get("confirm") != node.name:
        raise JobRefused(
            f"removing {node.name} stops its HAProxy and keepalived and takes it out of "
            f"{cluster.name}; repeat the node's name in 'confirm' to go ahead"
        )
    params["node_name"] = node.name  # kept with the job: the node row goes in the last steps
    rest = [p for p in proxies if p != node]
    return [
        StepSpec("stop_proxy", f"Stop {node.name}'s HAProxy and keepalived", node),
        *[
            StepSpec("keepalived", f"{p.name} holds {cluster.virtual_address} alone", p)
            for p in rest
            if cluster.virtual_ip
        ],
        *[
            StepSpec("firewall", f"Host firewall without {node.name}", n)
            for n in cluster.nodes.exclude(pk=node.pk)
        ],
        *[
            StepSpec("patroni_configure", f"pg_hba without {node.name}", n)
            for n in cluster.database_nodes
        ],
        StepSpec("forget_node", f"Take {node.name} out of the inventory"),
        StepSpec("proxy_verify", "A write through the floating address and each proxy"),
    ]


def _answers(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        return False
    return True


def check_old_proxy(ctx: StepContext) -> Verdict | str:
    """Refuse while the old server answers on HAProxy's or etcd's ports: two proxies under one
    name would both serve, and an old witness would still count as an etcd member."""
    old = ctx.job.params["old_address"]
    ports = [paths.POSTGRES_PORT, paths.REPLICA_PORT, paths.STATS_PORT, paths.ETCD_CLIENT_PORT]
    open_ports = [p for p in ports if _answers(old, p)]
    if open_ports:
        raise StepFailed(
            f"the old server {old} still answers on port(s) "
            f"{', '.join(map(str, open_ports))}; power it off or stop HAProxy and etcd there "
            f"before replacing {ctx.node.name}"
        )
    return f"nothing answers at {old}; {ctx.node.name} moves to {ctx.node.address}"


def check_etcd_quorum(ctx: StepContext) -> Verdict | str:
    """The witness's member leaves before its new one joins: the two others must both be
    healthy then, or etcd (and Patroni's leader key with it) loses its majority."""
    spec = ctx.facts["spec"]
    others = [m for m in spec.etcd_members if m.name != ctx.job.node.name]
    sick = []
    for member in others:
        endpoint = f"{scheme(spec)}://{paths.host_port(member.address, paths.ETCD_CLIENT_PORT)}"
        line = etcdctl_line(endpoint, "endpoint", "health", tls=spec.tls is not None)
        node = ctx.cluster.nodes.get(name=member.name)
        if not ctx.run(line, node=node, echo=False).ok:
            sick.append(member.name)
    if sick:
        raise StepFailed(
            f"etcd on {', '.join(sick)} is not healthy; moving the witness's member now would "
            "leave etcd without a majority. Repair it first (rebuild the node)"
        )
    return f"etcd healthy on {' and '.join(m.name for m in others)}: 2 of 3 stay a majority"


def proxy_certificate(ctx: StepContext) -> Verdict | str:
    """The database node's certificate names every proxy's address (clients verify it through
    the proxy): the one issued for the new list goes up and its daemons reload
    (rotate_certificates' step, this node's serial noted first)."""
    spec = ctx.facts["spec"]
    if spec.tls is None:
        return "TLS is not managed by HA Center for this cluster; nothing to change"
    serial = tls_probe.certificate_serial(spec.tls.node(ctx.node.name).certificate)
    serials = dict(ctx.job.params.get("serials", {}), **{ctx.node.name: f"{serial:X}"})
    rotate_certificates._remember(ctx, serials=serials)
    return rotate_certificates.rotate_node(ctx)


def stop_proxy(ctx: StepContext) -> Verdict | str:
    """Stop HAProxy and keepalived on the leaving proxy (keepalived lets the floating address go
    as it stops), their configs moved aside, not deleted; a dead server is skipped."""
    spec = ctx.facts["spec"]
    files = [
        paths.HAPROXY_CONFIG,
        keepalived_config.keepalived_config_path(spec),
        keepalived_config.check_script_path(spec),
    ]
    try:
        stopped = [daemons.remove(ctx, ctx.node, keepalived_daemon(spec))]
        stopped.append(daemons.remove(ctx, ctx.node, setup_finish.haproxy_daemon()))
        moved = [m for f in files if (m := _move_aside(ctx, f))]
    except SSHError as exc:
        return Verdict.warn(f"unreachable ({exc}); whatever it holds stays there")
    return "; ".join(stopped) + (f"; kept {', '.join(moved)}" if moved else "")


def _write_through(ctx: StepContext, host: str, token: str) -> str:
    """One row written through `host`:5432 (HAProxy's read-write port); the server that
    answered."""
    spec = ctx.facts["spec"]
    dsn = {
        "host": host,
        "port": paths.POSTGRES_PORT,
        "user": paths.SUPERUSER,
        "password": spec.secrets.superuser,
        "dbname": "postgres",
        "connect_timeout": 5,
        **proxy_tls(ctx.cluster),
    }
    with psycopg2.connect(**dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO hacenter.setup_check (token) VALUES (%s)", [token])
        cur.execute("SELECT inet_server_addr()::text")
        answered = cur.fetchone()[0]
    conn.close()
    return answered


def proxy_verify(ctx: StepContext) -> Verdict | str:
    """Setup's check (a row through the floating address or the first proxy, read on every
    standby), then a row written through each proxy's own address."""
    verdict = setup_finish.verify(ctx)
    through = []
    for proxy in ctx.cluster.proxy_nodes:
        token = secrets.token_hex(8)

        def written(proxy: Node = proxy, token: str = token) -> str | None:
            try:
                return _write_through(ctx, proxy.address, token)
            except psycopg2.Error:
                return None

        answered = ctx.wait_until(
            written, timeout=30, interval=1, what=f"a write through {proxy.name}"
        )
        ctx.log(f"wrote token {token} through {proxy.name}:5432 (answered by {answered})")
        through.append(proxy.name)
    _record(ctx)
    return f"{verdict}; written through {' and '.join(through)}"


def _record(ctx: StepContext) -> None:
    node = ctx.job.node
    if ctx.job.kind == "replace_node":
        text = f"{node.name} moved from {ctx.job.params['old_address']} to {node.address}"
        event_record(ctx.cluster, ClusterEvent.Kind.NODE_REPLACED, text)
    elif ctx.job.kind == "add_node":
        event_record(ctx.cluster, ClusterEvent.Kind.NODE_ADDED, f"{node.name} joined as a proxy")


STEPS = {
    "check_old_proxy": check_old_proxy,
    "check_etcd_quorum": check_etcd_quorum,
    "proxy_certificate": proxy_certificate,
    "stop_proxy": stop_proxy,
    "proxy_verify": proxy_verify,
}
