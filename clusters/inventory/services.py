"""Writes to the inventory, each a function `<entity>_<action>` with keyword-only arguments."""

import secrets

from django.conf import settings
from django.db import IntegrityError, transaction

from clusters.inventory import forms, virtual_ip
from clusters.inventory.validators import normalize_address
from clusters.models import (
    Cluster,
    ClusterSecret,
    Credential,
    Node,
    ScannedHostKey,
)


class InvalidInput(Exception):
    """Input that cannot be accepted; `field_errors` maps each field to its messages."""

    def __init__(self, field_errors: dict[str, list[str]], message: str = "invalid input") -> None:
        super().__init__(message)
        self.field_errors = field_errors


def form_errors(form, prefix: str = "") -> dict[str, list[str]]:
    """A Django form's errors as {"prefix.field": [messages]}; form-wide errors under the prefix."""
    result = {}
    for field, errors in form.errors.items():
        if field == "__all__":
            key = prefix.rstrip(".") or "non_field_errors"
        else:
            key = prefix + field
        result[key] = list(errors)
    return result


def key_from_upload(upload) -> str:
    """The text of an uploaded private key file; InvalidInput unless it is UTF-8. Never decoded
    "with replacement": a damaged key would then be a puzzle."""
    raw = upload.read(forms.MAX_KEY_BYTES + 1)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            {
                "private_key": [
                    "The key file is not UTF-8 text: upload the OpenSSH or PEM private key "
                    "(not a PuTTY .ppk or a binary DER file)."
                ]
            }
        ) from None


def credential_create(*, data: dict) -> Credential:
    """Store a new SSH credential, encrypted, after checking that a private key parses."""
    form = forms.CredentialForm(data=data)
    if not form.is_valid():
        raise InvalidInput(form_errors(form))
    d = form.cleaned_data
    return Credential.objects.create(
        name=d["name"],
        username=d["username"],
        private_key=d["private_key"],
        passphrase=d["passphrase"] if d["private_key"] else "",
        password=d["password"],
    )


def _node_save(cluster: Cluster, node: dict) -> Node:
    """One validated server of `nodes_input` as a node of `cluster`, its host key pinned."""
    return Node.objects.create(
        cluster=cluster,
        name=node["name"],
        address=node["address"],
        ssh_port=node["ssh_port"],
        credential=node["credential"],
        kind=node["kind"],
        bootstrap_primary=bool(node.get("master")),
        **_pinned_key(node),
    )


def nodes_input(raw_nodes: object, errors: dict[str, list[str]], missing: str) -> list[dict]:
    """Each server of `raw_nodes` validated (errors keyed `nodes[i].field`); `missing` is the
    message for no list at all. Too many nodes are refused before any is looked at: ten
    thousand nodes must not cost ten thousand queries."""
    if not isinstance(raw_nodes, list) or not raw_nodes:
        errors["nodes"] = [missing]
        return []
    if len(raw_nodes) > settings.HACENTER_MAX_NODES:
        errors["nodes"] = [f"At most {settings.HACENTER_MAX_NODES} nodes per cluster."]
        return []
    return [
        node
        for i, raw in enumerate(raw_nodes)
        if (node := _node_input(raw, errors, prefix=f"nodes[{i}]."))
    ]


def _node_input(raw: object, errors: dict[str, list[str]], prefix: str = "") -> dict | None:
    """One server's fields, validated, with the scanned host key its fingerprint confirms;
    None (and `errors` filled) when something is wrong."""
    node_form = forms.NodeForm(data=raw if isinstance(raw, dict) else {})
    if not node_form.is_valid():
        errors.update(form_errors(node_form, prefix=prefix))
        return None
    node = dict(node_form.cleaned_data, ssh_port=node_form.cleaned_data["ssh_port"] or 22)
    node["scanned"] = (
        ScannedHostKey.objects.filter(
            address=node["address"],
            port=node["ssh_port"],
            fingerprint=node["host_key_fingerprint"],
        )
        .order_by("-scanned")
        .first()
    )
    if node["scanned"] is None:
        errors[f"{prefix}host_key_fingerprint"] = [
            "This fingerprint was not seen at this address and port: scan the host key "
            "and compare it with the server's own (ssh-keygen -lf /etc/ssh/ssh_host_*.pub)."
        ]
        return None
    return node


