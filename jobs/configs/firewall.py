"""The host firewall on each node: one nftables table of HA Center's own, `table inet hacenter`.

Who may reach the cluster's ports (issue 17 item 5):
- etcd: the client port 2379 from the cluster's nodes (Patroni on every database node, etcdctl
  on the proxy), the peer port 2380 from the etcd members only;
- Patroni's REST API (8008, database nodes) from the nodes (members and HAProxy's checks) and
  the console's workers (the monitor, setup and operations);
- PostgreSQL (5432, database nodes) and the proxy's listeners (5432, 5433, HTTP frontends) from
  the nodes, the console and the cluster's client networks;
- HAProxy's stats (7000, proxy) from the console only;
- the fast-path peer (8010, database nodes) from the witness (the first proxy) only;
- with backups: pgBackRest's TLS server (8432, database nodes and the repository host) from
  the cluster's hosts only (a restore target is let in for its restore: jobs/playbooks/restore);
- with two proxies and a floating address: VRRP (IP protocol 112, keepalived) from the other
  proxy only.
Loopback traffic is never filtered and SSH is not touched.

The table only *drops* traffic to those ports from sources not allowed; it accepts nothing on
behalf of the machine. nftables runs every base chain of a hook, and a drop in any of them is
final while an accept only ends its own chain, so the table composes with whatever firewall
the server already has (ufw, firewalld, the admin's own tables): that one still decides about
everything else, and may still drop our ports too (preflight says so).

The file is loaded with `nft -f`: it first adds then deletes the table and defines it again, so
a reload replaces the whole table in one transaction (no moment without it, no duplicate
rules), and a first load works as well as a later one.
"""

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jobs.configs.pgbackrest import TLS_PORT as BACKUP_PORT
from jobs.configs.spec import (
    DATABASE,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    FASTPATH_PEER_PORT,
    PATRONI_PORT,
    POSTGRES_PORT,
    REPLICA_PORT,
    STATS_PORT,
    ClusterSpec,
    NodeSpec,
    header,
)

TABLE = "hacenter"
FAMILY = "inet"
CONFIG_PATH = "/etc/hacenter/firewall.nft"
UNIT = "hacenter-firewall.service"
# Before the filter chains other tables usually use (priority 0): a packet we drop is counted
# here even when another table would have dropped it as well. Order does not change the result.
PRIORITY = "filter - 10"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PortRule:
    """Ports on this node and the networks that may reach them; anything else is dropped."""

    name: str  # the nftables set names derive from it: <name>_v4, <name>_v6
    title: str  # what it protects, in the rule's comment and preflight's text
    ports: tuple[int, ...]
    sources: tuple[Network, ...]

    def family(self, version: int) -> tuple[Network, ...]:
        """The sources of one IP version, overlaps merged (an interval set refuses overlaps)."""
        nets = [n for n in self.sources if n.version == version]
        return tuple(ipaddress.collapse_addresses(nets))  # type: ignore[arg-type]


