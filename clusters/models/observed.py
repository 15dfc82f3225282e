"""What the monitor observes: latest node status, history samples, events and alarms."""

from django.db import models

from clusters.models.incidents import Incident
from clusters.models.inventory import Cluster, Node


class NodeStatus(models.Model):
    """The latest observed state of a node (written by setup's check and by the monitor)."""

    class Role(models.TextChoices):
        PRIMARY = "primary"
        REPLICA = "replica"
        SYNC_REPLICA = "sync_replica"  # a synchronous standby: commits wait for it
        UNKNOWN = "unknown"

    node = models.OneToOneField(Node, related_name="status", on_delete=models.CASCADE)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.UNKNOWN)
    state = models.CharField(max_length=40, blank=True)  # Patroni's: running, streaming, …
    timeline = models.PositiveIntegerField(null=True, blank=True)
    lag_bytes = models.BigIntegerField(null=True, blank=True)
    lag_seconds = models.FloatField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)  # last time the node answered
    writable = models.BooleanField(null=True)  # pg_is_in_recovery() = false, as read directly
    proxy_status = models.CharField(max_length=20, blank=True)  # HAProxy: UP, DOWN, MAINT…
    # HAProxy's status of this server in each backend that lists it ({"primary": "UP",
    # "be_replicas": "DOWN", "be_replicas_fallback": "UP"}); empty while HAProxy is unread.
    proxy_backends = models.JSONField(default=dict, blank=True)
    wal_position = models.BigIntegerField(null=True, blank=True)  # last LSN seen, as a number
    # pg_postmaster_start_time(): when it changes, PostgreSQL restarted (a crash Patroni
    # recovered from in place is over before a node ever looks down).
    postmaster_started = models.DateTimeField(null=True, blank=True)
    lag_high_since = models.DateTimeField(null=True, blank=True)  # above the threshold since
    # The dashboard's sparkline: [[minute, worst lag in bytes], ...] over the last 20 minutes,
    # kept by the monitor (monitoring.lag_history.lag_minutes_add) so that no page reads the
    # samples for it.
    lag_minutes = models.JSONField(default=list, blank=True)
    fenced = models.BooleanField(default=False)  # kept out by the sentinel until rebuilt
    fence_reason = models.CharField(max_length=300, blank=True)
    # Since when the server answers on its SSH port while its PostgreSQL does not (None while
    # PostgreSQL answers, or the server is silent too): a server that is up with Patroni
    # stopped needs a start or a rebuild, not "bring it back".
    host_up_since = models.DateTimeField(null=True, blank=True)
    # The fullest file system under PostgreSQL's data directory (it, or pg_wal's when that is
    # a file system of its own), as the disk check last read it over SSH (monitoring.disk_space).
    disk_mount = models.CharField(max_length=200, blank=True)
    disk_free_bytes = models.BigIntegerField(null=True, blank=True)
    disk_total_bytes = models.BigIntegerField(null=True, blank=True)
    disk_checked = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.node}: {self.role} {self.state}"

    PATRONI_ROLES = {
        "leader": "primary",
        "master": "primary",
        "primary": "primary",
        "standby_leader": "replica",
        "replica": "replica",
        "sync_standby": "sync_replica",
        "quorum_standby": "sync_replica",
    }

    @classmethod
    def role_from_patroni(cls, role: str | None) -> str:
        return cls.PATRONI_ROLES.get(role or "", cls.Role.UNKNOWN)


class StatusSample(models.Model):
    """History of one node: a raw row per monitor period for a day, then one row per minute
    (worst lag, last role) for 30 days."""

    class Resolution(models.TextChoices):
        RAW = "raw"
        MINUTE = "1m"

    node = models.ForeignKey(Node, related_name="samples", on_delete=models.CASCADE)
    at = models.DateTimeField()
    resolution = models.CharField(max_length=3, choices=Resolution.choices, default="raw")
    up = models.BooleanField()
    role = models.CharField(max_length=20, choices=NodeStatus.Role.choices)
    timeline = models.PositiveIntegerField(null=True)
    lag_bytes = models.BigIntegerField(null=True)
    lag_seconds = models.FloatField(null=True)

    class Meta:
        indexes = [models.Index(fields=["node", "resolution", "at"])]

    def __str__(self) -> str:
        return f"{self.node} {self.at:%H:%M:%S} {self.role}"


class ClusterEvent(models.Model):
    """Something that happened to a cluster, with the timings the monitor could measure."""

    class Kind(models.TextChoices):
        FAILOVER = "failover"  # Patroni promoted a standby on its own
        SWITCHOVER = "switchover"  # a planned change of primary
        NODE_DOWN = "node_down"
        NODE_UP = "node_up"
        REJOIN = "rejoin"  # an old primary streams again as a standby
        LAG_HIGH = "lag_high"  # a standby stayed above the lag threshold
        LAG_OK = "lag_ok"
        ALARM_RAISED = "alarm_raised"
        ALARM_CLEARED = "alarm_cleared"
        FENCED = "fenced"  # the sentinel shut a node out
        JOB_FAILED = "job_failed"
        NODE_ADDED = "node_added"
        NODE_REPLACED = "node_replaced"
        NODE_REMOVED = "node_removed"
        NODE_RESTARTED = "node_restarted"  # PostgreSQL started again (crash or restart)
        STATE_CHANGED = "state_changed"  # the monitor judged the cluster's state anew
        # the primary's WAL archiving fails or lags (read by a backup job): PITR falls behind
        ARCHIVE_BEHIND = "archive_behind"
        # the witness's fast-path agent decided (acted, declined, withdrawn, failed; details)
        FAST_FAILOVER = "fast_failover"

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    cluster = models.ForeignKey(Cluster, related_name="events", on_delete=models.CASCADE)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default="info")
    at = models.DateTimeField(db_index=True)
    node = models.CharField(max_length=63, blank=True)
    old_primary = models.CharField(max_length=63, blank=True)
    new_primary = models.CharField(max_length=63, blank=True)
    downtime_s = models.FloatField(null=True, blank=True)
    lost_bytes = models.BigIntegerField(null=True, blank=True)
    summary = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    # The failover, switchover or outage this event belongs to (at most one); empty for an
    # event outside any (clusters.alerts.incidents attaches them).
    incident = models.ForeignKey(
        Incident, related_name="events", null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.cluster} {self.at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.summary}"


class ClusterAlarm(models.Model):
    """An alarm condition while it lasts (split brain, routing mismatch, standby not streaming).

    `cleared` is empty while the alarm is active; one active row per cluster and code.
    """

    cluster = models.ForeignKey(Cluster, related_name="alarms", on_delete=models.CASCADE)
    code = models.CharField(max_length=40)
    message = models.CharField(max_length=300)
    raised = models.DateTimeField()
    cleared = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "code"],
                condition=models.Q(cleared__isnull=True),
                name="one_active_alarm_per_code",
            )
        ]

    def __str__(self) -> str:
        return f"{self.cluster} {self.code}: {self.message}"