def _pinned_key(node: dict) -> dict:
    scanned = node["scanned"]
    return {
        "host_key_type": scanned.key_type,
        "host_key_base64": scanned.base64,
        "host_key_fingerprint": scanned.fingerprint,
    }


def client_tls_input(data: dict, errors: dict[str, list[str]]) -> bool:
    """`require_client_tls`: true unless given as false (new clusters require TLS from
    clients); anything but a JSON boolean is an error, not a guess."""
    value = data.get("require_client_tls", True)
    if not isinstance(value, bool):
        errors["require_client_tls"] = ["Expected true or false."]
        return True
    return value


def cluster_create(*, data: dict, created_by=None) -> Cluster:
    """Create a cluster and its nodes, pinning each node's host key from an earlier scan.

    Nothing is written unless every field of every node is valid.
    """
    errors: dict[str, list[str]] = {}
    cluster_form = forms.ClusterForm(data=data)
    if not cluster_form.is_valid():
        errors.update(form_errors(cluster_form))
    networks = forms.validate_client_networks(data.get("client_networks"), errors)
    database = forms.validate_database(data.get("database"), errors)
    frontends = forms.validate_http_frontends(data.get("http_frontends"), errors)
    application_unit = forms.validate_application_unit(data.get("application_unit"), errors)
    require_client_tls = client_tls_input(data, errors)
    raw_nodes = data.get("nodes")
    nodes = nodes_input(
        raw_nodes, errors, "Give the cluster's servers: at least two database nodes and a proxy."
    )
    if raw_nodes and len(nodes) == len(raw_nodes):
        forms.validate_topology(nodes, errors)
    vip, router_id = _virtual_ip_input(data, nodes, errors)
    if errors:
        raise InvalidInput(errors)
    c = cluster_form.cleaned_data
    with transaction.atomic():
        cluster = Cluster.objects.create(
            name=c["name"],
            replication=c["replication"],
            failover_profile=c["failover_profile"] or Cluster.FailoverProfile.BALANCED,
            postgres_version=c["postgres_version"] or 15,
            sync_strict=c["sync_strict"],
            apt_proxy=c["apt_proxy"],
            adopt_database=c["adopt_database"],
            http_frontends=frontends,
            application_unit=application_unit,
            require_client_tls=require_client_tls,
            client_networks=networks,
            database_name=database.get("name", ""),
            database_user=database.get("user", ""),
            virtual_ip=vip,
            vrrp_router_id=router_id,
            created_by=created_by,
        )
        for node in nodes:
            _node_save(cluster, node)
    return cluster


def _virtual_ip_input(
    data: dict, nodes: list[dict], errors: dict[str, list[str]]
) -> tuple[str, int | None]:
    """The floating address and VRRP router id asked for (both optional), checked against the
    nodes: the address in the two proxies' network and no node's own."""
    vip = str(data.get("virtual_ip") or "").strip()
    router_id = data.get("vrrp_router_id")
    if problems := virtual_ip.validate_router_id(router_id):
        errors.setdefault("vrrp_router_id", []).extend(problems)
    if not vip:
        return "", None
    proxies = [n["address"] for n in nodes if n.get("kind") == Node.Kind.PROXY]
    addresses = [n["address"] for n in nodes if n.get("address")]
    if problems := virtual_ip.virtual_ip_problems(vip, proxies, addresses):
        errors.setdefault("virtual_ip", []).extend(problems)
    else:
        for key, problems in virtual_ip_conflicts(vip, router_id).items():
            errors.setdefault(key, []).extend(problems)
    return vip, (router_id or None)


def virtual_ip_conflicts(vip: str, router_id: object = None) -> dict[str, list[str]]:
    """Why a well-formed floating address (or VRRP router id) is in use already: another
    cluster floats it, it is a server of another cluster, or another cluster in its network has
    the router id. Keys as in the API (``virtual_ip``, ``vrrp_router_id``); {} when free."""
    address = vip.strip().split("/")[0]
    if Cluster.objects.filter(virtual_ip__startswith=address + "/").exists():
        return {"virtual_ip": ["Another cluster uses this floating address."]}
    server = Node.objects.filter(address__iexact=address).select_related("cluster").first()
    if server is not None:
        return {
            "virtual_ip": [
                f"{address} is in use: it is {server.name} of cluster {server.cluster.name}."
            ]
        }
    if router_id and router_id in _router_ids_near(vip):
        return {
            "vrrp_router_id": [
                f"Another cluster in {virtual_ip.network_of(vip)} uses VRRP router id {router_id}."
            ]
        }
    return {}


