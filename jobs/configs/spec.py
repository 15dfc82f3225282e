"""What the config generators know about a cluster: frozen dataclasses, paths, role names.

A playbook builds a `ClusterSpec` from the inventory and the decrypted credentials; the
generators are pure functions of it. The spec checks again what the forms already checked,
because every name and address lands in a config file where a stray character changes meaning.
"""

import ipaddress
import re
from dataclasses import dataclass, field

from jobs.configs.profiles import PROFILES

NAME_RE = re.compile(r"\A[a-z][a-z0-9-]{0,62}\Z")
# As clusters.inventory.validators checks them: the path goes unquoted into haproxy.cfg, the
# unit into a sudoers rule and a shell script.
CHECK_PATH_RE = re.compile(r"\A/[A-Za-z0-9._~!&()*+,;=:@%/?-]{0,199}\Z")
UNIT_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.@-]{0,91}\.service\Z")

# Where things live on the servers (the playbooks use the same functions).
PATRONI_VENV = "/opt/patroni"
HAPROXY_CONFIG = "/etc/haproxy/haproxy.cfg"
HAPROXY_SOCKET = "/run/haproxy/admin.sock"
HAPROXY_STATE_FILE = "/var/lib/haproxy/server-state"
SOCKET_DIR = "/run/postgresql"
# The cluster's TLS files on every node (written by jobs/playbooks/tls.py): the CA certificate,
# the node's certificate (its name and addresses as SANs) and its key, which only the daemons
# that present it can read.
TLS_DIR = "/etc/hacenter/tls"
TLS_CA_FILE = f"{TLS_DIR}/ca.crt"
TLS_CERT_FILE = f"{TLS_DIR}/node.crt"
TLS_KEY_FILE = f"{TLS_DIR}/node.key"

# Role names; their passwords come in `Secrets`.
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
REWIND_USER = "rewind_user"
REST_API_USER = "hacenter"
MONITOR_USER = "hacenter_monitor"
STATS_USER = "hacenter"

# Ports.
POSTGRES_PORT = 5432
REPLICA_PORT = 5433
PATRONI_PORT = 8008
# The fast-path agent's peer on each database node (jobs/agents/fastpath.py --peer): the
# witness asks it whether this node still reaches the primary; mutual TLS, the witness only.
FASTPATH_PEER_PORT = 8010
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
STATS_PORT = 7000
# With two proxies: an HTTP answer from HAProxy on loopback, keepalived's check that the local
# HAProxy works (jobs/configs/keepalived.py).
HEALTH_PORT = 7001
# Ports the proxy host already uses, so an HTTP frontend cannot take them.
PROXY_RESERVED_PORTS = frozenset(
    {POSTGRES_PORT, REPLICA_PORT, STATS_PORT, HEALTH_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT}
)

DATABASE = "database"
PROXY = "proxy"


@dataclass(frozen=True)
class NodeSpec:
    """One server: its name in the cluster, its IP address, and whether it runs PostgreSQL."""

    name: str
    address: str
    kind: str  # DATABASE | PROXY

    def __post_init__(self) -> None:
        if not NAME_RE.fullmatch(self.name):
            raise ValueError(f"Node name {self.name!r} is not [a-z][a-z0-9-]*.")
        if self.kind not in (DATABASE, PROXY):
            raise ValueError(f"Node {self.name}: kind {self.kind!r} is not database or proxy.")
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            # etcd will not listen on a host name, and pg_hba host names need reverse DNS.
            raise ValueError(
                f"Node {self.name}: {self.address!r} is not an IP address; the configs need "
                "the node's IP (resolve the host name first)."
            ) from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            raise ValueError(f"Node {self.name}: a scoped address ({self.address}) is not usable.")
        if ip.is_unspecified or ip.is_multicast or ip.is_loopback:
            # The configs also bind 127.0.0.1 on the same ports; a loopback node would clash.
            raise ValueError(f"Node {self.name}: {self.address} cannot be a server's address.")


@dataclass(frozen=True)
class Secrets:
    """The cluster's passwords; `repr=False` keeps them out of logs and tracebacks."""

    superuser: str = field(repr=False)
    replication: str = field(repr=False)
    rewind: str = field(repr=False)
    rest_api: str = field(repr=False)
    haproxy_stats: str = field(repr=False)
    monitor: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("superuser", "replication", "rewind", "rest_api", "haproxy_stats", "monitor"):
            if not getattr(self, name):
                raise ValueError(f"The {name} password is empty.")


