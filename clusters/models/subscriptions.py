"""Event subscriptions: other systems that receive every cluster event as a signed JSON POST,
and the record of each delivery (see clusters.subscriptions)."""

import uuid

from django.db import models

from clusters.inventory.fields import EncryptedTextField
from clusters.models.inventory import Cluster
from clusters.models.observed import ClusterEvent


class EventSubscription(models.Model):
    """A URL that receives a cluster's events (every cluster's when `cluster` is empty), of
    the kinds listed (every kind when `kinds` is empty) at or above `min_severity`, each POST
    signed with `secret` (HMAC-SHA256)."""

    name = models.CharField(max_length=100)
    # An http(s) URL, checked as an alert webhook's (clusters.alerts.targets). Encrypted: a URL
    # often carries the receiver's token in its path.
    url = EncryptedTextField()
    # Made by the server (secrets.token_urlsafe(32)), shown once on creation or rotation;
    # encrypted, as the worker needs it back to sign.
    secret = EncryptedTextField()
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, related_name="subscriptions", on_delete=models.CASCADE
    )
    kinds = models.JSONField(default=list, blank=True)  # ClusterEvent.Kind values; [] = all
    min_severity = models.CharField(
        max_length=10, choices=ClusterEvent.Severity.choices, default=ClusterEvent.Severity.INFO
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        # No URL: it is a secret (pages use alerts.targets.url_display).
        return f"event subscription {self.pk} ({self.name})"


class DeliveryStatus(models.TextChoices):
    """Where one delivery stands. Stored values: never change them."""

    PENDING = "pending"  # queued, not tried yet
    RETRYING = "retrying"  # an attempt failed; the next one is queued (see `error`)
    SENT = "sent"  # the receiver answered 2xx
    FAILED = "failed"  # every attempt failed, or the subscription was paused meanwhile

    @classmethod
    def active(cls) -> list[str]:
        """Statuses in which a worker may still make an attempt."""
        return [cls.PENDING, cls.RETRYING]

    @classmethod
    def terminal(cls) -> list[str]:
        """Statuses no worker changes any more."""
        return [cls.SENT, cls.FAILED]


class EventDelivery(models.Model):
    """One event (or a test) POSTed to one subscription, over one or more attempts.

    `payload` is fixed when the delivery is made, so every attempt sends the same body under
    the same `delivery_id` (a receiver can drop a repeat), even if the event is deleted."""

    subscription = models.ForeignKey(
        EventSubscription, related_name="deliveries", on_delete=models.CASCADE
    )
    event = models.ForeignKey(ClusterEvent, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=20)  # the event's kind, or "test"
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payload = models.JSONField(default=dict)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_attempt = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)  # the last answer's
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)  # one line, the last attempt's

    class Meta:
        constraints = [
            # A redelivered dispatch task must not send an event twice to one subscription.
            models.UniqueConstraint(
                fields=["subscription", "event"],
                condition=models.Q(event__isnull=False),
                name="one_delivery_per_event_and_subscription",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.kind} {self.status}"
