"""REST endpoints for credentials and clusters (DESIGN.md §3)."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from ninja import Router, Status
from ninja.decorators import decorate_view

from clusters.access.audit import audit, refused, source_address
from clusters.access.reveal import cluster_connection_read
from clusters.inventory import adoption, services
from clusters.models import Cluster, Credential
from clusters.web import selectors
from clusters.web.api import schemas as s
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import ADMIN_AUTH, VIEWER_AUTH, ApiError, json_body, validated_body
from jobs import services as job_services
from jobs.errors import JobRefused

router = Router(tags=["clusters"])


@router.get(
    "/credentials/",
    auth=VIEWER_AUTH,
    response={200: list[s.CredentialOut], **errors(401, 403)},
    url_name="api-credentials",
    tags=["credentials"],
)
def credentials(request: HttpRequest):
    """List the SSH credentials (never their secrets)."""
    return [selectors.credential_summary(c) for c in Credential.objects.all()]


@router.post(
    "/credentials/",
    auth=ADMIN_AUTH,
    response={201: s.CredentialOut, **errors(400, 401, 403, 413)},
    openapi_extra=body_of(s.CredentialIn),
    tags=["credentials"],
)
def credential_create(request: HttpRequest):
    """Create an SSH credential (admins); its secret is stored encrypted and never answered."""
    try:
        body = validated_body(request, s.CredentialIn)
        cred = services.credential_create(data=body.model_dump(mode="json", exclude_unset=True))
    except services.InvalidInput as exc:
        audit(request, action="credential.create", result=refused(exc.field_errors))
        raise ApiError(400, "The credential is not valid.", exc.field_errors) from None
    audit(
        request,
        action="credential.create",
        target=f"credential {cred.name}",
        params={"name": cred.name, "username": cred.username, "kind": cred.kind},
    )
    return Status(201, selectors.credential_summary(cred))


@router.get(
    "/clusters/",
    auth=VIEWER_AUTH,
    response={200: list[s.ClusterSummaryOut], **errors(401, 403)},
    url_name="api-clusters",
)
def clusters(request: HttpRequest):
    """Every cluster with its state and primary."""
    return [selectors.cluster_summary(c) for c in Cluster.objects.all()]


@router.post(
    "/clusters/",
    auth=ADMIN_AUTH,
    response={201: s.ClusterOut, **errors(400, 401, 403, 413)},
    openapi_extra=body_of(s.ClusterIn),
)
def cluster_create(request: HttpRequest):
    """Define a new cluster (admins); a setup job builds it."""
    try:
        data = validated_body(request, s.ClusterIn).model_dump(mode="json", exclude_unset=True)
        cluster = services.cluster_create(data=data, created_by=request.user)
    except services.InvalidInput as exc:
        # The name as sent (the body was read already): the schema may have refused the rest.
        name = json_body(request).get("name")
        audit(
            request,
            action="cluster.create",
            target=f"cluster {name}" if isinstance(name, str) else "",
            result=refused(exc.field_errors),
        )
        raise ApiError(400, "The cluster is not valid.", exc.field_errors) from None
    audit(
        request,
        action="cluster.create",
        target=f"cluster {cluster.name}",
        params={"name": cluster.name, "nodes": [n.name for n in cluster.nodes.all()]},
    )
    return Status(201, selectors.cluster_detail(cluster))


@router.get(
    "/clusters/{int:pk}/",
    auth=VIEWER_AUTH,
    response={200: s.ClusterOut, **errors(401, 403, 404)},
    url_name="api-cluster",
)
def cluster(request: HttpRequest, pk: int):
    """The cluster with its nodes and what the monitor last observed."""
    return selectors.cluster_detail(get_object_or_404(Cluster, pk=pk))


@router.get(
    "/clusters/{int:pk}/connection/",
    auth=VIEWER_AUTH,
    response={200: s.ConnectionOut, **errors(401, 403, 404)},
    url_name="api-connection",
)
@decorate_view(never_cache)  # a password is in the answer: no cache (browser, proxy) may keep it
def cluster_connection(request: HttpRequest, pk: int):
    """The application's connection strings, password included: admins only, always audited
    (the service audits refusals too, which is why viewers get this far)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    try:
        strings = cluster_connection_read(
            cluster=cluster, user=request.user, source_address=source_address(request)
        )
    except PermissionDenied as exc:
        raise ApiError(403, str(exc)) from None
    if strings is None:
        raise ApiError(404, "This cluster has no application database (or setup has not run).")
    return strings


@router.post(
    "/clusters/adopt/",
    auth=ADMIN_AUTH,
    response={202: s.AdoptedOut, **errors(400, 401, 403, 409, 413)},
    openapi_extra=body_of(s.AdoptIn),
    url_name="api-cluster-adopt",
)
def cluster_adopt(request: HttpRequest):
    """Adopt an existing Patroni cluster: define it (its nodes, the proxy if any, Patroni's
    REST credentials) and start the adopt job that reads the rest from its members."""
    try:
        data = validated_body(request, s.AdoptIn).model_dump(mode="json", exclude_unset=True)
        with transaction.atomic():
            cluster = adoption.cluster_adopt(data=data, created_by=request.user)
            job = job_services.job_start(cluster=cluster, kind="adopt", requested_by=request.user)
    except services.InvalidInput as exc:
        audit(request, action="cluster.adopt", result=refused(exc.field_errors))
        raise ApiError(400, "The cluster to adopt is not valid.", exc.field_errors) from None
    except JobRefused as exc:
        audit(request, action="cluster.adopt", result=f"refused: {exc}")
        raise ApiError(409, str(exc)) from None
    audit(
        request,
        action="cluster.adopt",
        target=f"cluster {cluster.name}",
        params={"nodes": [n.name for n in cluster.nodes.all()], "job": job.pk},
    )
    return Status(
        202,
        {
            **selectors.cluster_detail(cluster),
            "job": {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"},
        },
    )
