"""REST endpoints for host-key scans and jobs (DESIGN.md §3)."""

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from clusters.access.audit import audit, refused
from clusters.access.roles import has_role, refusal, role_for_job
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster, Node
from clusters.web import scans
from clusters.web.api import events, paging
from clusters.web.api import schemas as s
from clusters.web.api import schemas_history as hist
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import (
    ADMIN_AUTH,
    OPERATOR_AUTH,
    VIEWER_AUTH,
    ApiError,
    in_one_line,
    json_body,
    validated_body,
)
from jobs import selectors, services
from jobs.errors import JobConflict, JobRefused
from jobs.models import Job, JobKind, JobStatus
from jobs.node_changes import node_add, node_replace

router = Router(tags=["jobs"])

# What a caller may pass to a job besides kind and node (never secrets).
JOB_PARAMS = (
    *("confirm", "service_manager", "full_copy", "copy_from", "force", "backup_type"),
    # a restore point's name; a restore's target server and where in time to stop
    *("name", "address", "ssh_port", "credential", "host_key_fingerprint"),
    *("target_type", "target"),
)


@router.post(
    "/host-keys/scan/",
    auth=ADMIN_AUTH,
    response={200: s.HostKeyOut, **errors(400, 401, 403, 413, 502, 503)},
    openapi_extra=body_of(s.HostKeyScanIn),
    url_name="api-host-key-scan",
    tags=["credentials"],
)
def host_key_scan(request: HttpRequest):
    """Read a server's SSH host key through a worker (admins); a cluster's nodes must name a
    fingerprint read this way."""
    try:
        body = validated_body(request, s.HostKeyScanIn)
    except InvalidInput as exc:
        audit(request, action="host_key.scan", result=refused(exc.field_errors))
        raise ApiError(400, "Cannot scan this host.", exc.field_errors) from None
    address, port = body.address, body.port
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
    return {"key_type": result["key_type"], "fingerprint": result["fingerprint"]}


@router.post(
    "/clusters/{int:pk}/jobs/",
    auth=OPERATOR_AUTH,
    response={202: s.JobRefOut, **errors(400, 401, 403, 404, 409, 413)},
    openapi_extra=body_of(s.JobStartIn),
    url_name="api-cluster-jobs",
)
def cluster_jobs(request: HttpRequest, pk: int):
    """Start a job of `kind` on the cluster (optionally aimed at one `node`, by name); a kind
    may need more than the operator role (a removal: admin)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    sent = json_body(request)
    kind, node_name = sent.get("kind"), sent.get("node")
    target = f"cluster {cluster.name}"
    action = f"job.start.{kind}" if isinstance(kind, str) else "job.start"
    shown = {"kind": kind, "node": node_name} if isinstance(kind, str) else {}

    def refuse(status: int, message: str, field_errors: dict | None = None) -> ApiError:
        audit(request, action=action, target=target, params=shown, result=f"refused: {message}")
        return ApiError(status, message, field_errors)

    # The kind's role first, as before the body's other fields: who may not start a removal
    # is told so, whatever else the body says.
    if isinstance(kind, str) and not has_role(request.user, role_for_job(kind)):
        raise refuse(403, refusal(request.user, role_for_job(kind)))
    try:
        # Null is the same as leaving a field out (the document says so).
        data = validated_body(request, s.JobStartIn).model_dump(mode="json", exclude_none=True)
    except InvalidInput as exc:
        # Each refusal of a job has said what was wrong in its message: the fields' messages.
        raise refuse(400, in_one_line(exc.field_errors), exc.field_errors) from None
    node = None
    if "node" in data:
        node = Node.objects.filter(cluster=cluster, name=data["node"]).first()
        if node is None:
            message = f"{cluster.name} has no node {data['node']!r}."
            raise refuse(400, "No such node.", {"node": [message]})
    try:
        params = {k: data[k] for k in JOB_PARAMS if k in data}
        job = services.job_start(
            cluster=cluster, kind=data["kind"], node=node, params=params, requested_by=request.user
        )
    except JobRefused as exc:
        status = 409 if isinstance(exc, JobConflict) else 400
        raise refuse(status, str(exc), {"kind": [str(exc)]} if status == 400 else {}) from None
    audit(request, action=action, target=target, params={**shown, "job": job.pk})
    return Status(202, {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"})


@router.get(
    "/jobs/{int:pk}/",
    auth=VIEWER_AUTH,
    response={200: hist.JobOut, **errors(401, 403, 404)},
    url_name="api-job",
)
def job(request: HttpRequest, pk: int):
    """The job with its steps."""
    return selectors.job_detail(get_object_or_404(Job, pk=pk))


@router.get(
    "/jobs/{int:pk}/log/",
    auth=VIEWER_AUTH,
    response={200: hist.JobLogOut, **errors(400, 401, 403, 404)},
    url_name="api-job-log",
)
def job_log(request: HttpRequest, pk: int, after: str = "0"):
    """Log lines after `?after=N` (0 for the start), the next cursor and whether it is complete."""
    job = get_object_or_404(Job, pk=pk)
    try:
        cursor = int(after)
        if cursor < 0:
            raise ValueError
    except ValueError:
        raise ApiError(400, "Bad cursor.", {"after": ["Expected a whole number ≥ 0."]}) from None
    lines, cursor, done = selectors.job_log_after(job, cursor)
    return {"lines": [selectors.log_line_json(ln) for ln in lines], "next": cursor, "done": done}


@router.post(
    "/jobs/{int:pk}/cancel/",
    auth=OPERATOR_AUTH,
    response={202: hist.JobCanceledOut, **errors(401, 403, 404, 409)},
    url_name="api-job-cancel",
)
def job_cancel(request: HttpRequest, pk: int):
    """Ask a job to stop (any operator may stop any job, a removal included)."""
    job = get_object_or_404(Job, pk=pk)
    try:
        job = services.job_cancel(job=job)
    except JobRefused as exc:
        audit(request, action="job.cancel", target=f"job {job.pk}", result=f"refused: {exc}")
        raise ApiError(409, str(exc)) from None
    audit(request, action="job.cancel", target=f"job {job.pk}")
    return Status(202, {"id": job.pk, "status": job.status})


@router.post(
    "/jobs/{int:pk}/retry/",
    auth=OPERATOR_AUTH,
    response={202: s.JobRefOut, **errors(401, 403, 404, 409)},
    url_name="api-job-retry",
)
def job_retry(request: HttpRequest, pk: int):
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
    return Status(202, {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"})


def _node_job(request: HttpRequest, cluster: Cluster, action: str, start):
    """Validate the body as a NewServerIn, run `start(data)` (a node service that saves the node
    and starts its job) and answer 202; invalid input is a 400 with field errors, a refused job
    a 400/409; all audited."""
    target = f"cluster {cluster.name}"
    params: dict = {}
    try:
        data = validated_body(request, s.NewServerIn).model_dump(mode="json", exclude_unset=True)
        params = {k: data[k] for k in ("name", "address", "ssh_port") if k in data}
        job = start(data)
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
    return Status(202, {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/", "node": job.node.name})


@router.post(
    "/clusters/{int:pk}/nodes/",
    auth=ADMIN_AUTH,
    response={202: hist.NodeJobOut, **errors(400, 401, 403, 404, 409, 413)},
    openapi_extra=body_of(s.NewServerIn),
    url_name="api-cluster-nodes",
)
def cluster_nodes(request: HttpRequest, pk: int):
    """Add a database server to a running cluster: `{name, address, ssh_port, credential,
    host_key_fingerprint}` (fingerprint from a scan) -> 202 with the `add_node` job (admins:
    it changes the inventory). With `kind: "proxy"`, a second proxy (at most two; it runs
    HAProxy, and keepalived when the cluster has a floating address, never etcd)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return _node_job(
        request,
        cluster,
        "node.add",
        lambda data: node_add(cluster=cluster, data=data, requested_by=request.user),
    )