@dataclass(frozen=True)
class NodeTls:
    """One node's certificate and key (PEM) from the cluster's CA."""

    certificate: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class TlsSpec:
    """The cluster's CA certificate and every node's certificate, by node name; the configs
    point at the files (TLS_*_FILE), the TLS step writes them."""

    ca_certificate: str
    nodes: tuple[tuple[str, NodeTls], ...]
    # pg_hba `hostssl` for clients too (replication and HA Center's own roles always use TLS).
    require_client_tls: bool = True

    def node(self, name: str) -> NodeTls:
        return dict(self.nodes)[name]


@dataclass(frozen=True)
class HttpFrontend:
    """An application port on the proxy sent to the same port family on the current primary."""

    listen_port: int
    app_port: int
    # The application's own health path ("" for none): HAProxy asks it after Patroni's /primary.
    check_path: str = ""

    def __post_init__(self) -> None:
        for port in (self.listen_port, self.app_port):
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ValueError(f"HTTP frontend port {port!r} is not in 1–65535.")
        if self.check_path and not CHECK_PATH_RE.fullmatch(self.check_path):
            raise ValueError(f"HTTP check path {self.check_path!r} is not a safe absolute path.")


# A parameter name as postgresql.conf spells it (extensions add dotted ones).
PARAMETER_RE = re.compile(r"\A[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?\Z")
# A path that lands unquoted in YAML and shell commands: absolute, no spaces or quotes.
SAFE_PATH_RE = re.compile(r"\A/[A-Za-z0-9._/@+-]+\Z")


@dataclass(frozen=True)
class AdoptedServer:
    """The PostgreSQL that was running on the master before HA Center took it over: where its
    data lives, and the settings, pg_hba and pg_ident rules carried into Patroni's config."""

    data_dir: str
    parameters: tuple[tuple[str, str], ...] = ()
    pg_hba: tuple[str, ...] = ()
    pg_ident: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not SAFE_PATH_RE.fullmatch(self.data_dir) or "/../" in self.data_dir + "/":
            raise ValueError(f"Data directory {self.data_dir!r} is not a plain absolute path.")
        for name, value in self.parameters:
            if not PARAMETER_RE.fullmatch(name) or "\n" in value:
                raise ValueError(f"Parameter {name!r} cannot be carried into Patroni's config.")
        for line in (*self.pg_hba, *self.pg_ident):
            if "\n" in line or "\r" in line:
                raise ValueError("A pg_hba or pg_ident rule spans lines.")


