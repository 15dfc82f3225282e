"""Read-only REST endpoints over what the console recorded: the audit trail (admins, with the
audit page's filters) and a cluster's replication lag history (the lag chart's data)."""

from datetime import datetime

from django.core.paginator import Paginator
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from clusters.models import AuditEntry, Cluster
from clusters.monitoring import lag_history
from clusters.web.api import schemas_history as hist
from clusters.web.api.openapi import errors
from clusters.web.api.plumbing import ADMIN_AUTH, VIEWER_AUTH, ApiError
from clusters.web.audit_views import PAGE_SIZE, RESULTS, audit_entries

router = Router()


def _is_day(text: str) -> bool:
    """Whether `text` is a day as the audit page's filters take it (the page ignores others)."""
    try:
        datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        return False
    return True


def audit_json(entry: AuditEntry) -> dict:
    return {
        "id": entry.pk,
        "at": entry.at,
        "user": entry.username,
        "action": entry.action,
        "target": entry.target,
        "params": entry.params,
        "source_address": entry.source_address,
        "result": entry.result,
    }


@router.get(
    "/audit/",
    auth=ADMIN_AUTH,
    response={200: hist.AuditPageOut, **errors(400, 401, 403)},
    url_name="api-audit",
    tags=["audit"],
)
def audit(
    request: HttpRequest,
    user: str = "",
    action: str = "",
    target: str = "",
    result: str = "",
    address: str = "",
    since: str = "",
    until: str = "",
    page: str = "1",
):
    """The audit trail, newest first, 100 a page (admins): `user` (exact), `action` (prefix),
    `target` (part), `result` (ok or refused), `address`, `since` and `until` (UTC days,
    YYYY-MM-DD, inclusive), `page`. Unlike the page, a malformed filter is a 400."""
    wrong: dict[str, list[str]] = {}
    if result and result not in RESULTS:
        wrong["result"] = [f"Use one of {', '.join(RESULTS)}."]
    for name, value in (("since", since), ("until", until)):
        if value and not _is_day(value):
            wrong[name] = ["Expected a day as YYYY-MM-DD."]
    if not page.isdigit() or int(page) < 1:
        wrong["page"] = ["Expected a whole number ≥ 1."]
    query = {
        "user": user,
        "action": action,
        "target": target,
        "result": result,
        "address": address,
        "since": since,
        "until": until,
    }
    entries, filters = audit_entries(query)
    if "address_error" in filters:
        wrong["address"] = [filters["address_error"]]
    if wrong:
        raise ApiError(400, "Bad query.", wrong)
    paginator = Paginator(entries, PAGE_SIZE)
    if int(page) > max(paginator.num_pages, 1):
        raise ApiError(400, "Bad query.", {"page": [f"There are {paginator.num_pages} pages."]})
    shown = paginator.get_page(int(page))
    return {
        "entries": [audit_json(e) for e in shown],
        "page": shown.number,
        "pages": paginator.num_pages,
        "count": paginator.count,
    }


@router.get(
    "/clusters/{int:pk}/lag/",
    auth=VIEWER_AUTH,
    response={200: hist.LagOut, **errors(400, 401, 403, 404)},
    url_name="api-cluster-lag",
    tags=["clusters"],
)
def cluster_lag(request: HttpRequest, pk: int, range: str = "1h"):
    """The replication lag of the cluster's database nodes over `range` (1h: every sample;
    1d: the worst of each minute), as the cluster page's chart draws it, with the failovers
    and switchovers in the range (`events`) and the monitor's lag alert threshold."""
    cluster = get_object_or_404(Cluster, pk=pk)
    if range not in lag_history.RANGES:
        raise ApiError(
            400, "Bad query.", {"range": [f"Use one of {', '.join(lag_history.RANGES)}."]}
        )
    return lag_history.lag_series(cluster, range)
