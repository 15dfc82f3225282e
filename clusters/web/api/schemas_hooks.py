"""The REST API's schemas for event subscriptions (clusters.web.api.subscriptions): answers
rendered through them, and request bodies declared once as `BodyIn`s, which the document shows
(openapi.body_of) and the views validate (plumbing.validated_body), strictly. The schema checks
the shape (JSON types, required fields, event kinds and severities, the name's length); the
service (clusters.subscriptions.services) checks the rest: the URL's scheme and address, the
cluster's existence, and unknown fields, which it refuses (the document says so). A URL is
answered as scheme://host/… and a secret only when it is made."""

from collections.abc import Callable
from typing import Annotated, Any

from ninja import Schema
from pydantic import ConfigDict, Field, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

from clusters.models import ClusterEvent, DeliveryStatus
from clusters.web.api.schemas import BodyIn, EventKind, EventSeverity, IsoTime, choices_enum, says
from clusters.web.api.schemas_admin import MinSeverity, left_out_stays, unknown_fields_refused

DeliveryStatusEnum = choices_enum("EventDeliveryStatus", DeliveryStatus)

# Unknown fields are kept for the service, which refuses them in its words ("Unknown field
# secret: use name, url, …", under non_field_errors) as it does for every caller.
REFUSED_BY_THE_SERVICE = ConfigDict(extra="allow", json_schema_extra=unknown_fields_refused)


def _kinds_as_a_whole(value: Any, handler: Callable[[Any], Any]) -> Any:
    """`kinds` refused as one field in the service's words (`kinds`, not `kinds[2]`: the
    field clients of this API have always been told about)."""
    try:
        return handler(value)
    except ValidationError:
        all_text = isinstance(value, list) and all(isinstance(k, str) for k in value)
        unknown = [k for k in value if k not in ClusterEvent.Kind.values] if all_text else []
        if not unknown:
            raise PydanticCustomError(
                "invalid", "Expected a list of event kinds; an empty list means all."
            ) from None
        said = ", ".join(repr(k) for k in unknown)
        raise PydanticCustomError(
            "invalid", f"Unknown event kind {said}: use {', '.join(ClusterEvent.Kind.values)}."
        ) from None


Kinds = Annotated[list[EventKind], WrapValidator(_kinds_as_a_whole)]  # type: ignore[valid-type]
ClusterId = Annotated[int, says("Expected a cluster's id, or null for all clusters.")]


class SubscriptionIn(BodyIn):
    """A new subscription; the server makes its secret."""

    model_config = REFUSED_BY_THE_SERVICE

    name: str = Field(max_length=100, description="At most 100 characters.")
    url: str = Field(
        description="http(s) URL receiving the POSTs; a public address unless its network is "
        "in HACENTER_WEBHOOK_ALLOWED_NETWORKS. Stored encrypted, never answered in full."
    )
    cluster: ClusterId | None = Field(None, description="A cluster's id; null: every cluster.")
    kinds: Kinds = Field(default_factory=list, description="Event kinds to send; empty: every one.")
    min_severity: MinSeverity = EventSeverity("info")  # type: ignore[valid-type]
    enabled: bool = True


class SubscriptionPatchIn(BodyIn):
    """The fields to change; those left out stay as they are. Only `cluster` takes null
    (every cluster)."""

    model_config = REFUSED_BY_THE_SERVICE

    name: str = left_out_stays(max_length=100, description="At most 100 characters.")
    url: str = left_out_stays()
    cluster: ClusterId | None = left_out_stays(description="A cluster's id; null: every cluster.")
    kinds: Kinds = left_out_stays(description="Event kinds to send; empty: every one.")
    min_severity: MinSeverity = left_out_stays()  # type: ignore[valid-type]
    enabled: bool = left_out_stays()


class ClusterRefOut(Schema):
    id: int
    name: str


class SubscriptionOut(Schema):
    """A subscription as answered: never its secret, its URL shortened."""

    id: int
    name: str
    url_display: str = Field(description="scheme://host/… (the path often holds a token).")
    cluster: ClusterRefOut | None = Field(description="null: every cluster.")
    kinds: list[EventKind] = Field(description="Empty: every kind.")  # type: ignore[valid-type]
    min_severity: EventSeverity  # type: ignore[valid-type]
    enabled: bool
    created: IsoTime


class NewSubscriptionOut(SubscriptionOut):
    secret: str = Field(
        description="The signing secret (HMAC-SHA256): in this answer only; see docs/webhooks.md."
    )


class SecretOut(Schema):
    id: int
    secret: str = Field(description="The new signing secret: in this answer only.")


class EventDeliveryOut(Schema):
    """One POST of an event (or a test) to a subscription, over its attempts."""

    id: int
    delivery_id: str = Field(description="The X-HACenter-Delivery header's UUID.")
    event: int | None = Field(description="The event's id; null for a test or a deleted event.")
    kind: str = Field(description='The event\'s kind, or "test".')
    at: IsoTime
    last_attempt: IsoTime | None
    status: DeliveryStatusEnum  # type: ignore[valid-type]
    http_status: int | None = Field(description="What the receiver last answered.")
    attempts: int
    error: str = Field(description="Why the last attempt failed, in one line; empty if sent.")


# Request bodies documented in the OpenAPI document (see openapi.DocumentedApi).
REQUEST_SCHEMAS: tuple[type[BodyIn], ...] = (SubscriptionIn, SubscriptionPatchIn)
