"""Job pages: the list, a job with its steps and live log (htmx polling with a cursor), and
the whole log as a text file."""

from datetime import UTC

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from clusters.access.audit import audit
from clusters.access.roles import OPERATOR, VIEWER, has_role, refusal, role_for_job, role_required
from clusters.models import Cluster, Node
from clusters.web import actions
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
    # The log filter offers the cluster's servers from the start (their lines may come later)
    # and any other host the log already names; the page's script adds hosts that appear.
    hosts = set(job.cluster.nodes.values_list("name", flat=True))
    # order_by(): the model's default ordering (seq) would make DISTINCT read every line.
    hosts |= set(job.log_lines.order_by().values_list("host", flat=True).distinct())
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
            "log_hosts": sorted(hosts),
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


@role_required(VIEWER)
@never_cache  # a running job's log grows: a proxy's or the browser's copy would be cut short
def job_log_text(request: HttpRequest, pk: int) -> HttpResponse:
    """The whole log as a text file: one line per log line, with its full UTC time, host and
    stream. The lines were redacted before they were stored (jobs.logwriter), so this serves
    what the page shows, no more."""
    job = get_object_or_404(Job.objects.select_related("cluster"), pk=pk)
    body = _log_text(job)
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    name = f"hacenter-job-{job.pk}-{job.kind}.log"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _log_text(job: Job) -> str:
    """A heading line, then ``<UTC time> <host or -> <stream>: <text>`` per line, in order."""
    finished = ""
    if job.finished:
        finished = f", finished {job.finished.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    out = [
        f"# HA Center job #{job.pk}: {job.kind} on cluster {job.cluster.name}, "
        f"status {job.status}{finished}\n"
    ]
    # iterator(): a long setup log is read in chunks, not as one list of model instances.
    rows = job.log_lines.order_by("seq").values_list("ts", "host", "stream", "text")
    for ts, host, stream, text in rows.iterator(chunk_size=2000):
        stamp = ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out.append(f"{stamp} {host or '-'} {stream}: {text}\n")
    return "".join(out)


def _redirect_to_job(request: HttpRequest, job: Job) -> HttpResponse:
    return redirect("job-detail", pk=job.pk)


def _confirmation_page(cluster: Cluster, kind: str, node: Node | None) -> str:
    """Where the admin typed the name: the kind's confirmation page, or the cluster page (whose
    danger zone confirms removing the cluster)."""
    if kind not in actions.ACTIONS:
        return reverse("cluster-detail", args=[cluster.pk])
    url = reverse("cluster-action-confirm", args=[cluster.pk, kind])
    return f"{url}?{urlencode({'node': node.name})}" if node is not None else url


# Job parameters a page's form may set, by job kind (anything else posted is ignored).
PAGE_PARAMS = {"backup": ("backup_type",)}


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
    typed = request.POST.get("confirm") if "confirm" in request.POST else None
    if wrong := actions.mistyped(cluster, kind, node, typed):
        # Said in words on the page the admin typed it on; the job's own refusal (kept for the
        # API, which names its `confirm` field) means nothing to a person at a form.
        audit(
            request,
            action=f"job.start.{kind}",
            target=target,
            params=shown,
            result="refused: the typed confirmation did not match",
        )
        messages.error(request, wrong)
        return redirect(_confirmation_page(cluster, kind, node))
    try:
        params = {"confirm": typed} if typed is not None else {}
        # The few choices a page's button makes (the playbook's plan checks their values).
        params.update({k: request.POST[k] for k in PAGE_PARAMS.get(kind, ()) if k in request.POST})
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
