"""Events through the REST API (DESIGN.md §3): newest first, filtered, and paged with a
cursor that stays right while the monitor and jobs keep recording events."""

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from clusters.models import Cluster, ClusterEvent
from clusters.web.api import paging
from clusters.web.api import schemas_history as hist
from clusters.web.api.openapi import errors
from clusters.web.api.plumbing import VIEWER_AUTH, ApiError

MAX_LIMIT = 500

router = Router(tags=["events"])

# The query's parameters as the document lists them; the view reads them itself (repeated
# and comma-separated values, its own messages).
QUERY = [
    paging.choice_parameter("kind", ClusterEvent.Kind.values, "Event kinds"),
    paging.choice_parameter("severity", ClusterEvent.Severity.values, "Severities"),
    *paging.window_parameters(MAX_LIMIT),
]
ALL_CLUSTERS_QUERY = [
    {
        "name": "cluster",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string"}},
        "description": "Clusters by name or id, repeated or comma-separated (all when absent).",
    },
    *QUERY,
]


def event_json(event: ClusterEvent) -> dict:
    """An event as the API answers it (events hold no secrets: names, timings, job ids)."""
    return {
        "id": event.pk,
        "cluster": event.cluster_id,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "severity": event.severity,
        "node": event.node or None,
        "summary": event.summary,
        "old_primary": event.old_primary or None,
        "new_primary": event.new_primary or None,
        "downtime_s": event.downtime_s,
        "lost_bytes": event.lost_bytes,
        "details": event.details,
        # The failover, switchover or outage it belongs to (GET /api/v1/incidents/{id}/).
        "incident": event.incident_id,
    }


def clusters_named(request: HttpRequest, errors: dict) -> list[Cluster] | None:
    """The clusters `?cluster=` names (by name or id), or None when it is absent."""
    refs = paging.values(request, "cluster")
    if not refs:
        return None
    found, unknown = [], []
    for ref in refs:
        cluster = Cluster.objects.filter(name=ref).first()
        if cluster is None and ref.isdigit():
            cluster = Cluster.objects.filter(pk=int(ref)).first()
        (found if cluster else unknown).append(cluster or ref)
    if unknown:
        errors["cluster"] = [f"No cluster {ref!r}." for ref in unknown]
    return found


def _events_page(request: HttpRequest, events: QuerySet, errors: dict) -> dict:
    """The page of `events` the query asks for, or a 400 naming every bad parameter."""
    kinds = paging.choices(request, "kind", ClusterEvent.Kind.values, errors)
    severities = paging.choices(request, "severity", ClusterEvent.Severity.values, errors)
    query = paging.window(request, errors, max_limit=MAX_LIMIT)
    if errors:
        raise ApiError(400, "Bad query.", errors)
    if kinds:
        events = events.filter(kind__in=kinds)
    if severities:
        events = events.filter(severity__in=severities)
    page, after = paging.page_of(events, query, "at")
    return {"events": [event_json(e) for e in page], "next": after}


@router.get(
    "/clusters/{int:pk}/events/",
    auth=VIEWER_AUTH,
    response={200: hist.EventPageOut, **errors(400, 401, 403, 404)},
    openapi_extra={"parameters": QUERY},
    url_name="api-cluster-events",
)
def cluster_events(request: HttpRequest, pk: int):
    """The cluster's events, newest first: `?kind=&severity=` (repeated or comma-separated),
    `since=` (inclusive) and `until=` (exclusive) ISO 8601 times, `limit=` (1 to 500, 50) and
    `cursor=` (an answer's `next`). Answers `{events, next}`; `next` is null on the last page.

    The order is (at, id) descending and a cursor is the last (at, id) answered, so events
    recorded while a client pages (new ones are newer) neither repeat nor shift a page; one
    recorded with an earlier time shows up on a later page if it falls there."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return _events_page(request, ClusterEvent.objects.filter(cluster=cluster), {})


@router.get(
    "/events/",
    auth=VIEWER_AUTH,
    response={200: hist.EventPageOut, **errors(400, 401, 403)},
    openapi_extra={"parameters": ALL_CLUSTERS_QUERY},
    url_name="api-events",
)
def events(request: HttpRequest):
    """Every cluster's events (or those of `?cluster=`, by name or id), newest first, with the
    filters and cursor of a cluster's events; each event names its cluster's id."""
    errors: dict[str, list[str]] = {}
    chosen = clusters_named(request, errors)
    found = ClusterEvent.objects.all()
    if chosen is not None:
        found = found.filter(cluster__in=chosen)
    return _events_page(request, found, errors)
