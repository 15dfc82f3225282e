"""GET and PUT /api/v1/clusters/{id}/backups/: a cluster's backups (issue 22 part 1)."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from clusters.access.audit import audit, refused
from clusters.inventory.backups import backup_policy_set
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster
from clusters.web.api import schemas_backups as s
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import ADMIN_AUTH, VIEWER_AUTH, ApiError, validated_body
from clusters.web.backups_status import backups_status

router = Router(tags=["backups"])


@router.get(
    "/clusters/{int:pk}/backups/",
    auth=VIEWER_AUTH,
    response={200: s.BackupsOut, **errors(401, 403, 404)},
    url_name="api-cluster-backups",
)
def cluster_backups(request: HttpRequest, pk: int):
    """The cluster's backup policy, its last backups and WAL archive as the last backup job
    read them, and its recent backup jobs; 404 when backups were never set."""
    status = backups_status(get_object_or_404(Cluster, pk=pk))
    if status is None:
        raise ApiError(404, "This cluster has no backups; PUT a policy first.")
    return status


@router.put(
    "/clusters/{int:pk}/backups/",
    auth=ADMIN_AUTH,
    response={200: s.BackupsOut, **errors(400, 401, 403, 404, 413)},
    openapi_extra=body_of(s.BackupPolicyIn),
    url_name="api-cluster-backups",
)
def cluster_backups_set(request: HttpRequest, pk: int):
    """Set the backup policy (admins). The servers change when `configure_backups` runs
    (setup also archives WAL once a policy exists)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    target = f"cluster {cluster.name}"
    try:
        body = validated_body(request, s.BackupPolicyIn)
        data = body.model_dump(exclude_none=True)
        if body.repo_node == "":
            data["repo_node"] = ""
        backup_policy_set(cluster=cluster, data=data)
    except InvalidInput as exc:
        audit(request, action="backups.set", target=target, result=refused(exc.field_errors))
        raise ApiError(400, "Cannot set these backups.", exc.field_errors) from None
    audit(request, action="backups.set", target=target, params=data)
    return backups_status(cluster)
