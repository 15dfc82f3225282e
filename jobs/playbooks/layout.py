"""Where a cluster's Patroni lives and how to reach it: the one answer to "which namespace,
scope, config file, data directory, REST user and service" for every playbook.

A cluster HA Center built uses the paths its generators write (jobs/configs/spec.py); an
adopted cluster uses what the adopt job read from its members (`Cluster.patroni_layout`).
Nothing else should spell out those paths or names.
"""

import shlex
from dataclasses import dataclass

from clusters.models import Cluster, ClusterSecret
from jobs.configs import spec as paths
from jobs.configs.patroni import NAMESPACE
from jobs.playbooks.daemons import Daemon

PATRONI_BIN = f"{paths.PATRONI_VENV}/bin/patroni"


@dataclass(frozen=True)
class PatroniLayout:
    """One cluster's Patroni, as the playbooks and the lint need it (no secrets)."""

    scope: str
    namespace: str
    config_path: str
    data_dir: str
    bin_dir: str
    rest_user: str  # "" when the REST API asks for no authentication
    superuser: str
    replication_user: str
    etcd_hosts: tuple[str, ...]  # host:port of etcd's client URLs
    # systemd unit of an adopted cluster's Patroni (the customer's own); "" for HA Center's.
    unit: str = ""
    python: str = ""  # the interpreter that runs Patroni (reads its YAML); "" unknown
    adopted: bool = False
    socket_dir: str = paths.SOCKET_DIR  # PostgreSQL's local socket (psql connects there)
    # How etcd's clients connect: "https" with (cacert, cert, key) on the nodes, or "http".
    etcd_protocol: str = "http"
    etcd_tls_files: tuple[str, ...] = ()

    def etcdctl(self, *args: str) -> str:
        """etcdctl against the cluster's etcd, as its Patroni connects (run it with sudo)."""
        endpoints = ",".join(f"{self.etcd_protocol}://{h}" for h in self.etcd_hosts)
        flags: list[str] = []
        for flag, path in zip(("--cacert", "--cert", "--key"), self.etcd_tls_files, strict=False):
            if path:
                flags += [flag, path]
        return "ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=5s " + shlex.join(
            [*flags, f"--endpoints={endpoints}", *args]
        )


def _etcd_nodes(cluster: Cluster) -> list:
    """The proxy and the database nodes, an odd count (as ClusterSpec.etcd_members)."""
    proxy = [n for n in cluster.nodes.all() if n.kind == "proxy"]
    members = proxy[:1] + [n for n in cluster.nodes.all() if n.kind == "database"]
    return members[:-1] if len(members) % 2 == 0 else members


def built_layout(cluster: Cluster) -> PatroniLayout:
    """The layout HA Center's setup creates (the same names as jobs/configs/); a database it
    took over (`adopt_database`) keeps its own data directory, as `spec.data_dir` says. etcd
    speaks TLS once setup made it so (`Node.tls_active`)."""
    version = cluster.postgres_version
    tls = any(n.tls_active for n in cluster.nodes.all())
    return PatroniLayout(
        scope=cluster.name,
        namespace=NAMESPACE,
        config_path=f"/etc/patroni/{cluster.name}.yml",
        data_dir=cluster.adopted_from.get("data_dir")
        or f"/var/lib/postgresql/{version}/{cluster.name}",
        bin_dir=paths.bin_dir(version),
        rest_user=paths.REST_API_USER,
        superuser=paths.SUPERUSER,
        replication_user=paths.REPLICATION_USER,
        etcd_hosts=tuple(
            paths.host_port(n.address, paths.ETCD_CLIENT_PORT) for n in _etcd_nodes(cluster)
        ),
        python=f"{paths.PATRONI_VENV}/bin/python3",
        etcd_protocol="https" if tls else "http",
        etcd_tls_files=(
            (paths.TLS_CA_FILE, paths.TLS_CERT_FILE, paths.TLS_KEY_FILE) if tls else ()
        ),
    )


def patroni_layout(cluster: Cluster) -> PatroniLayout:
    """The cluster's layout: as adopted (read from its members), or as HA Center builds it."""
    stored = cluster.patroni_layout or {}
    if cluster.origin != Cluster.Origin.ADOPTED or not stored.get("scope"):
        return built_layout(cluster)
    return PatroniLayout(
        scope=stored["scope"],
        namespace=stored.get("namespace") or "/service/",
        config_path=stored["config_path"],
        data_dir=stored["data_dir"],
        bin_dir=stored.get("bin_dir") or paths.bin_dir(cluster.postgres_version),
        rest_user=stored.get("rest_user") or "",
        superuser=stored.get("superuser") or paths.SUPERUSER,
        replication_user=stored.get("replication_user") or paths.REPLICATION_USER,
        etcd_hosts=tuple(stored.get("etcd_hosts") or ()),
        unit=stored.get("unit") or "",
        python=stored.get("python") or "",
        adopted=True,
        socket_dir=stored.get("socket_dir") or paths.SOCKET_DIR,
        etcd_protocol="https" if stored.get("etcd_protocol") == "https" else "http",
        etcd_tls_files=tuple(stored.get("etcd_tls_files") or ()),
    )


def rest_auth(cluster: Cluster) -> tuple[str, str] | None:
    """The credentials for Patroni's unsafe REST endpoints (None: it asks for none)."""
    layout = patroni_layout(cluster)
    if not layout.rest_user:
        return None
    password = (
        ClusterSecret.objects.filter(cluster=cluster, name=ClusterSecret.Name.REST_API)
        .values_list("value", flat=True)
        .first()
    )
    return (layout.rest_user, password or "")


def patroni_daemon(cluster: Cluster) -> Daemon:
    """Patroni as a service on a database node: HA Center's own unit (or process), or the
    adopted cluster's existing systemd unit, which the console starts and stops but never
    rewrites."""
    layout = patroni_layout(cluster)
    if layout.adopted:
        unit = layout.unit or "patroni.service"
        return Daemon(
            name=unit.removesuffix(".service"),
            argv=("patroni", layout.config_path),
            user="postgres",
            description=f"Patroni ({unit})",
            unit_name=unit,
        )
    return Daemon(
        name=f"patroni-{cluster.name}",
        argv=(PATRONI_BIN, layout.config_path),
        user="postgres",
        description="Patroni",
        env={"HOME": "/var/lib/postgresql", "PATH": "/usr/bin:/bin"},
    )
