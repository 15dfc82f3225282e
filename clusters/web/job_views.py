"""Job pages: the list, a job with its steps and live log (htmx polling with a cursor)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from clusters.access.audit import audit
from clusters.access.roles import OPERATOR, VIEWER, has_role, refusal, role_for_job, role_required
from clusters.models import Cluster, Node
from jobs import selectors, services
from jobs.errors import JobRefused
from jobs.models import Job


@role_required(VIEWER)
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.select_related("cluster", "requested_by")[:200]
    return render(request, "jobs/job_list.html", {"jobs": jobs})


@role_required(VIEWER)
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.select_related("cluster"), pk=pk)
    lines, cursor, done = selectors.job_log_after(job, 0)
    steps = list(job.steps.select_related("node"))
    return render(
        request,
        "jobs/job_detail.html",
        {
            "job": job,
            "steps": steps,
            "progress": selectors.job_progress(steps),
            "lines": lines,
            "cursor": cursor,
            "done": done,
        },
    )


@role_required(VIEWER)
@vary_on_headers("HX-Request")
def job_steps(request: HttpRequest, pk: int) -> HttpResponse:
    """The step table and status; it stops polling itself once the job has ended."""
    job = get_object_or_404(Job, pk=pk)
    if not request.htmx:
        return redirect("job-detail", pk=job.pk)
    steps = list(job.steps.select_related("node"))
    context = {"job": job, "steps": steps, "progress": selectors.job_progress(steps)}
    return render(request, "jobs/htmx/steps.html", context)


@role_required(VIEWER)
def job_log(request: HttpRequest, pk: int) -> HttpResponse:
    """Log lines after `?after=N` and a new poller with the next cursor (none once done)."""
    job = get_object_or_404(Job, pk=pk)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        after = 0
    lines, cursor, done = selectors.job_log_after(job, after)
    return render(
        request, "jobs/htmx/log.html", {"job": job, "lines": lines, "cursor": cursor, "done": done}
    )


def _redirect_to_job(request: HttpRequest, job: Job) -> HttpResponse:
    return redirect("job-detail", pk=job.pk)


@role_required(OPERATOR)
@require_POST
def job_start(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    kind = request.POST.get("kind", "")
    target, shown = f"cluster {cluster.name}", {"kind": kind, "node": request.POST.get("node")}
    if not has_role(request.user, role_for_job(kind)):
        message = refusal(request.user, role_for_job(kind))
        audit(request, action=f"job.start.{kind}", target=target, result=f"refused: {message}")
        raise PermissionDenied(message)
    node = None
    if request.POST.get("node"):
        node = Node.objects.filter(cluster=cluster, name=request.POST["node"]).first()
        if node is None:
            message = f"{cluster.name} has no node {request.POST['node']!r}."
            audit(request, action=f"job.start.{kind}", target=target, result=f"refused: {message}")
            messages.error(request, message)
            return redirect("cluster-detail", pk=cluster.pk)
    try:
        params = {"confirm": request.POST["confirm"]} if "confirm" in request.POST else {}
        job = services.job_start(
            cluster=cluster, kind=kind, node=node, params=params, requested_by=request.user
        )
    except JobRefused as exc:
        audit(
            request,
            action=f"job.start.{kind}",
            target=target,
            params=shown,
            result=f"refused: {exc}",
        )
        messages.error(request, str(exc))
        return redirect("cluster-detail", pk=cluster.pk)
    audit(request, action=f"job.start.{kind}", target=target, params={**shown, "job": job.pk})
    return _redirect_to_job(request, job)


@role_required(OPERATOR)
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk)
    try:
        services.job_cancel(job=job)
    except JobRefused as exc:
        audit(request, action="job.cancel", target=f"job {job.pk}", result=f"refused: {exc}")
        messages.error(request, str(exc))
    else:
        audit(request, action="job.cancel", target=f"job {job.pk}")
        messages.info(request, f"Cancel requested for job #{job.pk}.")
    return _redirect_to_job(request, job)


@role_required(OPERATOR)
@require_POST
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk)
    if not has_role(request.user, role_for_job(job.kind)):
        message = refusal(request.user, role_for_job(job.kind))
        audit(request, action="job.retry", target=f"job {job.pk}", result=f"refused: {message}")
        raise PermissionDenied(message)
    try:
        services.job_retry(job=job)
    except JobRefused as exc:
        audit(request, action="job.retry", target=f"job {job.pk}", result=f"refused: {exc}")
        messages.error(request, str(exc))
    else:
        audit(request, action="job.retry", target=f"job {job.pk}")
    return _redirect_to_job(request, job)
