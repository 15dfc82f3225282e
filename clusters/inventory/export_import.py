"""Export and import of the inventory as JSON, without secrets.

The export holds credentials by name, user and kind (never a key, passphrase or password),
and each cluster with its nodes and their pinned host keys (public keys, not secrets). Alert
channels are left out: a webhook URL often embeds its receiver's token. A database node's fence
device goes with its method and options but not its secret; on import, a device whose method
needs one is created only when the file was given its ``secret`` by hand, else left out with a
notice (the node keeps the lease path until its device is defined and tested here).

An import is validated by the same forms and checks as the pages and the API, and is all or
nothing. It creates clusters, never credentials: a credential without its secret would be
useless, so each one a cluster names must exist already (create it first, with its secret).
Each pinned host key must match its fingerprint. Generated cluster passwords are not in the
export, so a cluster that was set up elsewhere must be set up again from this console.
"""

from django.db import transaction
from django.utils import timezone

from clusters.inventory.fence_methods import METHODS
from clusters.inventory.fencing import fence_device_set
from clusters.inventory.services import InvalidInput, cluster_create
from clusters.inventory.ssh_keys import fingerprint_of
from clusters.inventory.validators import normalize_address
from clusters.models import Cluster, Credential, FenceDevice, Node, ScannedHostKey

FORMAT, VERSION = "hacenter-inventory", 1
# The fast-failover window's bounds, in seconds (clusters.web.fast_failover_setting's minutes).
WINDOW_S = (60, 7 * 24 * 3600)


def inventory_export() -> dict:
    """The inventory as a JSON-ready dict, without secrets."""
    clusters = []
    every = Cluster.objects.prefetch_related("nodes__credential", "nodes__fence_device")
    for cluster in every.order_by("name"):
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
                "application_unit": cluster.application_unit,
                "fast_failover": cluster.fast_failover,
                "fast_failover_window_s": cluster.fast_failover_window_s,
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
                        **_fence_device_export(n),
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


def _fence_device_export(node: Node) -> dict:
    """The node's fence device without its secret, as ``{"fence_device": ...}`` ({} if none)."""
    try:
        device = node.fence_device
    except FenceDevice.DoesNotExist:
        return {}
    return {"fence_device": {"method": device.method, "options": dict(device.options)}}


def inventory_import(
    *, data: object, created_by=None, notices: list[str] | None = None
) -> list[Cluster]:
    """Create the clusters of an export; raises InvalidInput (nothing created) on any error.

    Errors are keyed like the API's, under ``clusters[i].`` (``clusters[0].nodes[1].address``).
    What was left out on purpose (a fence device without its secret) is appended to
    ``notices``.
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
                cluster = cluster_create(
                    data={k: v for k, v in raw.items() if k != "nodes"} | {"nodes": nodes},
                    created_by=created_by,
                )
            except InvalidInput as exc:
                errors.update({where + k: v for k, v in exc.field_errors.items()})
                continue
            created.append(cluster)
            _fast_failover_import(cluster, raw, where, errors)
            for j, node in enumerate(raw["nodes"]):
                if "fence_device" in node:
                    _fence_device_import(cluster, node, f"{where}nodes[{j}].", errors, notices)
        if errors:
            raise InvalidInput(errors)  # leaving the block rolls back the keys recorded above
    return created


def _fast_failover_import(cluster: Cluster, raw: dict, where: str, errors: dict) -> None:
    """The fast-failover setting of an export (older exports lack it: it stays off)."""
    enabled = raw.get("fast_failover", False)
    window = raw.get("fast_failover_window_s", cluster.fast_failover_window_s)
    if not isinstance(enabled, bool):
        errors[where + "fast_failover"] = ["Expected true or false."]
    low, high = WINDOW_S
    if isinstance(window, bool) or not isinstance(window, int) or not low <= window <= high:
        errors[where + "fast_failover_window_s"] = [f"Expected seconds from {low} to {high}."]
    if not any(k.startswith(where + "fast_failover") for k in errors):
        cluster.fast_failover, cluster.fast_failover_window_s = enabled, window
        cluster.save(update_fields=["fast_failover", "fast_failover_window_s"])


def _fence_device_import(
    cluster: Cluster, raw_node: dict, where: str, errors: dict, notices: list[str] | None
) -> None:
    """One node's fence device, checked as on its page; left out (with a notice) when its
    method needs a secret the file does not hold."""
    raw = raw_node["fence_device"]
    node = cluster.nodes.filter(name=raw_node.get("name")).first()
    if not isinstance(raw, dict) or node is None:
        errors[where + "fence_device"] = ["Expected an object with method and options."]
        return
    method = METHODS.get(raw.get("method"))
    if method and method.credential_required and not raw.get("secret"):
        if notices is not None:
            notices.append(
                f"{cluster.name}/{node.name}: fence device ({method.name}) not imported: its "
                f"{method.credential_label.lower()} is not in the file; define it on the node's "
                "Fence device page and test it"
            )
        return
    try:
        fence_device_set(
            node=node, data={k: raw[k] for k in ("method", "options", "secret") if k in raw}
        )
    except InvalidInput as exc:
        errors.update({f"{where}fence_device.{k}": v for k, v in exc.field_errors.items()})
