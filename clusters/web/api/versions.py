"""REST endpoint for the nodes' software versions (issue 22 item 6): the cluster page's
"Versions" section as JSON. Run `check_updates` (POST .../jobs/) to read them afresh."""

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema
from pydantic import Field

from clusters.models import Cluster
from clusters.web.api.openapi import errors
from clusters.web.api.plumbing import VIEWER_AUTH
from clusters.web.versions_selectors import cluster_versions

router = Router()


class PackageVersionOut(Schema):
    installed: str = Field(description="The version dpkg has installed.")
    available: str | None = Field(
        description="A newer version the node's apt sources offer; null when none."
    )


class NodeVersionsOut(Schema):
    node: str
    kind: str
    checked_at: datetime | None = Field(description="When a job last read them; null: never.")
    packages: dict[str, PackageVersionOut] = Field(
        description="HA Center's packages on the node (postgresql-<major>, its client and "
        "libpq5, etcd-server, etcd-client, haproxy), by name."
    )
    running: dict[str, str] = Field(
        description='What the daemons report: {"postgresql": package version of the running '
        'server, "patroni": Patroni\'s version} (database nodes).'
    )
    restart_needed: list[str] = Field(
        description="Programs still running a binary the package manager has replaced."
    )


class ClusterVersionsOut(Schema):
    checked_at: datetime | None = Field(description="The oldest of the nodes' readings.")
    updates_available: bool
    nodes: list[NodeVersionsOut]


@router.get(
    "/clusters/{int:pk}/versions/",
    auth=VIEWER_AUTH,
    response={200: ClusterVersionsOut, **errors(401, 403, 404)},
    url_name="api-cluster-versions",
    tags=["clusters"],
)
def versions(request: HttpRequest, pk: int):
    """Which versions of PostgreSQL, etcd, HAProxy (packages) and Patroni run on each node,
    and which updates the nodes' apt sources offer, as the last `check_updates` or
    `minor_upgrade` job read them."""
    return cluster_versions(get_object_or_404(Cluster, pk=pk))
