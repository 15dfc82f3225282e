"""/api/v1/clusters/{id}/nodes/{name}/fence/: a database node's fence device, and its test
(issue 21 part 1); /api/v1/clusters/{id}/fast-failover/: the fenced fast failover's setting,
readiness and decisions."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from clusters.access.audit import audit, refused
from clusters.inventory.fencing import (
    fence_device_delete,
    fence_device_set,
    fence_device_summary,
)
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster, FenceDevice, Node
from clusters.web.api import schemas_fencing as s
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import (
    ADMIN_AUTH,
    OPERATOR_AUTH,
    VIEWER_AUTH,
    ApiError,
    validated_body,
)
from clusters.web.api.schemas import JobRefOut
from clusters.web.fast_failover_setting import fast_failover_set, window_seconds
from clusters.web.fastpath_selectors import fast_failover_detail
from jobs import services as job_services
from jobs.errors import JobConflict, JobRefused

router = Router(tags=["fencing"])
PATH = "/clusters/{int:pk}/nodes/{name}/fence/"


def _node(pk: int, name: str) -> Node:
    return get_object_or_404(Node, cluster=get_object_or_404(Cluster, pk=pk), name=name)


def _device(node: Node) -> FenceDevice:
    device = FenceDevice.objects.filter(node=node).first()
    if device is None:
        raise ApiError(404, f"{node.name} has no fence device; PUT one first.")
    return device


def _shown(device: FenceDevice) -> dict:
    """What the audit log keeps of a device: never the secret."""
    return {"method": device.method, "options": device.options, "secret_set": bool(device.secret)}


@router.get(
    PATH,
    auth=VIEWER_AUTH,
    response={200: s.FenceDeviceOut, **errors(401, 403, 404)},
    url_name="api-node-fence",
)
def node_fence(request: HttpRequest, pk: int, name: str):
    """The node's fence device (never its secret: only whether one is set) and its last test."""
    return fence_device_summary(_device(_node(pk, name)))


@router.put(
    PATH,
    auth=ADMIN_AUTH,
    response={200: s.FenceDeviceOut, **errors(400, 401, 403, 404, 413)},
    openapi_extra=body_of(s.FenceDeviceIn),
    url_name="api-node-fence",
)
def node_fence_set(request: HttpRequest, pk: int, name: str):
    """Define or change the node's fence device (admins). Setup installs its agent on the
    witness; POST …/fence/test/ then checks the witness reaches it."""
    node = _node(pk, name)
    target = f"node {node.name} of cluster {node.cluster.name}"
    try:
        body = validated_body(request, s.FenceDeviceIn)
        device = fence_device_set(node=node, data=body.model_dump(exclude_none=True))
    except InvalidInput as exc:
        audit(request, action="fence_device.set", target=target, result=refused(exc.field_errors))
        raise ApiError(400, "Cannot set this fence device.", exc.field_errors) from None
    audit(request, action="fence_device.set", target=target, params=_shown(device))
    return fence_device_summary(device)


@router.delete(
    PATH,
    auth=ADMIN_AUTH,
    response={200: s.FenceDeviceOut, **errors(401, 403, 404)},
    url_name="api-node-fence",
)
def node_fence_delete(request: HttpRequest, pk: int, name: str):
    """Remove the node's fence device (admins): it keeps the lease path. Answers what it was."""
    node = _node(pk, name)
    device = _device(node)
    answer = fence_device_summary(device)
    fence_device_delete(node=node)
    audit(
        request,
        action="fence_device.delete",
        target=f"node {node.name} of cluster {node.cluster.name}",
        params=_shown(device),
    )
    return answer


@router.post(
    PATH + "test/",
    auth=OPERATOR_AUTH,
    response={202: JobRefOut, **errors(400, 401, 403, 404, 409)},
    url_name="api-node-fence-test",
)
def node_fence_test(request: HttpRequest, pk: int, name: str):
    """Start "Test fence device" (operators): a `fence_test` job asks the device for its power
    state from the witness (a status query, never an off) and keeps the answer."""
    node = _node(pk, name)
    _device(node)
    target = f"node {node.name} of cluster {node.cluster.name}"
    try:
        job = start_fence_test(request, node)
    except JobRefused as exc:
        audit(request, action="fence_device.test", target=target, result=f"refused: {exc}")
        status = 409 if isinstance(exc, JobConflict) else 400
        raise ApiError(status, str(exc)) from None
    audit(request, action="fence_device.test", target=target, params={"job": job.pk})
    return Status(202, {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"})


def start_fence_test(request: HttpRequest, node: Node):
    """The fence_test job for the node, requested by the request's user."""
    return job_services.job_start(
        cluster=node.cluster, kind="fence_test", node=node, requested_by=request.user
    )


FAST_PATH = "/clusters/{int:pk}/fast-failover/"


def _fast_answer(cluster: Cluster, job=None) -> dict:
    detail = fast_failover_detail(cluster)
    return {
        **detail,
        "witness": detail["witness"].name if detail["witness"] else None,
        "decisions": [{**d, "at": d["at"].isoformat()} for d in detail["decisions"]],
        "job": {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"} if job else None,
    }


@router.get(
    FAST_PATH,
    auth=VIEWER_AUTH,
    response={200: s.FastFailoverOut, **errors(401, 403, 404)},
    url_name="api-fast-failover",
)
def fast_failover(request: HttpRequest, pk: int):
    """Whether the witness's agent may fence and hand over at once, which nodes it may fence
    (and why the others keep the lease path), and its last decisions."""
    return _fast_answer(get_object_or_404(Cluster, pk=pk))


@router.put(
    FAST_PATH,
    auth=ADMIN_AUTH,
    response={200: s.FastFailoverOut, **errors(400, 401, 403, 404, 409, 413)},
    openapi_extra=body_of(s.FastFailoverIn),
    url_name="api-fast-failover",
)
def fast_failover_put(request: HttpRequest, pk: int):
    """Turn fast failover on or off and set its window (admins). On a cluster already set up a
    change starts setup, which applies it on the witness (`job`); when setup may not start now
    (409), nothing is saved."""
    cluster = get_object_or_404(Cluster, pk=pk)
    target = f"cluster {cluster.name}"
    try:
        body = validated_body(request, s.FastFailoverIn)
        window_s = window_seconds(body.window_minutes)
        job = fast_failover_set(cluster, enabled=body.enabled, window_s=window_s, user=request.user)
    except InvalidInput as exc:
        audit(request, action="fast_failover.set", target=target, result=refused(exc.field_errors))
        raise ApiError(400, "Cannot set fast failover.", exc.field_errors) from None
    except JobRefused as exc:
        audit(request, action="fast_failover.set", target=target, result=f"refused: {exc}")
        status = 409 if isinstance(exc, JobConflict) else 400
        raise ApiError(status, f"Not saved: setup must run to apply it, and {exc}") from None
    params = {"fast_failover": body.enabled, "fast_failover_window_s": window_s}
    audit(request, action="fast_failover.set", target=target, params=params)
    return _fast_answer(cluster, job)
