"""The fast-failover page of a cluster (issue 21): the setting, which nodes the witness's agent
may fence, and its decisions.

Anyone who may view sees it; admins turn it on or off and set the window (at most one fast
failover per window). The agent lives on the witness, so a change is applied by running setup
again: saving starts that setup job, and a refused job (another job running) saves nothing.
"""

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit
from clusters.access.roles import ADMIN, VIEWER, has_role, role_required
from clusters.models import Cluster
from clusters.web.fastpath_selectors import fast_failover_detail
from jobs import services as job_services
from jobs.errors import JobRefused

# The window, in minutes: at least a minute, at most a week.
WINDOW_MINUTES = (1, 7 * 24 * 60)


class _Refused(Exception):
    """Rolls the saved setting back when its setup job is refused."""


def posted_setting(request: HttpRequest) -> tuple[dict, dict[str, list[str]]]:
    """The form's setting, or why not: (fields, errors)."""
    raw = request.POST.get("window_minutes", "").strip()
    low, high = WINDOW_MINUTES
    if not raw.isdigit() or not low <= int(raw) <= high:
        return {}, {"window_minutes": [f"Enter a whole number of minutes from {low} to {high}."]}
    return {
        "fast_failover": request.POST.get("fast_failover") == "on",
        "fast_failover_window_s": int(raw) * 60,
    }, {}


@role_required(VIEWER, post=ADMIN)
@require_http_methods(["GET", "POST"])
def fast_failover_page(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    target = f"cluster {cluster.name}"
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        fields, errors = posted_setting(request)
        if not errors:
            try:
                job = _save_and_apply(request, cluster, fields)
            except _Refused as exc:
                errors = {"non_field_errors": [str(exc)]}
                audit(request, action="fast_failover.set", target=target, result=f"refused: {exc}")
            else:
                audit(request, action="fast_failover.set", target=target, params=fields)
                return redirect("job-detail", pk=job.pk) if job else redirect(request.path)
        else:
            audit(request, action="fast_failover.set", target=target, result="refused: input")
        cluster.refresh_from_db()
    return render(
        request,
        "clusters/fast_failover.html",
        {
            "cluster": cluster,
            "fast": fast_failover_detail(cluster),
            "errors": errors,
            "can_admin": has_role(request.user, ADMIN),
            "window_range": WINDOW_MINUTES,
        },
    )


def _save_and_apply(request: HttpRequest, cluster: Cluster, fields: dict):
    """Save the setting and, on a cluster already set up, start setup to apply it on the
    witness; the job (None when nothing needed applying). Refused: nothing saved."""
    changed = any(getattr(cluster, k) != v for k, v in fields.items())
    set_up = cluster.state not in (Cluster.State.NEW, Cluster.State.PROVISIONING)
    with transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(**fields)
        if not (changed and set_up):
            return None
        cluster.refresh_from_db()
        try:
            return job_services.job_start(cluster=cluster, kind="setup", requested_by=request.user)
        except JobRefused as exc:
            raise _Refused(f"Not saved: setup must run to apply it, and {exc}") from exc
