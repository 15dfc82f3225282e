"""Where alerts go (email, webhook) and what was sent, for rate limiting and the record."""

from django.db import models

from clusters.models.inventory import Cluster
from clusters.models.observed import ClusterEvent


class AlertChannel(models.Model):
    """An email address or a webhook URL that receives a cluster's alerts (or every cluster's,
    when `cluster` is empty)."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"  # JSON POST with Slack-compatible "text"

    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, related_name="alert_channels", on_delete=models.CASCADE
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target = models.CharField(max_length=500)  # address or https URL
    min_severity = models.CharField(
        max_length=10, choices=ClusterEvent.Severity.choices, default="warning"
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"


class AlertDelivery(models.Model):
    """One alert sent (or suppressed by the rate limit) on one channel."""

    channel = models.ForeignKey(AlertChannel, related_name="deliveries", on_delete=models.CASCADE)
    event = models.ForeignKey(ClusterEvent, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=12)  # sent, failed, suppressed, test
    error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.channel} {self.at:%H:%M:%S} {self.status}"
