"""Clusters on the systemd lab defined through the API, as an automation user would: a saved
login, each host's key scanned (and checked against the lab's), the node list, the cluster.

Shared by the systemd lab tests and the browser tests on that lab, which all start this way.
"""

# The PostgreSQL major each Debian release's archive has (trixie has no postgresql-15).
POSTGRES = {"12": 15, "13": 17}
# The test runner's address on the lab's bridge: it plays the application.
RUNNER_NETWORK = "198.19.0.1/32"


def lab_login(api, lab, name: str) -> int:
    """The lab's root login saved as a credential named `name`; its id."""
    login = api.post(
        "/api/v1/credentials/",
        {"name": name, "username": "root", "private_key": lab.private_key_text},
    )
    assert login.status_code == 201, login.content
    return login.json()["id"]


def scanned(api, lab, host: str) -> str:
    """The host's key scanned through the API, checked against the lab's; its fingerprint."""
    address = lab.host(host).address
    scan = api.post("/api/v1/host-keys/scan/", {"address": address, "port": 22}).json()
    assert scan["fingerprint"] == lab.host_key_fingerprint(host), scan
    return scan["fingerprint"]


def scanned_nodes(api, lab, login: int, hosts: list[str] | None = None) -> list[dict]:
    """The node list of a cluster body: each host (the lab's, by default) scanned and pinned;
    the lab's proxy a proxy, the others database nodes."""
    names = [h.name for h in lab.hosts] if hosts is None else hosts
    return [
        {
            "name": name,
            "address": lab.host(name).address,
            "credential": login,
            "host_key_fingerprint": scanned(api, lab, name),
            "kind": "proxy" if name == lab.proxy.name else "database",
        }
        for name in names
    ]


def define_cluster(api, lab, name: str, **body) -> tuple[int, int]:
    """The cluster `name` of the lab's hosts through the API (asynchronous replication, the
    lab's APT proxy, the runner as its client, the release's PostgreSQL; `body` adds or
    overrides fields); its id and the login's."""
    login = lab_login(api, lab, f"{name}-root")
    data = {
        "name": name,
        "replication": "async",
        "nodes": scanned_nodes(api, lab, login),
        "apt_proxy": lab.apt_proxy_url,
        "client_networks": [RUNNER_NETWORK],
        "postgres_version": POSTGRES[lab.release],
        **body,
    }
    created = api.post("/api/v1/clusters/", data)
    assert created.status_code == 201, created.content
    return created.json()["id"], login
