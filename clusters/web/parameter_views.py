"""The PostgreSQL parameters page: what each node last reported, a change typed as
postgresql.conf lines, its preview ("reload" or "restart needed: rolling restart…"), and the
confirmation that starts the change job (jobs.parameter_changes; its API twin is
clusters.web.api.parameters). The page reads no server: the Refresh button starts a
`read_parameters` job."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit
from clusters.access.roles import OPERATOR, VIEWER, has_role, refusal, role_required
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster
from clusters.web import action_checks
from jobs import parameter_changes
from jobs.errors import JobRefused
from jobs.parameter_rules import parse_lines


def _rows(cluster: Cluster) -> tuple[list[str], list[dict]]:
    """The node names and one row per parameter: its context and unit, each node's value."""
    current = parameter_changes.parameters_current(cluster)
    catalog = (cluster.pg_parameters or {}).get("catalog") or {}
    nodes = sorted(current["nodes"])
    names = sorted({name for values in current["nodes"].values() for name in values})
    rows = []
    for name in names:
        row = catalog.get(name) or {}
        cells = [current["nodes"][node].get(name) or {} for node in nodes]
        rows.append(
            {
                "name": name,
                "context": row.get("context", ""),
                "unit": row.get("unit") or "",
                "cells": cells,
                "pending": any(c.get("pending_restart") for c in cells),
            }
        )
    return nodes, rows


def _preview_or_start(request: HttpRequest, cluster: Cluster, text: str) -> dict | HttpResponse:
    """The preview of the typed change, or, once confirmed, the job page."""
    requested, line_errors = parse_lines(text)
    if line_errors:
        return {"errors": line_errors}
    shown = parameter_changes.audit_params(requested)
    confirming = request.POST.get("action") == "confirm"
    target = f"cluster {cluster.name}"
    try:
        if not confirming:
            preview = parameter_changes.parameters_preview(cluster=cluster, requested=requested)
            audit(request, action="parameters.preview", target=target, params=shown)
            return {"preview": preview}
        restart = request.POST.get("restart") == "yes"
        job = parameter_changes.parameters_change(
            cluster=cluster, requested=requested, restart=restart, requested_by=request.user
        )
    except InvalidInput as exc:
        audit(
            request,
            action="parameters.change" if confirming else "parameters.preview",
            target=target,
            params=shown,
            result="refused: invalid " + ", ".join(exc.field_errors),
        )
        return {"errors": {k: " ".join(v) for k, v in exc.field_errors.items()}}
    except JobRefused as exc:
        audit(
            request,
            action="parameters.change",
            target=target,
            params=shown,
            result=f"refused: {exc}",
        )
        return {"errors": {"job": str(exc)}}
    audit(
        request,
        action="parameters.change",
        target=target,
        params={**shown, "restart": restart, "job": job.pk},
    )
    return redirect("job-detail", pk=job.pk)


@role_required(VIEWER)
@require_http_methods(["GET", "POST"])
def cluster_parameters(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the last reading and the change form; POST (operators): preview, then confirm."""
    cluster = get_object_or_404(Cluster, pk=pk)
    can_change = has_role(request.user, OPERATOR)
    text = request.POST.get("changes", "")
    outcome: dict = {}
    if request.method == "POST":
        if not can_change:
            message = refusal(request.user, OPERATOR)
            audit(
                request,
                action="parameters.change",
                target=f"cluster {cluster.name}",
                result=f"refused: {message}",
            )
            raise PermissionDenied(message)
        answer = _preview_or_start(request, cluster, text)
        if isinstance(answer, HttpResponse):
            return answer
        outcome = answer
    facts = action_checks.facts_read(cluster)
    preview = outcome.get("preview")
    nodes, rows = _rows(cluster)
    return render(
        request,
        "clusters/parameters.html",
        {
            "cluster": cluster,
            "nodes": nodes,
            "rows": rows,
            "can_change": can_change,
            "text": text,
            "preview": preview,
            "errors": outcome.get("errors") or {},
            "why_not": action_checks.why_not_change_parameters(
                cluster, restart=bool(preview and preview["restart"]), facts=facts
            ),
            "read_off": action_checks.why_not(cluster, "read_parameters", None, facts),
        },
    )
