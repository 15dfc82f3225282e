"""Export and import of the inventory as JSON, without secrets.

The export holds credentials by name, user and kind (never a key, passphrase or password),
and each cluster with its nodes and their pinned host keys (public keys, not secrets). Alert
channels are left out: a webhook URL often embeds its receiver's token.

An import is validated by the same forms and checks as the pages and the API, and is all or
nothing. It creates clusters, never credentials: a credential without its secret would be
useless, so each one a cluster names must exist already (create it first, with its secret).
Each pinned host key must match its fingerprint. Generated cluster passwords are not in the
export, so a cluster that was set up elsewhere must be set up again from this console.
"""

from django.db import transaction
from django.utils import timezone

from clusters.inventory.services import InvalidInput, cluster_create
from clusters.inventory.ssh_keys import fingerprint_of
from clusters.inventory.validators import normalize_address
from clusters.models import Cluster, Credential, ScannedHostKey

FORMAT, VERSION = "hacenter-inventory", 1


def inventory_export() -> dict:
    """The inventory as a JSON-ready dict, without secrets."""
    clusters = []
    for cluster in Cluster.objects.prefetch_related("nodes__credential").order_by("name"):
        clusters.append(
            {
                "name": cluster.name,
                "replication": cluster.replication,
                "failover_profile": cluster.failover_profile,
                "postgres_version": cluster.postgres_version,
                "sync_strict": cluster.sync_strict,
                "client_networks": cluster.client_networks,
                "http_frontends": cluster.http_frontends,
                "apt_proxy": cluster.apt_proxy,
                "adopt_database": cluster.adopt_database,
                # The CA and the node certificates stay behind (the CA's key is a secret): the
                # importing console makes its own when it sets the cluster up.
                "require_client_tls": cluster.require_client_tls,
                "database": (
                    {"name": cluster.database_name, "user": cluster.database_user}
                    if cluster.database_name
                    else None
                ),
                "nodes": [
                    {
                        "name": n.name,
                        "address": n.address,
                        "ssh_port": n.ssh_port,
                        "kind": n.kind,
                        "master": n.bootstrap_primary,
                        "credential": n.credential.name,
                        "host_key": {
                            "type": n.host_key_type,
                            "base64": n.host_key_base64,
                            "fingerprint": n.host_key_fingerprint,
                        },
                    }
                    for n in sorted(cluster.nodes.all(), key=lambda n: (n.kind, n.name))
                ],
                # Two proxies' floating address (only where there is one: older exports lack it).
                **(
                    {"virtual_ip": cluster.virtual_ip, "vrrp_router_id": cluster.vrrp_router_id}
                    if cluster.virtual_ip
                    else {}
                ),
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "credentials": [
            {"name": c.name, "username": c.username, "kind": c.kind}
            for c in Credential.objects.order_by("name")
        ],
        "clusters": clusters,
    }


def inventory_import(*, data: object, created_by=None) -> list[Cluster]:
    """Create the clusters of an export; raises InvalidInput (nothing created) on any error.

    Errors are keyed like the API's, under ``clusters[i].`` (``clusters[0].nodes[1].address``).
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput({"format": [f"This is not an HA Center inventory ({FORMAT})."]})
    if data.get("version") != VERSION:
        raise InvalidInput({"version": [f"Version {data.get('version')!r}; expected {VERSION}."]})
    raw_clusters = data.get("clusters")
    if not isinstance(raw_clusters, list):
        raise InvalidInput({"clusters": ["Expected a list of clusters."]})
    errors: dict[str, list[str]] = {}
    credentials = {c.name: c.pk for c in Credential.objects.all()}
    created = []
    with transaction.atomic():
        for i, raw in enumerate(raw_clusters):
            where = f"clusters[{i}]."
            if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list):
                errors[where + "nodes"] = ["Expected a cluster object with a list of nodes."]
                continue
            nodes = []
            for j, node in enumerate(raw["nodes"]):
                key = node.get("host_key") if isinstance(node, dict) else None
                if not isinstance(key, dict):
                    errors[f"{where}nodes[{j}].host_key"] = ["Expected type, base64, fingerprint."]
                    continue
                name = node.get("credential")
                if name not in credentials:
                    errors[f"{where}nodes[{j}].credential"] = [
                        f"No credential named {name!r} here; create it (with its secret) first."
                    ]
                    continue
                try:
                    actual = fingerprint_of(str(key.get("type")), str(key.get("base64")))
                except ValueError as exc:
                    errors[f"{where}nodes[{j}].host_key"] = [str(exc)]
                    continue
                if actual != key.get("fingerprint"):
                    errors[f"{where}nodes[{j}].host_key"] = [
                        "The host key does not match its fingerprint: the file was altered."
                    ]
                    continue
                # Pin exactly the exported key: record it as if scanned, so the one
                # cluster_create path (and all its checks) does the rest.
                ScannedHostKey.objects.update_or_create(
                    address=normalize_address(str(node.get("address"))),
                    port=node.get("ssh_port") if isinstance(node.get("ssh_port"), int) else 22,
                    fingerprint=actual,
                    defaults={"key_type": key["type"], "base64": key["base64"]},
                )
                nodes.append(
                    {k: node.get(k) for k in ("name", "address", "ssh_port", "kind", "master")}
                    | {"credential": credentials[name], "host_key_fingerprint": actual}
                )
            if any(k.startswith(where) for k in errors):
                continue
            try:
                created.append(
                    cluster_create(
                        data={k: v for k, v in raw.items() if k != "nodes"} | {"nodes": nodes},
                        created_by=created_by,
                    )
                )
            except InvalidInput as exc:
                errors.update({where + k: v for k, v in exc.field_errors.items()})
        if errors:
            raise InvalidInput(errors)  # leaving the block rolls back the keys recorded above
    return created
