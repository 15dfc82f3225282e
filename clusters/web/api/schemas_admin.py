"""The REST API's schemas for the admin's pages' twins: alert channels and their deliveries,
users, and roles (clusters.web.api.alerts and .users).

As in schemas.py, enumerations are spelled out in the document (components AlertChannelKind,
EventSeverity, AlertDeliveryStatus, Role, UserRole), and a request body is a `BodyIn` declared
once: the document shows it (openapi.body_of) and its view validates it with the same class
(plumbing.validated_body), strictly. The schema checks the shape (JSON types, required fields,
closed sets of values); the services the pages share check the rest (a webhook's address, a
user name's form, the password rules, who may change whose role). Unknown fields are ignored,
as BodyIn's are, except where a body has always refused them (a channel's PATCH here; the
subscriptions' bodies): its config says so (`UNKNOWN_FIELDS_REFUSED`), and so does the
document (`unknown_fields_refused`). No schema has a field for a secret in an answer: a
webhook's URL is shown as `target_display` shows it, a password never.
"""

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import ConfigDict, Field

from clusters.access.roles import ROLES
from clusters.alerts.rules import FAILED, SENT, SUPPRESSED, TEST
from clusters.models import AlertChannel
from clusters.web.api.schemas import BodyIn, EventKind, EventSeverity, choices_enum, says


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


# --- request bodies: what the admin schemas share ----------------------------------------------


def unknown_fields_refused(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a body whose unknown fields are refused (a 400 naming them),
    not ignored as BodyIn's are: the document says so, for people and generated clients."""
    schema["additionalProperties"] = False
    said = "Fields not listed here are refused."
    schema["description"] = f"{schema.get('description', '').strip()} {said}".strip()


# A body whose unknown fields the schema refuses, each named (`colour: Unknown field…`).
UNKNOWN_FIELDS_REFUSED = ConfigDict(extra="forbid", json_schema_extra=unknown_fields_refused)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def left_out_stays(**field: Any) -> Any:
    """A PATCH field that may be left out (it stays as it is) but is never null. Pydantic does
    not validate a default, so an absent field is None (and not in `model_dump(exclude_unset=
    True)`) while a null sent is refused as the wrong type; the document shows no default."""
    return Field(None, json_schema_extra=_no_default, **field)


# The services' words for a value outside its set (clusters.alerts.rules, clusters.access.users).
SEVERITY_RULE = "Choose info, warning or critical."
ROLE_RULE = f"Choose one of: none, {', '.join(ROLES)}."
MinSeverity = Annotated[EventSeverity, says(SEVERITY_RULE)]  # type: ignore[valid-type]
ClusterName = Annotated[str, says("Expected a cluster's name, or null for every cluster.")]


# --- alert channels -------------------------------------------------------------------------


class AlertChannelIn(BodyIn):
    """A new alert channel: an email address or an http(s) webhook URL."""

    kind: Annotated[
        AlertChannelKind,  # type: ignore[valid-type]
        says("Unknown channel kind: use email or webhook."),
    ]
    target: str = Field(
        description="An email address, or a webhook URL (stored encrypted, never answered "
        "in full: answers show scheme://host/…)."
    )
    cluster: ClusterName | None = Field(
        None, description="The cluster's name; absent, null or \"\": every cluster's events."
    )
    min_severity: MinSeverity = EventSeverity("warning")  # type: ignore[valid-type]


class AlertChannelPatchIn(BodyIn):
    """What to change on a channel: a field left out or null stays as it is; a channel's kind
    and cluster never change (remove it and add another)."""

    model_config = UNKNOWN_FIELDS_REFUSED

    target: str | None = Field(None, description="Checked as a new channel's target.")
    min_severity: MinSeverity | None = None  # type: ignore[valid-type]
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


class UserIn(BodyIn):
    """A new console user; the password is checked by Django's password validators."""

    username: str
    password: str = Field(description="Never answered or recorded in the audit trail.")
    role: Annotated[UserRole, says(ROLE_RULE)] = Field(  # type: ignore[valid-type]
        UserRole("none"), description="none (the default): no access until an admin gives one."
    )


class UserRoleIn(BodyIn):
    """A user's new role; none takes their access away (so it is never a default)."""

    role: Annotated[UserRole, says(ROLE_RULE)]  # type: ignore[valid-type]


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
REQUEST_SCHEMAS: tuple[type[BodyIn], ...] = (
    AlertChannelIn,
    AlertChannelPatchIn,
    UserIn,
    UserRoleIn,
)
