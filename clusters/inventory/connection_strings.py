"""The application's libpq connection strings, built from the inventory and its secrets."""

from urllib.parse import quote

from clusters.models import Cluster


def cluster_connection_strings(cluster: Cluster) -> dict | None:
    """libpq URIs for the application role (password included), or None without an app database.

    Callers must check the user may see them and audit the read.
    """
    if not cluster.database_name:
        return None
    password = cluster.secrets.filter(name="application").values_list("value", flat=True).first()
    if password is None:
        return None
    user, db = quote(cluster.database_user), quote(cluster.database_name)
    auth = f"{user}:{quote(password, safe='')}"
    proxy = cluster.proxy_node
    hosts = ",".join(f"{_host(n.address)}:5432" for n in cluster.database_nodes)
    return {
        "read_write": f"postgresql://{auth}@{_host(proxy.address)}:5432/{db}",
        "read_only": f"postgresql://{auth}@{_host(proxy.address)}:5433/{db}",
        "multi_host": f"postgresql://{auth}@{hosts}/{db}?target_session_attrs=read-write",
    }


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
