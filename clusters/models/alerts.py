"""Where alerts go (email, webhook) and what was sent, for rate limiting and the record."""

from django.db import models

from clusters.inventory.fields import EncryptedTextField
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
    # An address or an http(s) URL, at most 500 characters (alerts.targets checks). Encrypted:
    # a webhook URL usually carries the receiver's token in its path.
    target = EncryptedTextField()
    min_severity = models.CharField(
        max_length=10, choices=ClusterEvent.Severity.choices, default="warning"
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        # No target: a webhook URL is a secret (pages use alerts.targets.target_display).
        return f"{self.kind} channel {self.pk}"


class AlertDelivery(models.Model):
    """One alert sent (or suppressed by the rate limit) on one channel."""

    channel = models.ForeignKey(AlertChannel, related_name="deliveries", on_delete=models.CASCADE)
    event = models.ForeignKey(ClusterEvent, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=12)  # sent, failed, suppressed, test
    error = models.CharField(max_length=300, blank=True)  # one line, shown to every viewer
    # What the target answered (an HTTP error's body, a garbled status line): admins only, as
    # the answer of some internal service must not reach viewers.
    detail = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.channel} {self.at:%H:%M:%S} {self.status}"
