"""REST endpoints for PostgreSQL parameters: what the nodes last reported, a preview of a
change, and the confirmed change's job (jobs.parameter_changes). No server is asked here: a
`read_parameters` job (POST /clusters/{id}/jobs/) refreshes the reading."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from clusters.access.audit import audit, refused
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster
from clusters.web.api import schemas as s
from clusters.web.api import schemas_parameters as sp
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import (
    OPERATOR_AUTH,
    VIEWER_AUTH,
    ApiError,
    in_one_line,
    validated_body,
)
from jobs import parameter_changes
from jobs.errors import JobConflict, JobRefused

router = Router(tags=["parameters"])


@router.get(
    "/clusters/{int:pk}/parameters/",
    auth=VIEWER_AUTH,
    response={200: sp.ParametersOut, **errors(401, 403, 404)},
    url_name="api-cluster-parameters",
)
def parameters(request: HttpRequest, pk: int):
    """Each node's parameters as the last reading found them, and which wait for a restart."""
    return parameter_changes.parameters_current(get_object_or_404(Cluster, pk=pk))


CHANGE_ANSWERS = {200: sp.PreviewOut, 202: s.JobRefOut, **errors(400, 401, 403, 404, 409, 413)}


@router.post(
    "/clusters/{int:pk}/parameters/",
    auth=OPERATOR_AUTH,
    response=CHANGE_ANSWERS,
    openapi_extra=body_of(sp.ParametersIn),
)
def parameters_change(request: HttpRequest, pk: int):
    """Preview a change (reload or rolling restart, per parameter); with `confirm` and the
    preview's `restart`, start the job that applies it."""
    return _change(request, pk)


@router.patch(
    "/clusters/{int:pk}/parameters/",
    auth=OPERATOR_AUTH,
    response=CHANGE_ANSWERS,
    openapi_extra=body_of(sp.ParametersIn),
)
def parameters_patch(request: HttpRequest, pk: int):
    """The same as POST: preview, or with `confirm` start the change."""
    return _change(request, pk)


def _change(request: HttpRequest, pk: int):
    cluster = get_object_or_404(Cluster, pk=pk)
    target = f"cluster {cluster.name}"
    try:
        body = validated_body(request, sp.ParametersIn)
    except InvalidInput as exc:
        audit(request, action="parameters.change", target=target, result=refused(exc.field_errors))
        raise ApiError(400, in_one_line(exc.field_errors), exc.field_errors) from None
    shown = parameter_changes.audit_params(body.parameters)
    try:
        if not body.confirm:
            answer = parameter_changes.parameters_preview(
                cluster=cluster, requested=body.parameters
            )
            audit(request, action="parameters.preview", target=target, params=shown)
            return answer
        if body.restart is None:
            raise InvalidInput({"restart": ["Confirm the preview's restart (true or false)."]})
        job = parameter_changes.parameters_change(
            cluster=cluster,
            requested=body.parameters,
            restart=body.restart,
            requested_by=request.user,
        )
    except InvalidInput as exc:
        audit(
            request,
            action="parameters.change" if body.confirm else "parameters.preview",
            target=target,
            params=shown,
            result=f"refused: {in_one_line(exc.field_errors)}",
        )
        raise ApiError(400, in_one_line(exc.field_errors), exc.field_errors) from None
    except JobRefused as exc:
        status = 409 if isinstance(exc, JobConflict) else 400
        audit(
            request,
            action="parameters.change",
            target=target,
            params=shown,
            result=f"refused: {exc}",
        )
        raise ApiError(status, str(exc)) from None
    audit(
        request,
        action="parameters.change",
        target=target,
        params={**shown, "restart": body.restart, "job": job.pk},
    )
    return Status(202, {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"})
