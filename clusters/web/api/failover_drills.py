"""/api/v1/clusters/{id}/failover-drills/: a cluster's failover drills, and starting one
(issue 21 part 6)."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from clusters.access.audit import audit, refused
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster
from clusters.web.api import schemas_failover_drills as s
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import ADMIN_AUTH, VIEWER_AUTH, ApiError, validated_body
from clusters.web.api.schemas import JobRefOut
from clusters.web.failover_drills import failover_drills_of
from jobs import services as job_services
from jobs.errors import JobConflict, JobRefused
from jobs.playbooks.drill_checks import drill_refusal

router = Router(tags=["failover drills"])
PATH = "/clusters/{int:pk}/failover-drills/"


@router.get(
    PATH,
    auth=VIEWER_AUTH,
    response={200: s.FailoverDrillsOut, **errors(401, 403, 404)},
    url_name="api-cluster-failover-drills",
)
def cluster_failover_drills(request: HttpRequest, pk: int):
    """The cluster's last failover drills (date, RTO, RPO, outcome), newest first, and why a
    drill cannot start now by the monitor's last reading."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return {"why_not": drill_refusal(cluster), "drills": failover_drills_of(cluster)}


@router.post(
    PATH,
    auth=ADMIN_AUTH,
    response={202: JobRefOut, **errors(400, 401, 403, 404, 409, 413)},
    openapi_extra=body_of(s.FailoverDrillIn),
    url_name="api-cluster-failover-drills",
)
def cluster_failover_drill_start(request: HttpRequest, pk: int):
    """Start a failover drill (admins): the primary is powered off through its fence device,
    the outage and loss measured with a writer through the proxy, the old primary powered on
    and rebuilt. `confirm` must be the cluster's name. 400 when the cluster cannot be drilled
    now (no tested fence device on the primary, not healthy, no standby to take over), 409
    while another job changes it."""
    cluster = get_object_or_404(Cluster, pk=pk)
    target = f"cluster {cluster.name}"
    action = "job.start.failover_drill"
    try:
        body = validated_body(request, s.FailoverDrillIn)
    except InvalidInput as exc:
        audit(request, action=action, target=target, result=refused(exc.field_errors))
        raise ApiError(400, "Cannot start a failover drill.", exc.field_errors) from None
    try:
        job = job_services.job_start(
            cluster=cluster,
            kind="failover_drill",
            params={"confirm": body.confirm},
            requested_by=request.user,
        )
    except JobRefused as exc:
        audit(request, action=action, target=target, result=f"refused: {exc}")
        raise ApiError(409 if isinstance(exc, JobConflict) else 400, str(exc)) from None
    audit(request, action=action, target=target, params={"job": job.pk})
    return Status(202, {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"})
