"""The application's libpq connection strings, built from the inventory and its secrets."""

from urllib.parse import quote

from clusters.models import Cluster


def ca_file_name(cluster: Cluster) -> str:
    """Where the connection strings expect the user to save the cluster's CA certificate
    (relative: libpq reads it from the client's working directory; any path will do)."""
    return f"hacenter-{cluster.name}-ca.crt"


def tls_verified(cluster: Cluster) -> bool:
    """Whether clients can verify every database node against the cluster's CA now: the CA
    exists and each node serves a certificate from it (a cluster built before TLS gets there
    when setup converts it)."""
    nodes = list(cluster.database_nodes)
    return bool(cluster.ca_certificate) and bool(nodes) and all(n.tls_active for n in nodes)


def cluster_connection_strings(cluster: Cluster) -> dict | None:
    """libpq URIs for the application role (password included), or None without an app database.

    Through the floating address when the cluster has one; with two proxies also the libpq
    multi-host string naming both (`target_session_attrs=read-write`), for networks where VRRP
    is forbidden.

    With the cluster's TLS they say `sslmode=verify-full` and name the CA file the user
    downloads (`ca_file_name`): `sslmode=require` would encrypt but accept any server, so
    anyone between the client and the proxy could answer for the database. `ca_file` and
    `ca_url` tell where to get it; both are None (and the strings as before TLS) while the
    cluster cannot be verified yet.

    Callers must check the user may see them and audit the read.
    """
    if not cluster.database_name:
        return None
    password = cluster.secrets.filter(name="application").values_list("value", flat=True).first()
    if password is None:
        return None
    user, db = quote(cluster.database_user), quote(cluster.database_name)
    auth = f"{user}:{quote(password, safe='')}"
    proxies = list(cluster.proxy_nodes)
    # Clients use the floating address when the cluster has one (two proxies, keepalived).
    entry = _host(cluster.virtual_address or proxies[0].address)
    hosts = ",".join(f"{_host(n.address)}:5432" for n in cluster.database_nodes)
    tls = tls_verified(cluster)
    options = [("sslmode", "verify-full"), ("sslrootcert", ca_file_name(cluster))] if tls else []
    read_write = [("target_session_attrs", "read-write"), *options]
    both = ",".join(f"{_host(p.address)}:5432" for p in proxies)
    return {
        "read_write": f"postgresql://{auth}@{entry}:5432/{db}{_query(options)}",
        "read_only": f"postgresql://{auth}@{entry}:5433/{db}{_query(options)}",
        "multi_host": f"postgresql://{auth}@{hosts}/{db}" + _query(read_write),
        # Where a network forbids VRRP: libpq tries each proxy in turn until one gives a
        # read-write session (both route writes to the same primary).
        "proxies_multi_host": (
            f"postgresql://{auth}@{both}/{db}{_query(read_write)}" if len(proxies) > 1 else None
        ),
        "ca_file": ca_file_name(cluster) if tls else None,
        "ca_url": f"/api/v1/clusters/{cluster.pk}/ca/" if tls else None,
    }


def _query(options: list[tuple[str, str]]) -> str:
    return "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in options) if options else ""


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
