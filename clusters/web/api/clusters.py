"""REST endpoints for credentials and clusters (DESIGN.md §3)."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache

from clusters.access.audit import audit, refused, source_address
from clusters.access.reveal import cluster_connection_read
from clusters.access.roles import ADMIN
from clusters.inventory import adoption, services
from clusters.models import Cluster, Credential
from clusters.web import selectors
from clusters.web.api.plumbing import ApiError, api_view
from jobs import services as job_services
from jobs.errors import JobRefused


@api_view("GET", "POST", write=ADMIN)
def credentials(request: HttpRequest) -> JsonResponse:
    """GET: list credentials (never their secrets). POST: create one (admins)."""
    if request.method == "GET":
        data = [selectors.credential_summary(c) for c in Credential.objects.all()]
        return JsonResponse(data, safe=False)
    try:
        cred = services.credential_create(data=request.data)
    except services.InvalidInput as exc:
        audit(request, action="credential.create", result=refused(exc.field_errors))
        raise ApiError(400, "The credential is not valid.", exc.field_errors) from None
    audit(
        request,
        action="credential.create",
        target=f"credential {cred.name}",
        params={"name": cred.name, "username": cred.username, "kind": cred.kind},
    )
    return JsonResponse(selectors.credential_summary(cred), status=201)


@api_view("GET", "POST", write=ADMIN)
def clusters(request: HttpRequest) -> JsonResponse:
    """GET: every cluster with its state and primary. POST: define a new cluster (admins)."""
    if request.method == "GET":
        return JsonResponse(
            [selectors.cluster_summary(c) for c in Cluster.objects.all()], safe=False
        )
    try:
        cluster = services.cluster_create(data=request.data, created_by=request.user)
    except services.InvalidInput as exc:
        name = request.data.get("name")
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
    return JsonResponse(selectors.cluster_detail(cluster), status=201)


@api_view("GET")
def cluster(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(selectors.cluster_detail(get_object_or_404(Cluster, pk=pk)))


@never_cache  # a password is in the answer: no cache (browser, proxy) may keep it
@api_view("GET")
def cluster_connection(request: HttpRequest, pk: int) -> JsonResponse:
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
    return JsonResponse(strings)


@api_view("POST", write=ADMIN)
def cluster_adopt(request: HttpRequest) -> JsonResponse:
    """Adopt an existing Patroni cluster: define it (its nodes, the proxy if any, Patroni's
    REST credentials) and start the adopt job that reads the rest from its members."""
    try:
        with transaction.atomic():
            cluster = adoption.cluster_adopt(data=request.data, created_by=request.user)
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
    return JsonResponse(
        {
            **selectors.cluster_detail(cluster),
            "job": {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"},
        },
        status=202,
    )