def console_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The console's addresses or networks (CIDR); ValueError naming a bad one.

    A network with host bits set (`10.0.0.5/24`) is refused rather than widened: the admin
    meant either the host or the network, and the firewall must not guess which.
    """
    found = []
    for value in values:
        text = str(value).strip()
        try:
            found.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"Console network {text!r} is not an address or CIDR ({exc})."
            ) from None
    return tuple(found)


def _hosts(nodes: Iterable[NodeSpec]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n.address) for n in nodes)


def firewall_policy(
    spec: ClusterSpec, node: NodeSpec, console: Sequence[str]
) -> tuple[PortRule, ...]:
    """What `node`'s table allows, port group by port group; ValueError for bad input.

    etcd's ports are guarded on every node, member or not: nothing else may use them there, and
    the node that becomes a member later is guarded already.
    """
    if node not in spec.nodes:
        raise ValueError(f"{node.name} is not a node of {spec.name}.")
    consoles = console_networks(console)
    if not consoles:
        # Without it the monitor and every later job would be cut off from Patroni and PostgreSQL.
        raise ValueError("The console's address is unknown; the firewall would lock it out.")
    clients = tuple(ipaddress.ip_network(c) for c in spec.client_networks)
    nodes = _hosts(spec.nodes)
    rules = [
        PortRule("etcd_client", "etcd clients", (ETCD_CLIENT_PORT,), nodes),
        PortRule("etcd_peer", "etcd peers", (ETCD_PEER_PORT,), _hosts(spec.etcd_members)),
    ]
    if node.kind == DATABASE:
        rules += [
            PortRule("patroni", "Patroni REST API", (PATRONI_PORT,), nodes + consoles),
            PortRule("postgres", "PostgreSQL", (POSTGRES_PORT,), nodes + consoles + clients),
            # Only the witness asks the fast-path peer (guarded even while the fast path is off).
            PortRule("fastpath", "fast-path peer", (FASTPATH_PEER_PORT,), _hosts([spec.proxy])),
        ]
    else:
        frontends = tuple(f.listen_port for f in spec.http_frontends)
        rules += [
            PortRule(
                "proxy",
                "HAProxy listeners",
                (POSTGRES_PORT, REPLICA_PORT, *frontends),
                clients + consoles + nodes,
            ),
            PortRule("stats", "HAProxy stats", (STATS_PORT,), consoles),
        ]
    if backup_server(spec, node):
        rules.append(PortRule(BACKUP_RULE, "pgBackRest TLS server", (BACKUP_PORT,), nodes))
    return tuple(rules)


BACKUP_RULE = "pgbackrest"


def backup_server(spec: ClusterSpec, node: NodeSpec) -> bool:
    """Whether `node` runs pgBackRest's TLS server: every database node and the repository
    host of a backed-up cluster."""
    return bool(spec.backup_stanza) and (node.kind == DATABASE or node.name == spec.backup_repo)


def _set(name: str, kind: str, nets: tuple[Network, ...]) -> list[str]:
    lines = [f"\tset {name} {{", f"\t\ttype {kind}", "\t\tflags interval"]
    if nets:
        # A one-host network prints as the bare address, as nft lists it.
        shown = [str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in nets]
        lines.append(f"\t\telements = {{ {', '.join(shown)} }}")
    return [*lines, "\t}"]


def _ports(ports: tuple[int, ...]) -> str:
    return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"


def firewall_config(spec: ClusterSpec, node: NodeSpec, console: Sequence[str]) -> str:
    """The nft script for `node` (see the module's docstring): its own table, replaced atomically.

    Each port group drops IPv4 sources outside its v4 set and IPv6 sources outside its v6 set
    (`ip saddr` matches IPv4 packets only, so each family needs its own rule); an empty set
    means no source of that family may connect.
    """
    rules = firewall_policy(spec, node, console)
    # keepalived's adverts: IP protocol 112, not TCP, so a rule of its own.
    vrrp = _hosts(spec.proxies) if spec.virtual_ip and node.kind != DATABASE else ()
    lines = [
        header(spec),
        f"# Node {node.name} ({node.kind}). Only drops; the server's other firewall rules stay.",
        f"add table {FAMILY} {TABLE}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
    ]
    for rule in rules:
        lines += _set(f"{rule.name}_v4", "ipv4_addr", rule.family(4))
        lines += _set(f"{rule.name}_v6", "ipv6_addr", rule.family(6))
    if vrrp:
        lines += _set("vrrp_v4", "ipv4_addr", tuple(n for n in vrrp if n.version == 4))
        lines += _set("vrrp_v6", "ipv6_addr", tuple(n for n in vrrp if n.version == 6))
    lines += [
        "\tchain input {",
        f"\t\ttype filter hook input priority {PRIORITY}; policy accept;",
        # A node talking to itself (its own address included) goes through lo: always fine.
        '\t\tiif "lo" accept',
    ]
    for rule in rules:
        ports = _ports(rule.ports)
        for family, version in (("ip", "v4"), ("ip6", "v6")):
            lines.append(
                f"\t\ttcp dport {ports} {family} saddr != @{rule.name}_{version} counter drop "
                f'comment "{rule.title}"'
            )
    if vrrp:
        lines += [
            '\t\tip protocol 112 ip saddr != @vrrp_v4 counter drop comment "VRRP"',
            '\t\tip6 nexthdr 112 ip6 saddr != @vrrp_v6 counter drop comment "VRRP"',
        ]
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def summary(rules: Sequence[PortRule]) -> str:
    """One line for a verdict: each port group and who may reach it."""
    parts = []
    for rule in rules:
        ports = "/".join(map(str, rule.ports))
        sources = ", ".join(str(n) for n in rule.sources) or "nobody"
        parts.append(f"{ports} from {sources}")
    return "; ".join(parts)


def firewall_unit(spec: ClusterSpec) -> str:
    """`hacenter-firewall.service`: loads the table at boot, before the network comes up, so
    etcd, Patroni and PostgreSQL never listen unguarded; stopping it removes the table.

    Like Debian's own nftables.service it runs early (no default dependencies) and orders
    itself before network-pre.target, which every network manager and our daemons (after
    network-online.target) come after. It is not stopped at shutdown: the table stays until
    the end.
    """
    return (
        f"{header(spec)}\n"
        f"[Unit]\nDescription=HA Center firewall for cluster {spec.name} "
        f"(nftables table {FAMILY} {TABLE})\n"
        "DefaultDependencies=no\n"
        "Wants=network-pre.target\n"
        "Before=network-pre.target\n"
        "After=local-fs.target\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"ExecStart=/usr/sbin/nft -f {CONFIG_PATH}\n"
        f"ExecReload=/usr/sbin/nft -f {CONFIG_PATH}\n"
        # "-": stopping succeeds when the table was already deleted by hand
        f"ExecStop=-/usr/sbin/nft delete table {FAMILY} {TABLE}\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
