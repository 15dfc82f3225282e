"""Defining an adopted cluster: an existing Patroni cluster the console takes over for
monitoring and operations (the adopt job reads the rest from its members)."""

import re

from django.db import transaction

from clusters.inventory.services import InvalidInput, _node_save, _server_taken, nodes_input
from clusters.models import Cluster, ClusterSecret, Node

NAME_RE = re.compile(r"\A[a-z][a-z0-9-]{0,62}\Z")


def _rest_api(raw: object, errors: dict[str, list[str]]) -> dict[str, str]:
    """{username, password} of Patroni's REST API, or {} when it asks for none."""
    if raw is None:
        return {}
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("username", ""), str)
        or not isinstance(raw.get("password", ""), str)
        or bool(raw.get("username")) != bool(raw.get("password"))
    ):
        errors["rest_api"] = ["Expected {username, password} of Patroni's REST API, or nothing."]
        return {}
    return {"username": raw.get("username", ""), "password": raw.get("password", "")}


def _placeholder_name(first_node: str) -> str:
    """adopted-<first node>, with a counter when taken (clusters come and go: a count of the
    rows is not unique)."""
    base = f"adopted-{first_node}"[:56]
    name, n = base, 1
    while Cluster.objects.filter(name=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def cluster_adopt(*, data: dict, created_by=None) -> Cluster:
    """Define an adopted cluster and its nodes (host keys pinned from earlier scans); writes
    nothing unless everything is valid. Node names should be the Patroni member names (the
    adopt job renames a node to its member's name otherwise). The adopt job is started by the
    caller."""
    errors: dict[str, list[str]] = {}
    name = data.get("name") or ""
    if not isinstance(name, str) or (name and not NAME_RE.fullmatch(name)):
        errors["name"] = ["Lower-case letters, digits and '-', starting with a letter."]
    elif name and Cluster.objects.filter(name=name).exists():
        errors["name"] = ["A cluster with this name exists."]
    rest = _rest_api(data.get("rest_api"), errors)
    nodes = nodes_input(
        data.get("nodes"), errors, "Give the cluster's database servers (and its proxy, if any)."
    )
    kinds = [n["kind"] for n in nodes]
    if nodes and not kinds.count(Node.Kind.DATABASE):
        errors.setdefault("nodes", []).append("An adopted cluster needs its database nodes.")
    if kinds.count(Node.Kind.PROXY) > 1:
        errors.setdefault("nodes", []).append("At most one proxy node.")
    names = [n["name"] for n in nodes]
    if len(set(names)) != len(names):
        errors.setdefault("nodes", []).append("Two nodes have the same name.")
    for i, node in enumerate(nodes):
        if _server_taken(node["address"]):
            errors[f"nodes[{i}].address"] = ["This server already belongs to a cluster."]
    if errors:
        raise InvalidInput(errors)
    layout: dict = {"rest_user": rest["username"]} if rest else {}
    if not name:
        # A placeholder until the adopt job reads the scope (it takes that name if free); a
        # name the admin chose is kept.
        layout["placeholder_name"] = True
    with transaction.atomic():
        cluster = Cluster.objects.create(
            name=name or _placeholder_name(names[0]),
            origin=Cluster.Origin.ADOPTED,
            patroni_layout=layout,
            created_by=created_by,
        )
        for node in nodes:
            _node_save(cluster, node)
        if rest:
            ClusterSecret.objects.create(
                cluster=cluster, name=ClusterSecret.Name.REST_API, value=rest["password"]
            )
    return cluster
