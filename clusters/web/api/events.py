"""A cluster's events through the REST API (DESIGN.md §3): newest first, filtered, and paged
with a cursor that stays right while the monitor and jobs keep recording events."""

import base64
import binascii
from datetime import UTC, datetime, time

from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from ninja import Router

from clusters.models import Cluster, ClusterEvent
from clusters.web.api import schemas as s
from clusters.web.api.openapi import errors
from clusters.web.api.plumbing import VIEWER_AUTH, ApiError

DEFAULT_LIMIT, MAX_LIMIT = 50, 500

router = Router(tags=["events"])

# The query's parameters as the document lists them; the view reads them itself (repeated
# and comma-separated values, its own messages).
QUERY = [
    {
        "name": "kind",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string"}},
        "description": "Event kinds, repeated or comma-separated.",
    },
    {
        "name": "severity",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string"}},
        "description": "info, warning or critical; repeated or comma-separated.",
    },
    {
        "name": "since",
        "in": "query",
        "schema": {"type": "string"},
        "description": "ISO 8601 time or date, inclusive (a '+' sent as %2B).",
    },
    {
        "name": "until",
        "in": "query",
        "schema": {"type": "string"},
        "description": "ISO 8601 time or date, exclusive.",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "cursor",
        "in": "query",
        "schema": {"type": "string"},
        "description": "An answer's `next`, unchanged.",
    },
]


def event_json(event: ClusterEvent) -> dict:
    """An event as the API answers it (events hold no secrets: names, timings, job ids)."""
    return {
        "id": event.pk,
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
    }


def cursor_of(event: ClusterEvent) -> str:
    """Where the next page starts: after this event in (at, id) order. Opaque to callers."""
    text = f"{event.at.isoformat()}|{event.pk}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_read(cursor: str) -> tuple[datetime, int] | None:
    """The (at, id) a cursor stands for; None for anything cursor_of did not make."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, _, pk_text = text.partition("|")
        at, pk = parse_datetime(at_text), int(pk_text)
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        return None
    if at is None or timezone.is_naive(at):
        return None
    return at, pk


def time_read(text: str) -> datetime | None:
    """An ISO 8601 time (UTC without an offset) or date (its midnight, UTC); None if it is not.
    A '+' written unencoded in a query string arrives as a space: "10:00:00 02:00" is taken as
    "10:00:00+02:00"."""
    text = text.strip()
    candidates = [text]
    if " " in text:
        head, _, offset = text.rpartition(" ")
        candidates.append(f"{head}+{offset}")
    for candidate in candidates:
        try:
            found = parse_datetime(candidate)
            day = None if found else parse_date(candidate)
        except ValueError:  # well formed but impossible: month 13, hour 25
            continue
        if found is not None:
            return timezone.make_aware(found, UTC) if timezone.is_naive(found) else found
        if day is not None:
            return datetime.combine(day, time.min, tzinfo=UTC)
    return None


def _choices(request: HttpRequest, field: str, allowed: list[str], errors: dict) -> list[str]:
    """The values of `field` (repeated, or comma-separated), each one of `allowed`."""
    values = [v.strip() for raw in request.GET.getlist(field) for v in raw.split(",") if v.strip()]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        errors[field] = [
            f"Unknown {field} {v!r}: use one of {', '.join(allowed)}." for v in unknown
        ]
    return values


def _filters(request: HttpRequest) -> dict:
    """The query's filters, or a 400 naming every bad one."""
    errors: dict[str, list[str]] = {}
    found: dict = {
        "kinds": _choices(request, "kind", ClusterEvent.Kind.values, errors),
        "severities": _choices(request, "severity", ClusterEvent.Severity.values, errors),
    }
    for field in ("since", "until"):
        raw = request.GET.get(field)
        found[field] = time_read(raw) if raw else None
        if raw and found[field] is None:
            errors[field] = [
                "Expected an ISO 8601 time, e.g. 2026-01-31T14:05:00Z (a '+' must be sent as %2B)."
            ]
    if found["since"] and found["until"] and found["until"] <= found["since"]:
        errors["until"] = ["Expected a time after since."]
    raw = request.GET.get("limit")
    found["limit"] = DEFAULT_LIMIT
    if raw is not None:
        try:
            found["limit"] = int(raw)
        except ValueError:
            found["limit"] = 0
        if not 1 <= found["limit"] <= MAX_LIMIT:
            errors["limit"] = [f"Expected a whole number from 1 to {MAX_LIMIT}."]
    raw = request.GET.get("cursor")
    found["after"] = cursor_read(raw) if raw else None
    if raw and found["after"] is None:
        errors["cursor"] = ["Not a cursor this API gave: pass an answer's `next` unchanged."]
    if errors:
        raise ApiError(400, "Bad query.", errors)
    return found


@router.get(
    "/clusters/{int:pk}/events/",
    auth=VIEWER_AUTH,
    response={200: s.EventPageOut, **errors(400, 401, 403, 404)},
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
    query = _filters(request)
    events = ClusterEvent.objects.filter(cluster=cluster)
    if query["kinds"]:
        events = events.filter(kind__in=query["kinds"])
    if query["severities"]:
        events = events.filter(severity__in=query["severities"])
    if query["since"]:
        events = events.filter(at__gte=query["since"])
    if query["until"]:
        events = events.filter(at__lt=query["until"])
    if query["after"]:
        at, last = query["after"]
        events = events.filter(Q(at__lt=at) | Q(at=at, pk__lt=last))
    page = list(events.order_by("-at", "-pk")[: query["limit"] + 1])
    more, page = len(page) > query["limit"], page[: query["limit"]]
    return {"events": [event_json(e) for e in page], "next": cursor_of(page[-1]) if more else None}
