"""Incidents through the REST API: a cluster's failovers, switchovers and outages, newest first
with a cursor (as events), and one incident told whole: timeline, measures, events and the
recommended next action. Read-only: incidents are made by the monitor and the events."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from clusters.models import Cluster, Incident
from clusters.web.api import paging
from clusters.web.api import schemas_incidents as s
from clusters.web.api.events import event_json
from clusters.web.api.openapi import errors
from clusters.web.api.plumbing import VIEWER_AUTH, ApiError
from clusters.web.incident_selectors import incident_story

MAX_LIMIT = 200

router = Router(tags=["incidents"])

QUERY = [
    paging.choice_parameter("kind", Incident.Kind.values, "Incident kinds"),
    {
        "name": "open",
        "in": "query",
        "schema": {"type": "boolean"},
        "description": "true: only the open incident; false: only closed ones.",
    },
    *paging.window_parameters(MAX_LIMIT),
]


def incident_json(incident: Incident) -> dict:
    """An incident as listed (no secrets: names, times, measures)."""
    return {
        "id": incident.pk,
        "cluster": incident.cluster_id,
        "kind": incident.kind,
        "title": incident.title,
        "opened": incident.opened.isoformat(),
        "closed": incident.closed.isoformat() if incident.closed else None,
        "old_primary": incident.old_primary or None,
        "new_primary": incident.new_primary or None,
        "downtime_s": incident.downtime_s,
        "lost_bytes": incident.lost_bytes,
    }


@router.get(
    "/clusters/{int:pk}/incidents/",
    auth=VIEWER_AUTH,
    response={200: s.IncidentPageOut, **errors(400, 401, 403, 404)},
    openapi_extra={"parameters": QUERY},
    url_name="api-cluster-incidents",
)
def cluster_incidents(request: HttpRequest, pk: int):
    """The cluster's incidents, newest first by opening time: `?kind=` (repeated or
    comma-separated), `open=true|false`, `since=` / `until=` (on the opening time), `limit=`
    (1 to 200, 50) and `cursor=` (an answer's `next`). Answers `{incidents, next}`."""
    cluster = get_object_or_404(Cluster, pk=pk)
    found = Incident.objects.filter(cluster=cluster)
    problems: dict[str, list[str]] = {}
    kinds = paging.choices(request, "kind", Incident.Kind.values, problems)
    raw_open = request.GET.get("open")
    if raw_open is not None and raw_open not in ("true", "false"):
        problems["open"] = ["Expected true or false."]
    query = paging.window(request, problems, max_limit=MAX_LIMIT)
    if problems:
        raise ApiError(400, "Bad query.", problems)
    if kinds:
        found = found.filter(kind__in=kinds)
    if raw_open is not None:
        found = found.filter(closed__isnull=raw_open == "true")
    page, after = paging.page_of(found, query, "opened")
    return {"incidents": [incident_json(i) for i in page], "next": after}


@router.get(
    "/incidents/{int:pk}/",
    auth=VIEWER_AUTH,
    response={200: s.IncidentDetailOut, **errors(401, 403, 404)},
    url_name="api-incident",
)
def incident(request: HttpRequest, pk: int):
    """One incident: its timeline (each milestone with its time and the seconds since the last
    healthy reading; `not_yet` while open), downtime and data loss as measured, its events
    oldest first, and the one recommended next action (`none` once resolved)."""
    found = get_object_or_404(Incident, pk=pk)
    story = incident_story(found)
    recommendation = story["recommendation"]
    return {
        **incident_json(found),
        "timeline": [
            {
                "key": m.key,
                "label": m.label,
                "at": m.at.isoformat() if m.at else None,
                "after_s": m.after_s,
                "state": m.state,
                "note": m.note,
            }
            for m in story["timeline"]
        ],
        "recommendation": {
            "code": recommendation.code,
            "text": recommendation.text,
            "node": recommendation.node,
            "url": recommendation.url,
            "job_kind": recommendation.job_kind,
        },
        "events": [event_json(e) for e in story["events"]],
    }
