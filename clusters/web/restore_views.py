"""The page that restores the cluster's backups onto a new server: point-in-time recovery, or
"clone this cluster as of time T" for a test copy (issue 22 part 2).

Like adding a node: enter the server, let a worker read its host key, compare and confirm the
fingerprint, type the server's address once more, then the `restore` job checks everything
again (never onto a member of any cluster) and runs. Admins only: it copies the cluster's data
onto another server. The cluster itself is not touched.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit
from clusters.access.roles import ADMIN, role_required
from clusters.models import Cluster, Credential
from clusters.web import scans
from clusters.web.action_checks import facts_read, why_not
from jobs import services
from jobs.errors import JobRefused
from jobs.playbooks.restore import TARGET_TYPES

FIELDS = ("address", "ssh_port", "credential", "target_type", "target")


def _typed(request: HttpRequest) -> dict:
    typed = {f: request.POST.get(f, "").strip() for f in FIELDS}
    if typed["target_type"] not in TARGET_TYPES:
        typed["target_type"] = "latest"
    return typed


def _params(typed: dict, fingerprint: str, confirm: str) -> dict:
    """The restore job's parameters, as POST /api/v1/clusters/{id}/jobs/ takes them."""
    port = typed["ssh_port"] or "22"
    params = {
        "address": typed["address"],
        "ssh_port": int(port) if port.isdigit() else port,
        "credential": int(typed["credential"]) if typed["credential"].isdigit() else None,
        "host_key_fingerprint": fingerprint,
        "target_type": typed["target_type"],
        "confirm": confirm,
    }
    if typed["target_type"] != "latest":
        params["target"] = typed["target"]
    return params


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def restore_page(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    typed = {"ssh_port": "22", "target_type": "time", "credential": "", "target": ""}
    errors: dict[str, list[str]] = {}
    key: dict = {}
    if request.method == "POST":
        typed = _typed(request)
        key, errors, confirmed = scans.host_key_step(request, typed, "compared")
        if confirmed:
            confirm = request.POST.get("confirm_address", "").strip()
            try:
                job = services.job_start(
                    cluster=cluster,
                    kind="restore",
                    params=_params(typed, key["fingerprint"], confirm),
                    requested_by=request.user,
                )
            except JobRefused as exc:  # a member, a wrong time, no backups...: nothing ran
                errors = {"non_field_errors": [str(exc)]}
            else:
                audit(
                    request,
                    action="cluster.restore",
                    target=f"cluster {cluster.name}",
                    params={
                        "address": typed["address"],
                        "target_type": typed["target_type"],
                        "target": typed["target"],
                        "job": job.pk,
                    },
                )
                return redirect("job-detail", pk=job.pk)
    return render(
        request,
        "clusters/restore.html",
        {
            "cluster": cluster,
            # Said before the admin types a server in, not after the job is refused.
            "off": why_not(cluster, "restore", None, facts_read(cluster)),
            "typed": typed,
            "key": key,
            "errors": errors,
            "credentials": Credential.objects.all(),
            "target_types": TARGET_TYPES,
        },
    )
