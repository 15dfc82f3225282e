"""REST endpoints for host-key scans and jobs (DESIGN.md §3)."""

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, OPERATOR, has_role, refusal, role_for_job
from clusters.inventory import validators
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster, Node
from clusters.web import scans
from clusters.web.api.plumbing import ApiError, api_view
from jobs import selectors, services
from jobs.errors import JobConflict, JobRefused
from jobs.models import Job
from jobs.node_changes import node_add, node_replace

# What a caller may pass to a job besides kind and node (never secrets).
JOB_PARAMS = ("confirm", "service_manager", "full_copy", "force")


@api_view("POST", write=ADMIN)
def host_key_scan(request: HttpRequest) -> JsonResponse:
    address, port = request.data.get("address"), request.data.get("port", 22)
    errors = {}
    try:
        if not isinstance(address, str):
            raise validators.ValidationError("This field is required.")
        validators.validate_ip_address(address)
    except validators.ValidationError as exc:
        errors["address"] = list(exc.messages)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors["port"] = ["Expected a port number from 1 to 65535."]
    if errors:
        audit(request, action="host_key.scan", result=refused(errors))
        raise ApiError(400, "Cannot scan this host.", errors)
    result = scans.scan_via_worker(address, port)
    where = f"{address}:{port}"
    if "error" in result:
        audit(request, action="host_key.scan", target=where, result=f"failed: {result['error']}")
        raise ApiError(502 if "worker" not in result["error"] else 503, result["error"])
    audit(
        request,
        action="host_key.scan",
        target=where,
        params={"fingerprint": result["fingerprint"]},
    )
    return JsonResponse({"key_type": result["key_type"], "fingerprint": result["fingerprint"]})


@api_view("POST", write=OPERATOR)
def cluster_jobs(request: HttpRequest, pk: int) -> JsonResponse:
    """Start a job of `kind` on the cluster (optionally aimed at one `node`, by name)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    kind, node_name = request.data.get("kind"), request.data.get("node")
    target = f"cluster {cluster.name}"
    action = f"job.start.{kind}" if isinstance(kind, str) else "job.start"
    shown = {"kind": kind, "node": node_name} if isinstance(kind, str) else {}

    def refuse(status: int, message: str, field_errors: dict | None = None) -> ApiError:
        audit(request, action=action, target=target, params=shown, result=f"refused: {message}")
        return ApiError(status, message, field_errors)

    if isinstance(kind, str) and not has_role(request.user, role_for_job(kind)):
        raise refuse(403, refusal(request.user, role_for_job(kind)))
    if not isinstance(kind, str):
        raise refuse(400, "Which job?", {"kind": ["This field is required."]})
    node = None
    if node_name is not None:
        if not isinstance(node_name, str):
            raise refuse(400, "Bad node.", {"node": ["Expected a node's name."]})
        node = Node.objects.filter(cluster=cluster, name=node_name).first()
        if node is None:
            message = f"{cluster.name} has no node {node_name!r}."
            raise refuse(400, "No such node.", {"node": [message]})
    manager = request.data.get("service_manager")
    if manager is not None and manager not in ("systemd", "process"):
        raise refuse(
            400,
            "Unknown service manager.",
            {"service_manager": ["Use systemd or process (or leave it out)."]},
        )
    if not isinstance(request.data.get("full_copy", False), bool):
        raise ApiError(400, "Bad full_copy.", {"full_copy": ["Expected true or false."]})
    if not isinstance(request.data.get("force", ""), str):
        raise refuse(400, "Bad force.", {"force": ["Expected the cluster's name."]})
    if not isinstance(request.data.get("confirm", ""), str):
        raise refuse(400, "Bad confirmation.", {"confirm": ["Expected the cluster's name."]})
    try:
        params = {k: request.data[k] for k in JOB_PARAMS if k in request.data}
        job = services.job_start(
            cluster=cluster, kind=kind, node=node, params=params, requested_by=request.user
        )
    except JobRefused as exc:
        status = 409 if isinstance(exc, JobConflict) else 400
        raise refuse(status, str(exc), {"kind": [str(exc)]} if status == 400 else {}) from None
    audit(request, action=action, target=target, params={**shown, "job": job.pk})
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


@api_view("POST", write=OPERATOR)
def job_cancel(request: HttpRequest, pk: int) -> JsonResponse:
    """Ask a job to stop (any operator may stop any job, a removal included)."""
    job = get_object_or_404(Job, pk=pk)
    try:
        job = services.job_cancel(job=job)
    except JobRefused as exc:
        audit(request, action="job.cancel", target=f"job {job.pk}", result=f"refused: {exc}")
        raise ApiError(409, str(exc)) from None
    audit(request, action="job.cancel", target=f"job {job.pk}")
    return JsonResponse({"id": job.pk, "status": job.status}, status=202)


@api_view("POST", write=OPERATOR)
def job_retry(request: HttpRequest, pk: int) -> JsonResponse:
    """Run a job again from its failed step; needs the role that may start its kind."""
    job = get_object_or_404(Job, pk=pk)
    if not has_role(request.user, role_for_job(job.kind)):
        message = refusal(request.user, role_for_job(job.kind))
        audit(request, action="job.retry", target=f"job {job.pk}", result=f"refused: {message}")
        raise ApiError(403, message)
    try:
        job = services.job_retry(job=job)
    except JobRefused as exc:
        audit(request, action="job.retry", target=f"job {job.pk}", result=f"refused: {exc}")
        raise ApiError(409, str(exc)) from None
    audit(request, action="job.retry", target=f"job {job.pk}")
    return JsonResponse({"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"}, status=202)


def _node_job(request: HttpRequest, cluster: Cluster, action: str, start) -> JsonResponse:
    """Run `start()` (a node service that saves the node and starts its job) and answer 202;
    invalid input is a 400 with field errors, a refused job a 400/409; all audited."""
    params = {k: request.data.get(k) for k in ("name", "address", "ssh_port") if k in request.data}
    target = f"cluster {cluster.name}"
    try:
        job = start()
    except InvalidInput as exc:
        audit(request, action=action, target=target, result=refused(exc.field_errors))
        raise ApiError(400, "The server is not valid.", exc.field_errors) from None
    except JobRefused as exc:
        audit(request, action=action, target=target, params=params, result=f"refused: {exc}")
        raise ApiError(409 if isinstance(exc, JobConflict) else 400, str(exc)) from None
    audit(
        request,
        action=action,
        target=target,
        params={**params, "node": job.node.name, "job": job.pk},
    )
    return JsonResponse(
        {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/", "node": job.node.name}, status=202
    )


@api_view("POST", write=ADMIN)
def cluster_nodes(request: HttpRequest, pk: int) -> JsonResponse:
    """Add a database server to a running cluster: `{name, address, ssh_port, credential,
    host_key_fingerprint}` (fingerprint from a scan) -> 202 with the `add_node` job (admins:
    it changes the inventory)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return _node_job(
        request,
        cluster,
        "node.add",
        lambda: node_add(cluster=cluster, data=request.data, requested_by=request.user),
    )


@api_view("POST", write=ADMIN)
def node_replace_view(request: HttpRequest, pk: int, name: str) -> JsonResponse:
    """Replace a dead node with a new server under the same name: `{address, ssh_port,
    credential, host_key_fingerprint}` -> 202 with the `replace_node` job (admins)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    node = get_object_or_404(Node, cluster=cluster, name=name)
    return _node_job(
        request,
        cluster,
        "node.replace",
        lambda: node_replace(node=node, data=request.data, requested_by=request.user),
    )
