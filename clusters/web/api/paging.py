"""Query parameters the API's lists share: repeated or comma-separated choices, ISO 8601
times, a page size, and an opaque cursor over (time, id) descending.

A cursor is the last (time, id) answered, so rows recorded while a client pages (new ones are
newer) neither repeat nor shift a page."""

import base64
import binascii
from datetime import UTC, datetime, time

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

DEFAULT_LIMIT = 50


def cursor_of(at: datetime, pk: int) -> str:
    """Where the next page starts: after this (at, id). Opaque to callers."""
    text = f"{at.isoformat()}|{pk}"
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


def values(request: HttpRequest, field: str) -> list[str]:
    """The values of `field`, repeated (`?a=1&a=2`) or comma-separated (`?a=1,2`)."""
    return [v.strip() for raw in request.GET.getlist(field) for v in raw.split(",") if v.strip()]


def choices(request: HttpRequest, field: str, allowed: list[str], errors: dict) -> list[str]:
    """The values of `field` (repeated, or comma-separated), each one of `allowed`."""
    values_ = values(request, field)
    unknown = [v for v in values_ if v not in allowed]
    if unknown:
        errors[field] = [
            f"Unknown {field} {v!r}: use one of {', '.join(allowed)}." for v in unknown
        ]
    return values_


def window(request: HttpRequest, errors: dict, *, max_limit: int) -> dict:
    """`since` (inclusive), `until` (exclusive), `limit` and `cursor` from the query; a bad one
    is named in `errors` (the caller raises once, naming every bad parameter)."""
    found: dict = {}
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
        if not 1 <= found["limit"] <= max_limit:
            errors["limit"] = [f"Expected a whole number from 1 to {max_limit}."]
    raw = request.GET.get("cursor")
    found["after"] = cursor_read(raw) if raw else None
    if raw and found["after"] is None:
        errors["cursor"] = ["Not a cursor this API gave: pass an answer's `next` unchanged."]
    return found


def page_of(rows: QuerySet, query: dict, time_field: str) -> tuple[list, str | None]:
    """One page of `rows`, newest first by (time_field, id), within the query's window; and
    the cursor of the next page (None on the last)."""
    if query["since"]:
        rows = rows.filter(**{f"{time_field}__gte": query["since"]})
    if query["until"]:
        rows = rows.filter(**{f"{time_field}__lt": query["until"]})
    if query["after"]:
        at, last = query["after"]
        rows = rows.filter(Q(**{f"{time_field}__lt": at}) | Q(**{time_field: at, "pk__lt": last}))
    page = list(rows.order_by(f"-{time_field}", "-pk")[: query["limit"] + 1])
    more, page = len(page) > query["limit"], page[: query["limit"]]
    return page, cursor_of(getattr(page[-1], time_field), page[-1].pk) if more else None


def window_parameters(max_limit: int) -> list[dict]:
    """The document's entries for the window's parameters."""
    return [
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
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": max_limit,
                "default": DEFAULT_LIMIT,
            },
        },
        {
            "name": "cursor",
            "in": "query",
            "schema": {"type": "string"},
            "description": "An answer's `next`, unchanged.",
        },
    ]


def choice_parameter(name: str, allowed: list[str], description: str) -> dict:
    """A repeated or comma-separated choice parameter, its values listed."""
    return {
        "name": name,
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string", "enum": allowed}},
        "style": "form",
        "explode": True,
        "description": f"{description}, repeated or comma-separated.",
    }
