"""The audit page: who did what, filtered; read-only (there is no way to change an entry)."""

import ipaddress
from datetime import UTC, datetime, time
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from clusters.access.roles import ADMIN, role_required
from clusters.models import AuditEntry

PAGE_SIZE = 100
RESULTS = {"ok": "succeeded", "refused": "refused or failed"}


def _day(value: str, *, end: bool) -> datetime | None:
    """A YYYY-MM-DD filter as the start (or end) of that UTC day; None when blank or malformed."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


def audit_entries(params) -> tuple:
    """The entries matching the page's filters (query string ``params``), and the filters used."""
    filters = {
        key: str(params.get(key, "")).strip()[:100]
        for key in ("user", "action", "target", "result", "address", "since", "until")
    }
    entries = AuditEntry.objects.all()
    if filters["user"]:
        entries = entries.filter(username__iexact=filters["user"])
    if filters["action"]:
        entries = entries.filter(action__startswith=filters["action"])
    if filters["target"]:
        entries = entries.filter(target__icontains=filters["target"])
    if filters["result"] == "ok":
        entries = entries.filter(result="ok")
    elif filters["result"] == "refused":
        entries = entries.exclude(result="ok")
    if filters["address"]:
        try:  # PostgreSQL's inet comparison fails on a malformed address: check it first
            ipaddress.ip_address(filters["address"])
            entries = entries.filter(source_address=filters["address"])
        except ValueError:
            entries, filters["address_error"] = entries.none(), "Not an IP address."
    if since := _day(filters["since"], end=False):
        entries = entries.filter(at__gte=since)
    if until := _day(filters["until"], end=True):
        entries = entries.filter(at__lte=until)
    return entries, filters


@role_required(ADMIN)
@require_safe
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit trail, newest first, 100 a page, with filters in the query string."""
    entries, filters = audit_entries(request.GET)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in filters.items() if v and k != "address_error"})
    return render(
        request,
        "clusters/audit.html",
        {
            "page": page,
            "filters": filters,
            "results": RESULTS,
            "actions": AuditEntry.objects.order_by("action")
            .values_list("action", flat=True)
            .distinct(),
            "query": query,
        },
    )
