"""The REST API's schemas for the admin's pages' twins: alert channels and their deliveries,
users, and roles (clusters.web.api.alerts and .users).

As in schemas.py, enumerations are spelled out in the document (components AlertChannelKind,
EventSeverity, AlertDeliveryStatus, Role, UserRole), request bodies are documented here and
validated by the services the pages share, and no schema has a field for a secret in an
answer: a webhook's URL is shown as `target_display` shows it, a password never.
"""

import enum
from collections.abc import Iterable
from datetime import datetime

from ninja import Schema
from pydantic import Field

from clusters.access.roles import ROLES
from clusters.alerts.rules import FAILED, SENT, SUPPRESSED, TEST
from clusters.models import AlertChannel
from clusters.web.api.schemas import EventKind, EventSeverity, choices_enum


def values_enum(name: str, values: Iterable[str]) -> type[enum.Enum]:
    """A string enum of `values` (its OpenAPI component is `name`), for value sets that are
    constants rather than TextChoices."""
    return enum.Enum(name, [(v, v) for v in values], type=str)  # type: ignore[return-value]


AlertChannelKind = choices_enum("AlertChannelKind", AlertChannel.Kind)
# AlertDelivery.status's stored values (clusters.alerts.rules).
AlertDeliveryStatus = values_enum("AlertDeliveryStatus", (SENT, FAILED, SUPPRESSED, TEST))
Role = values_enum("Role", ROLES)
# A user's role as the users page shows it: "none" for a user in no group.
UserRole = values_enum("UserRole", ("none", *ROLES))


# --- alert channels -------------------------------------------------------------------------


class AlertChannelIn(Schema):
    """A new alert channel: an email address or an http(s) webhook URL."""

    kind: AlertChannelKind  # type: ignore[valid-type]
    target: str = Field(
        description="An email address, or a webhook URL (stored encrypted, never answered "
        "in full: answers show scheme://host/…)."
    )
    cluster: str | None = Field(
        None, description="The cluster's name; absent or null: every cluster's events."
    )
    min_severity: EventSeverity = "warning"  # type: ignore[valid-type,assignment]


class AlertChannelPatchIn(Schema):
    """What to change on a channel (its kind and cluster stay); absent fields stay as they are."""

    target: str | None = None
    min_severity: EventSeverity | None = None  # type: ignore[valid-type]
    enabled: bool | None = Field(None, description="false pauses the channel, true resumes it.")


class LastDeliveryOut(Schema):
    """A channel's latest delivery: sent, failed, suppressed by the rate limit, or test."""

    status: AlertDeliveryStatus  # type: ignore[valid-type]
    at: datetime
    error: str = Field(description="Why it failed, in one line; empty otherwise.")


class AlertChannelOut(Schema):
    """A channel as answered: its target shortened as the page shows it (a webhook's path
    and query, which often hold the receiver's token, are elided)."""

    id: int
    kind: AlertChannelKind  # type: ignore[valid-type]
    cluster: str | None = Field(description="The cluster's name; null: every cluster.")
    target: str = Field(description="An email address, or a webhook as scheme://host/….")
    min_severity: EventSeverity  # type: ignore[valid-type]
    enabled: bool
    created: datetime
    last_delivery: LastDeliveryOut | None


class AlertTestQueuedOut(Schema):
    """A test alert queued for a worker; its result becomes the channel's latest delivery."""

    channel: int
    deliveries: str = Field(description="Where the test's result appears once sent.")


class DeliveryEventOut(Schema):
    id: int
    kind: EventKind  # type: ignore[valid-type]
    summary: str


class AlertDeliveryOut(Schema):
    """One alert sent, failed or suppressed on a channel (a test alert has no event)."""

    id: int
    at: datetime
    status: AlertDeliveryStatus  # type: ignore[valid-type]
    error: str
    detail: str | None = Field(
        description="What the target answered (an HTTP error's body): admins only, null "
        "for other roles."
    )
    event: DeliveryEventOut | None


# --- users and roles ------------------------------------------------------------------------


class UserIn(Schema):
    """A new console user; the password is checked by Django's password validators."""

    username: str
    password: str = Field(description="Never answered or recorded in the audit trail.")
    role: UserRole = "none"  # type: ignore[valid-type,assignment]


class UserRoleIn(Schema):
    role: UserRole  # type: ignore[valid-type]


class UserOut(Schema):
    """A console user as answered: never their password or its hash."""

    id: int
    username: str
    role: UserRole  # type: ignore[valid-type]
    is_superuser: bool = Field(description="An admin whatever their role; it cannot be changed.")
    is_active: bool
    last_login: datetime | None
    date_joined: datetime


class RoleOut(Schema):
    """A role, what it may do, and the weaker roles it includes."""

    name: Role  # type: ignore[valid-type]
    may: str = Field(description="What the role may do, in one line.")
    includes: list[Role] = Field(  # type: ignore[valid-type]
        description="The weaker roles whose rights it has too."
    )


# Request bodies documented in the OpenAPI document (see openapi.DocumentedApi).
REQUEST_SCHEMAS: tuple[type[Schema], ...] = (
    AlertChannelIn,
    AlertChannelPatchIn,
    UserIn,
    UserRoleIn,
)