def _router_ids_near(vip: str) -> set[int]:
    """The VRRP router ids of the clusters whose floating address is in `vip`'s network."""
    network = virtual_ip.network_of(vip)
    return {
        c.vrrp_router_id_effective
        for c in Cluster.objects.exclude(virtual_ip="")
        if virtual_ip.network_of(c.virtual_ip) == network
    }


def cluster_secrets_ensure(*, cluster: Cluster) -> dict[str, str]:
    """The cluster's generated passwords, creating the missing ones (43 random URL-safe
    characters each, safe in YAML, HAProxy's config and libpq URIs). Never regenerates one that
    exists: a re-run of setup must keep the passwords the servers already use."""
    wanted = [
        n
        for n in ClusterSecret.Name.values
        if n != ClusterSecret.Name.APPLICATION or cluster.database_user
    ]
    existing = {s.name: s.value for s in cluster.secrets.all()}
    for name in wanted:
        if name not in existing:
            try:
                with transaction.atomic():
                    ClusterSecret.objects.create(
                        cluster=cluster, name=name, value=secrets.token_urlsafe(32)
                    )
            except IntegrityError:  # created by a concurrent call: keep that one
                pass
    return {s.name: s.value for s in cluster.secrets.all()}


def _server_taken(address: str, *, exclude: Node | None = None) -> bool:
    # By address alone: one server serves one node, whatever SSH port reaches it (PostgreSQL,
    # Patroni and etcd ports would collide).
    taken = Node.objects.filter(address__iexact=address)
    return taken.exclude(pk=exclude.pk).exists() if exclude else taken.exists()


def node_create(*, cluster: Cluster, data: dict) -> Node:
    """Add a database server (or, with `kind` "proxy", a proxy) to a cluster's inventory, its
    host key pinned from an earlier scan. Raises InvalidInput (and writes nothing) when a field
    is wrong, the name is taken in the cluster or the server belongs to a cluster already. The
    job that sets it up is started by `jobs.node_changes.node_add`."""
    errors: dict[str, list[str]] = {}
    kind = data.get("kind") or Node.Kind.DATABASE
    if kind not in (Node.Kind.DATABASE, Node.Kind.PROXY):
        errors["kind"] = ["Expected database or proxy."]
        kind = Node.Kind.DATABASE
    node = _node_input({**data, "kind": kind}, errors)
    if node is not None:
        if cluster.nodes.filter(name=node["name"]).exists():
            errors["name"] = [f"{cluster.name} has a node called {node['name']} already."]
        if _server_taken(node["address"]):
            errors["address"] = ["This server already belongs to a cluster."]
    if errors:
        raise InvalidInput(errors)
    return Node.objects.create(
        cluster=cluster,
        name=node["name"],
        address=node["address"],
        ssh_port=node["ssh_port"],
        credential=node["credential"],
        kind=kind,
        **_pinned_key(node),
    )


def node_repoint(*, node: Node, data: dict) -> str:
    """Point `node`'s name at a new server (address, SSH port, credential, confirmed host key);
    the name, events and history stay. Returns the old address. Raises InvalidInput (and
    changes nothing) for a wrong field, the node's own server or a server taken by a cluster."""
    errors: dict[str, list[str]] = {}
    new = _node_input({**data, "name": node.name, "kind": node.kind}, errors)
    if new is not None:
        if new["address"] == normalize_address(node.address):
            errors["address"] = [
                "This is the node's current server; a replacement is a new server. To rebuild "
                "the same server, run Rebuild."
            ]
        elif _server_taken(new["address"], exclude=node):
            errors["address"] = ["This server already belongs to a cluster."]
    if errors:
        raise InvalidInput(errors)
    old_address = node.address
    Node.objects.filter(pk=node.pk).update(
        address=new["address"],
        ssh_port=new["ssh_port"],
        credential=new["credential"],
        **_pinned_key(new),
    )
    node.refresh_from_db()
    return old_address
