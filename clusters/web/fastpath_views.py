"""The fast-failover page of a cluster (issue 21): the setting, which nodes the witness's agent
may fence, and its decisions.

Anyone who may view sees it; admins turn it on or off and set the window (at most one fast
failover per window); saving a change runs setup again, which applies it on the witness
(clusters.inventory.fast_failover).
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, VIEWER, has_role, role_required
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster
from clusters.web.fast_failover_setting import WINDOW_MINUTES, fast_failover_set, window_seconds
from clusters.web.fastpath_selectors import fast_failover_detail
from jobs.errors import JobRefused


@role_required(VIEWER, post=ADMIN)
@require_http_methods(["GET", "POST"])
def fast_failover_page(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    target = f"cluster {cluster.name}"
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        enabled = request.POST.get("fast_failover") == "on"
        try:
            window_s = window_seconds(request.POST.get("window_minutes", ""))
            job = fast_failover_set(cluster, enabled=enabled, window_s=window_s, user=request.user)
        except InvalidInput as exc:
            errors = exc.field_errors
            audit(request, action="fast_failover.set", target=target, result=refused(errors))
        except JobRefused as exc:
            errors = {"non_field_errors": [f"Not saved: setup must run to apply it, and {exc}"]}
            audit(request, action="fast_failover.set", target=target, result=f"refused: {exc}")
        else:
            params = {"fast_failover": enabled, "fast_failover_window_s": window_s}
            audit(request, action="fast_failover.set", target=target, params=params)
            return redirect("job-detail", pk=job.pk) if job else redirect(request.path)
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
