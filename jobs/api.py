"""REST endpoints for host-key scans and jobs (DESIGN.md §3)."""

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from clusters import validators
from clusters.models import Cluster, Node
from clusters.services import InvalidInput, audit_record, node_add, node_replace
from hacenter.api import ApiError, api_view, source_address

from . import selectors, services, tasks
from .errors import JobConflict, JobRefused
from .models import Job

# What a caller may pass to a job besides kind and node (never secrets).
JOB_PARAMS = ("confirm", "service_manager", "full_copy")


def scan_via_worker(address: str, port: int) -> dict:
    """Ask a worker to read the host key (web processes never talk to servers) and wait for it."""
    try:
        return tasks.scan_host_key.delay(address, port).get(
            timeout=settings.HOST_KEY_SCAN_TIMEOUT_S + 5
        )
    except CeleryTimeout:
        return {"error": "No worker answered within the time limit; is a Celery worker running?"}


@api_view("POST")
def host_key_scan(request: HttpRequest) -> JsonResponse:
    address, port = request.data.get("address"), request.data.get("port", 22)
    errors = {}
    try:
        if not isinstance(address, str):
            raise validators.ValidationError("This field is required.")
        validators.validate_address(address)
    except validators.ValidationError as exc:
        errors["address"] = list(exc.messages)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors["port"] = ["Expected a port number from 1 to 65535."]
    if errors:
        raise ApiError(400, "Cannot scan this host.", errors)
    result = scan_via_worker(address, port)
    if "error" in result:
        raise ApiError(502 if "worker" not in result["error"] else 503, result["error"])
    return JsonResponse({"key_type": result["key_type"], "fingerprint": result["fingerprint"]})


@api_view("POST")
def cluster_jobs(request: HttpRequest, pk: int) -> JsonResponse:
    """Start a job of `kind` on the cluster (optionally aimed at one `node`, by name)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    kind, node_name = request.data.get("kind"), request.data.get("node")
    node = None
    if node_name is not None:
        node = Node.objects.filter(cluster=cluster, name=node_name).first()
        if node is None:
            raise ApiError(
                400, "No such node.", {"node": [f"{cluster.name} has no node {node_name!r}."]}
            )
    if not isinstance(kind, str):
        raise ApiError(400, "Which job?", {"kind": ["This field is required."]})
    manager = request.data.get("service_manager")
    if manager is not None and manager not in ("systemd", "process"):
        raise ApiError(
            400,
            "Unknown service manager.",
            {"service_manager": ["Use systemd or process (or leave it out)."]},
        )
    if not isinstance(request.data.get("full_copy", False), bool):
        raise ApiError(400, "Bad full_copy.", {"full_copy": ["Expected true or false."]})
    if not isinstance(request.data.get("confirm", ""), str):
        raise ApiError(400, "Bad confirmation.", {"confirm": ["Expected the cluster's name."]})
    try:
        params = {k: request.data[k] for k in JOB_PARAMS if k in request.data}
        job = services.job_start(
            cluster=cluster, kind=kind, node=node, params=params, requested_by=request.user
        )
    except JobRefused as exc:
        audit_record(
            user=request.user,
            action=f"job.start.{kind}"[:60],
            target=f"cluster {cluster.name}",
            params={"kind": kind, "node": node_name},
            source_address=source_address(request),
            result=f"refused: {exc}",
        )
        status = 409 if isinstance(exc, JobConflict) else 400
        raise ApiError(status, str(exc), {"kind": [str(exc)]} if status == 400 else {}) from None
    audit_record(
        user=request.user,
        action=f"job.start.{kind}",
        target=f"cluster {cluster.name}",
        params={"kind": kind, "node": node_name, "job": job.pk},
        source_address=source_address(request),
    )
    return JsonResponse({"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"}, status=202)


@api_view("GET")
def job(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(selectors.job_detail(get_object_or_404(Job, pk=pk)))


@api_view("GET")
def job_log(request: HttpRequest, pk: int) -> JsonResponse:
    """Log lines after `?after=N` (0 for the start), the next cursor and whether it is complete."""
    job = get_object_or_404(Job, pk=pk)
    try:
        after = int(request.GET.get("after", "0"))
        if after < 0:
            raise ValueError
    except ValueError:
        raise ApiError(400, "Bad cursor.", {"after": ["Expected a whole number ≥ 0."]}) from None
    lines, cursor, done = selectors.job_log_after(job, after)
    return JsonResponse(
        {"lines": [selectors.log_line_json(ln) for ln in lines], "next": cursor, "done": done}
    )


@api_view("POST")
def job_cancel(request: HttpRequest, pk: int) -> JsonResponse:
    job = get_object_or_404(Job, pk=pk)
    try:
        job = services.job_cancel(job=job)
    except JobRefused as exc:
        raise ApiError(409, str(exc)) from None
    audit_record(
        user=request.user,
        action="job.cancel",
        target=f"job {job.pk}",
        source_address=source_address(request),
    )
    return JsonResponse({"id": job.pk, "status": job.status}, status=202)


@api_view("POST")
def job_retry(request: HttpRequest, pk: int) -> JsonResponse:
    job = get_object_or_404(Job, pk=pk)
    try:
        job = services.job_retry(job=job)
    except JobRefused as exc:
        raise ApiError(409, str(exc)) from None
    audit_record(
        user=request.user,
        action="job.retry",
        target=f"job {job.pk}",
        source_address=source_address(request),
    )
    return JsonResponse({"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"}, status=202)


def _node_job(request: HttpRequest, cluster: Cluster, action: str, start) -> JsonResponse:
    """Run `start()` (a node service that saves the node and starts its job) and answer 202;
    invalid input is a 400 with field errors, a refused job a 400/409; all audited."""
    params = {k: request.data.get(k) for k in ("name", "address", "ssh_port") if k in request.data}
    try:
        job = start()
    except InvalidInput as exc:
        raise ApiError(400, "The server is not valid.", exc.field_errors) from None
    except JobRefused as exc:
        audit_record(
            user=request.user,
            action=action,
            target=f"cluster {cluster.name}",
            params=params,
            source_address=source_address(request),
            result=f"refused: {exc}",
        )
        raise ApiError(409 if isinstance(exc, JobConflict) else 400, str(exc)) from None
    audit_record(
        user=request.user,
        action=action,
        target=f"cluster {cluster.name}",
        params={**params, "node": job.node.name, "job": job.pk},
        source_address=source_address(request),
    )
    return JsonResponse(
        {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/", "node": job.node.name}, status=202
    )


@api_view("POST")
def cluster_nodes(request: HttpRequest, pk: int) -> JsonResponse:
    """Add a database server to a running cluster: `{name, address, ssh_port, credential,
    host_key_fingerprint}` (fingerprint from a scan) -> 202 with the `add_node` job."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return _node_job(
        request,
        cluster,
        "node.add",
        lambda: node_add(cluster=cluster, data=request.data, requested_by=request.user),
    )


@api_view("POST")
def node_replace_view(request: HttpRequest, pk: int, name: str) -> JsonResponse:
    """Replace a dead node with a new server under the same name: `{address, ssh_port,
    credential, host_key_fingerprint}` -> 202 with the `replace_node` job."""
    cluster = get_object_or_404(Cluster, pk=pk)
    node = get_object_or_404(Node, cluster=cluster, name=name)
    return _node_job(
        request,
        cluster,
        "node.replace",
        lambda: node_replace(node=node, data=request.data, requested_by=request.user),
    )
