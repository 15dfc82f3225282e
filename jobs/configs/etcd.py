"""The etcd config file (`etcd --config-file`) for each member: etcd 3.4 on Debian 12, 3.5 on
Debian 13, which reads it alike (3.5 only warns that client HTTP and gRPC share a port).

etcd reads the file as YAML into its Go config struct: URL lists are comma-separated strings,
`log-outputs` is a list.

With the cluster's TLS (`spec.tls`) every URL is https and both ports demand a client
certificate from the cluster's CA (`client-cert-auth`, `peer-client-cert-auth`): Patroni and
the console's etcdctl present the node certificate; anything else is refused in the handshake.
"""

from jobs.configs.spec import (
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    TLS_CA_FILE,
    TLS_CERT_FILE,
    TLS_DIR,
    ClusterSpec,
    NodeSpec,
    etcd_data_dir,
    header,
    host_port,
)
from jobs.configs.yamlout import Value, dump

# 2 GiB: etcd's default, written out so the limit is visible; Patroni's keys need a few MB.
QUOTA_BACKEND_BYTES = 2 * 1024**3
# etcd runs as the etcd user, which must not read the postgres-readable node.key: its own copy
# of the node's key (jobs/playbooks/tls.py writes it, etcd:etcd 0600).
ETCD_KEY_FILE = f"{TLS_DIR}/etcd.key"


def etcd_members(spec: ClusterSpec) -> tuple[NodeSpec, ...]:
    """The hosts that run etcd: the proxy and the database nodes, an odd count (for quorum)."""
    return spec.etcd_members


def scheme(spec: ClusterSpec) -> str:
    """https when HA Center manages the cluster's TLS (every cluster it builds)."""
    return "https" if spec.tls is not None else "http"


def peer_url(spec: ClusterSpec, node: NodeSpec) -> str:
    return f"{scheme(spec)}://{host_port(node.address, ETCD_PEER_PORT)}"


def _client_url(spec: ClusterSpec, node: NodeSpec) -> str:
    return f"{scheme(spec)}://{host_port(node.address, ETCD_CLIENT_PORT)}"


def client_urls(spec: ClusterSpec) -> str:
    """Every member's client URL, comma-separated (etcdctl's --endpoints)."""
    return ",".join(_client_url(spec, member) for member in etcd_members(spec))


def _transport_security() -> dict[str, Value]:
    """etcd's TLS block: the node certificate, its own key copy, and client certificates from
    the cluster's CA required. Every key is written: with --config-file etcd 3.4 takes an
    omitted boolean as false (auto-tls stays off: only our CA's certificates count). In the
    peer block `client-cert-auth` is what the command line calls --peer-client-cert-auth."""
    return {
        "cert-file": TLS_CERT_FILE,
        "key-file": ETCD_KEY_FILE,
        "trusted-ca-file": TLS_CA_FILE,
        "client-cert-auth": True,
        "auto-tls": False,
    }


def etcd_config_dict(
    spec: ClusterSpec, node: NodeSpec, *, cluster_state: str = "new"
) -> dict[str, Value]:
    """The settings of `node`'s etcd member; ValueError if `node` is not a member.

    `cluster_state` is "new" when the members start together, "existing" when `node` joins a
    running cluster (after `etcdctl member add`).
    """
    members = etcd_members(spec)
    if node not in members:
        names = ", ".join(member.name for member in members)
        raise ValueError(f"{node.name} is not an etcd member of {spec.name} (members: {names}).")
    if cluster_state not in ("new", "existing"):
        raise ValueError(f"initial-cluster-state {cluster_state!r} is not new or existing.")
    config: dict[str, Value] = {
        "name": node.name,
        "data-dir": etcd_data_dir(spec),
        "listen-peer-urls": peer_url(spec, node),
        # Loopback too, so etcdctl and a local Patroni work without knowing the address (the
        # node certificate carries 127.0.0.1, so https verifies there as well).
        "listen-client-urls": (
            f"{_client_url(spec, node)},{scheme(spec)}://127.0.0.1:{ETCD_CLIENT_PORT}"
        ),
        "initial-advertise-peer-urls": peer_url(spec, node),
        "advertise-client-urls": _client_url(spec, node),
        "initial-cluster": ",".join(
            f"{member.name}={peer_url(spec, member)}" for member in members
        ),
        "initial-cluster-token": f"hacenter-{spec.name}",
        "initial-cluster-state": cluster_state,
        # Without pre-vote a returning member forced an election that knocked out the leader
        # and demoted a healthy primary for 1.3 s (DESIGN §2).
        "pre-vote": True,
        # Patroni talks v3 (etcd3); the v2 API is an unauthenticated second door.
        "enable-v2": False,
        # Patroni's etcd3 client speaks the v3 JSON gateway. Set explicitly: with a config file,
        # etcd 3.4 takes every key left out as false, and the gateway answered 404.
        "enable-grpc-gateway": True,
        "heartbeat-interval": 100,
        "election-timeout": 1000,
        # Patroni rewrites its keys every loop; hourly compaction keeps the history small.
        "auto-compaction-mode": "periodic",
        "auto-compaction-retention": "1h",
        "quota-backend-bytes": QUOTA_BACKEND_BYTES,
        "logger": "zap",
        "log-outputs": ["stderr"],
    }
    if spec.tls is not None:
        config["client-transport-security"] = _transport_security()
        config["peer-transport-security"] = _transport_security()
    return config


def etcd_config(spec: ClusterSpec, node: NodeSpec, *, cluster_state: str = "new") -> str:
    """The YAML file for `etcd --config-file` on `node`."""
    return dump(etcd_config_dict(spec, node, cluster_state=cluster_state), header(spec))
