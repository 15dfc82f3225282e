"""Incidents: the events of one failover, switchover or outage told as one story."""

from django.db import models

from clusters.models.inventory import Cluster


class Incident(models.Model):
    """One failover, switchover or outage of a cluster and the events around it.

    Opened when a hand-over is recorded (or when the monitor finds the cluster down with no
    hand-over), closed by the monitor once the cluster has stayed healthy for a while. At most
    one incident per cluster is open at a time (a constraint, so two monitor passes racing
    cannot open two). `downtime_s` and `lost_bytes` are the measured figures of its hand-overs
    (clusters.alerts.incidents says how they are measured and how exact they are).
    """

    class Kind(models.TextChoices):
        FAILOVER = "failover"  # Patroni promoted a standby on its own
        SWITCHOVER = "switchover"  # a planned change of primary
        OUTAGE = "outage"  # writes reached no primary, and no hand-over (yet)

    cluster = models.ForeignKey(Cluster, related_name="incidents", on_delete=models.CASCADE)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    opened = models.DateTimeField(db_index=True)
    closed = models.DateTimeField(null=True, blank=True)  # empty while open
    title = models.CharField(max_length=300)
    old_primary = models.CharField(max_length=63, blank=True)
    new_primary = models.CharField(max_length=63, blank=True)
    downtime_s = models.FloatField(null=True, blank=True)
    lost_bytes = models.BigIntegerField(null=True, blank=True)
    # What the monitor records on the incident itself: "last_healthy" (its last healthy
    # reading before an outage), "writes_back_at" (an outage's end), "healthy_since" (the
    # start of the healthy stretch that closes it).
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=models.Q(closed__isnull=True),
                name="one_open_incident_per_cluster",
            )
        ]

    def __str__(self) -> str:
        return f"{self.cluster} {self.opened:%Y-%m-%d %H:%M:%S} {self.kind}: {self.title}"

    @property
    def is_open(self) -> bool:
        """Whether the incident still runs (the monitor has not seen the cluster healthy long
        enough yet)."""
        return self.closed is None