@router.post(
    "/clusters/{int:pk}/nodes/{str:name}/replace/",
    auth=ADMIN_AUTH,
    response={202: hist.NodeJobOut, **errors(400, 401, 403, 404, 409, 413)},
    openapi_extra=body_of(s.NewServerIn),
    url_name="api-node-replace",
)
def node_replace_view(request: HttpRequest, pk: int, name: str):
    """Replace a dead node with a new server under the same name: `{address, ssh_port,
    credential, host_key_fingerprint}` -> 202 with the `replace_node` job (admins)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    node = get_object_or_404(Node, cluster=cluster, name=name)
    return _node_job(
        request,
        cluster,
        "node.replace",
        lambda data: node_replace(node=node, data=data, requested_by=request.user),
    )


MAX_JOBS_PAGE = 200
JOB_QUERY = [
    paging.choice_parameter("kind", JobKind.values, "Job kinds"),
    paging.choice_parameter("status", JobStatus.values, "Job statuses"),
    *paging.window_parameters(MAX_JOBS_PAGE),
]


def _jobs_page(request: HttpRequest, jobs: QuerySet, errors: dict) -> dict:
    """The page of `jobs` the query asks for (newest first by creation), or a 400 naming
    every bad parameter."""
    kinds = paging.choices(request, "kind", JobKind.values, errors)
    statuses = paging.choices(request, "status", JobStatus.values, errors)
    query = paging.window(request, errors, max_limit=MAX_JOBS_PAGE)
    if errors:
        raise ApiError(400, "Bad query.", errors)
    if kinds:
        jobs = jobs.filter(kind__in=kinds)
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    jobs = jobs.select_related("cluster", "node", "requested_by")
    page, after = paging.page_of(jobs, query, "created")
    return {"jobs": [selectors.job_summary(j) for j in page], "next": after}


@router.get(
    "/clusters/{int:pk}/jobs/",
    auth=VIEWER_AUTH,
    response={200: hist.JobPageOut, **errors(400, 401, 403, 404)},
    openapi_extra={"parameters": JOB_QUERY},
    url_name="api-cluster-jobs",
)
def cluster_job_list(request: HttpRequest, pk: int):
    """The cluster's jobs, newest first: `?kind=&status=` (repeated or comma-separated),
    `since=`/`until=` on the creation time, `limit=` (1 to 200, 50) and `cursor=`."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return _jobs_page(request, Job.objects.filter(cluster=cluster), {})


@router.get(
    "/jobs/",
    auth=VIEWER_AUTH,
    response={200: hist.JobPageOut, **errors(400, 401, 403)},
    openapi_extra={"parameters": [events.ALL_CLUSTERS_QUERY[0], *JOB_QUERY]},
    url_name="api-jobs",
)
def job_list(request: HttpRequest):
    """Every cluster's jobs (or those of `?cluster=`, by name or id), newest first, with the
    filters and cursor of a cluster's jobs — the console's Jobs page."""
    errors: dict[str, list[str]] = {}
    chosen = events.clusters_named(request, errors)
    found = Job.objects.all()
    if chosen is not None:
        found = found.filter(cluster__in=chosen)
    return _jobs_page(request, found, errors)
