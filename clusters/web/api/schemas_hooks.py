"""The REST API's schemas for event subscriptions (clusters.web.api.subscriptions): request
bodies documented here and checked by clusters.subscriptions.services, answers rendered
through them. A URL is answered as scheme://host/… and a secret only when it is made."""

from ninja import Schema
from pydantic import Field

from clusters.models import DeliveryStatus
from clusters.web.api.schemas import EventKind, EventSeverity, IsoTime, choices_enum

DeliveryStatusEnum = choices_enum("EventDeliveryStatus", DeliveryStatus)


class SubscriptionIn(Schema):
    """A new subscription; the server makes its secret."""

    name: str = Field(max_length=100)
    url: str = Field(
        description="http(s) URL receiving the POSTs; a public address unless its network is "
        "in HACENTER_WEBHOOK_ALLOWED_NETWORKS. Stored encrypted, never answered in full."
    )
    cluster: int | None = Field(None, description="A cluster's id; null: every cluster.")
    kinds: list[EventKind] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Event kinds to send; empty: every kind."
    )
    min_severity: EventSeverity = "info"  # type: ignore[valid-type]
    enabled: bool = True


class SubscriptionPatchIn(Schema):
    """The fields to change; those left out stay as they are."""

    name: str | None = Field(None, max_length=100)
    url: str | None = None
    cluster: int | None = Field(None, description="A cluster's id; null: every cluster.")
    kinds: list[EventKind] | None = None  # type: ignore[valid-type]
    min_severity: EventSeverity | None = None  # type: ignore[valid-type]
    enabled: bool | None = None


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
REQUEST_SCHEMAS: tuple[type[Schema], ...] = (SubscriptionIn, SubscriptionPatchIn)