@dataclass(frozen=True)
class ClusterSpec:
    """Everything the generated configs depend on."""

    name: str
    postgres_version: int
    replication: str  # "async" | "sync"
    sync_strict: bool
    failover_profile: str  # a key of profiles.PROFILES
    client_networks: tuple[str, ...]
    nodes: tuple[NodeSpec, ...]
    secrets: Secrets
    http_frontends: tuple[HttpFrontend, ...] = ()
    # The application's systemd unit that Patroni's callbacks start on the primary only.
    application_unit: str = ""
    # Addresses of the console's workers: the monitor reads each node directly, as the
    # monitoring role only (pg_monitor), to see which nodes really accept writes.
    monitor_sources: tuple[str, ...] = ()
    # Set when setup took over the master's existing PostgreSQL (Cluster.adopt_database).
    adopted: AdoptedServer | None = None
    # The cluster's certificates; None only where HA Center does not manage TLS.
    tls: TlsSpec | None = None
    # pgBackRest's stanza when the cluster is backed up ("" when not): every database node
    # archives its WAL into the repository on `backup_repo` (a node's name).
    backup_stanza: str = ""
    backup_repo: str = ""
    # The repository holds a good backup: a new or rebuilt standby is restored from it
    # (pgBackRest's delta restore) before Patroni falls back to copying the primary.
    backup_replicas: bool = False
    # With two proxies: the floating address with its prefix length ("" for none) and VRRP's
    # virtual_router_id (keepalived, jobs/configs/keepalived.py).
    virtual_ip: str = ""
    vrrp_router_id: int = 0

    def __post_init__(self) -> None:
        if not NAME_RE.fullmatch(self.name):
            raise ValueError(f"Cluster name {self.name!r} is not [a-z][a-z0-9-]*.")
        # wal_keep_size (in the generated config) exists from PostgreSQL 13 on.
        if isinstance(self.postgres_version, bool) or not isinstance(self.postgres_version, int):
            raise ValueError(f"PostgreSQL version {self.postgres_version!r} is not a number.")
        if self.postgres_version < 13:
            raise ValueError(f"PostgreSQL {self.postgres_version} is too old; 13 or later.")
        if self.replication not in ("async", "sync"):
            raise ValueError(f"Replication {self.replication!r} is not async or sync.")
        if self.failover_profile not in PROFILES:
            raise ValueError(f"Unknown failover profile {self.failover_profile!r}.")
        for cidr in self.client_networks:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"Client network {cidr!r} is not CIDR ({exc}).") from None
        for source in self.monitor_sources:
            ipaddress.ip_address(source)  # ValueError for anything but one address
        names = [node.name for node in self.nodes]
        addresses = [str(ipaddress.ip_address(node.address)) for node in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"Node names repeat: {', '.join(names)}.")
        if len(set(addresses)) != len(addresses):
            # Every node listens on the same ports, so two nodes cannot share an address.
            raise ValueError(f"Node addresses repeat: {', '.join(addresses)}.")
        if sum(node.kind == PROXY for node in self.nodes) not in (1, 2):
            raise ValueError("A cluster has one proxy node, or two.")
        if self.virtual_ip:
            vip = ipaddress.ip_interface(self.virtual_ip)  # ValueError for anything else
            # Two proxies share it; one holds it alone once the second is removed (until a
            # new second proxy is added: jobs/playbooks/proxies.py).
            if not 1 <= self.vrrp_router_id <= 255:
                raise ValueError("A floating address needs a router id 1-255.")
            if str(vip.ip) in addresses:
                raise ValueError(f"The floating address {vip.ip} is a node's own address.")
        if not self.database_nodes:
            raise ValueError("A cluster needs at least one database node.")
        if self.application_unit and not UNIT_RE.fullmatch(self.application_unit):
            raise ValueError(f"Application unit {self.application_unit!r} is not a service name.")
        listen_ports = [frontend.listen_port for frontend in self.http_frontends]
        if len(set(listen_ports)) != len(listen_ports):
            raise ValueError(f"HTTP frontend ports repeat: {listen_ports}.")
        if taken := sorted(PROXY_RESERVED_PORTS.intersection(listen_ports)):
            raise ValueError(f"HTTP frontend port(s) {taken} are already used on the proxy.")

    @property
    def database_nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(node for node in self.nodes if node.kind == DATABASE)

    @property
    def proxy(self) -> NodeSpec:
        """The first proxy: the etcd witness when there are two."""
        return self.proxies[0]

    @property
    def proxies(self) -> tuple[NodeSpec, ...]:
        return tuple(node for node in self.nodes if node.kind == PROXY)

    @property
    def virtual_address(self) -> str:
        """The floating address alone ("" without one)."""
        return self.virtual_ip.split("/")[0]

    @property
    def etcd_members(self) -> tuple[NodeSpec, ...]:
        """The proxy (as witness) and the database nodes, an odd number of them.

        An even member count adds no fault tolerance (4 members survive one loss, as 3 do) but
        one more host whose loss counts against the quorum, so the last database node is left
        out then. The proxy comes first: the etcd leader is best kept on it (DESIGN §2).
        """
        members = (self.proxy, *self.database_nodes)
        if len(members) % 2 == 0:
            members = members[:-1]
        return members


def data_dir(spec: ClusterSpec) -> str:
    """PostgreSQL's data directory on every database node: the adopted server's own (standbys
    copy it to the same path), else one named after the cluster."""
    if spec.adopted is not None:
        return spec.adopted.data_dir
    return f"/var/lib/postgresql/{spec.postgres_version}/{spec.name}"


def bin_dir(version: int) -> str:
    return f"/usr/lib/postgresql/{version}/bin"


def patroni_config_path(spec: ClusterSpec) -> str:
    return f"/etc/patroni/{spec.name}.yml"


def etcd_config_path(spec: ClusterSpec) -> str:
    return f"/etc/hacenter/etcd-{spec.name}.yml"


def etcd_data_dir(spec: ClusterSpec) -> str:
    return f"/var/lib/etcd/hacenter-{spec.name}"


def bracketed(address: str) -> str:
    """An IPv6 address in brackets, so a port can follow it; an IPv4 address as it is."""
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


def host_port(address: str, port: int) -> str:
    """`address:port` as etcd URLs, Patroni and HAProxy (2.6 accepts `[v6]:port`) read it."""
    return f"{bracketed(address)}:{port}"


def host_cidr(address: str) -> str:
    """The one-host network of `address`, as pg_hba wants it (/32 or /128)."""
    return str(ipaddress.ip_network(address))


def header(spec: ClusterSpec) -> str:
    """The first line of every generated file (safe: the name matched NAME_RE)."""
    return f"# Generated by HA Center for cluster {spec.name}; changes here are overwritten."
