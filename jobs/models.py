"""Jobs, their steps and their log, modelled on AWX's job events (one row per line, per-job seq)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class JobStatus(models.TextChoices):
    PENDING = "pending"  # created and queued, no worker has claimed it yet
    RUNNING = "running"  # claimed by a worker, which beats every few seconds
    SUCCEEDED = "succeeded"  # every step passed (some maybe with a warning) and the log is flushed
    FAILED = "failed"  # a step refused or a command failed: an expected, explained failure
    ERRORED = "errored"  # an exception in the console's own code
    CANCELED = "canceled"  # an operator asked it to stop
    LOST = "lost"  # its worker died: no heartbeat for JOB_LOST_AFTER_S

    @classmethod
    def active(cls) -> list[str]:
        return [cls.PENDING, cls.RUNNING]

    @classmethod
    def terminal(cls) -> list[str]:
        return [cls.SUCCEEDED, cls.FAILED, cls.ERRORED, cls.CANCELED, cls.LOST]

    @classmethod
    def retryable(cls) -> list[str]:
        return [cls.FAILED, cls.ERRORED, cls.CANCELED, cls.LOST]


class StepStatus(models.TextChoices):
    PENDING = "pending"  # not reached yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    WARNING = "warning"  # passed, but the admin should read the verdict
    FAILED = "failed"  # the check or action did not pass; the job stops here
    ERRORED = "errored"  # the console's own code raised
    CANCELED = "canceled"
    SKIPPED = "skipped"  # not run because an earlier step decided it was not needed

    @classmethod
    def done(cls) -> list[str]:
        """Steps a retry does not run again."""
        return [cls.SUCCEEDED, cls.WARNING, cls.SKIPPED]


class JobKind(models.TextChoices):
    PREFLIGHT = "preflight"  # read-only checks of every node before setup
    SETUP = "setup"  # install and configure etcd, Patroni, PostgreSQL and HAProxy
    REMOVE_CLUSTER = "remove_cluster"  # stop it all, move data aside, remove configs
    FENCE = "fence"  # the sentinel shuts out a node that writes without the leader key
    SWITCHOVER = "switchover"  # planned change of primary through Patroni
    MAINTENANCE_ON = "maintenance_on"  # Patroni pause: no automatic failover
    MAINTENANCE_OFF = "maintenance_off"
    REBUILD = "rebuild"  # an old primary (or any broken node) back as a streaming standby
    RESTART = "restart"  # PostgreSQL restarted under pause: no failover
    FAILOVER = "failover"  # manual promotion of a named standby, with confirmation
    ADD_NODE = "add_node"  # a new server joins a running cluster as a standby
    REPLACE_NODE = "replace_node"  # a new server takes a dead node's name and place
    REMOVE_NODE = "remove_node"  # a standby leaves the cluster; its data is moved aside
    LINT = "lint"  # read the live configuration and judge it; changes nothing
    ADOPT = "adopt"  # read an existing Patroni cluster's layout so the console can run it
    # New node certificates under the cluster's CA, put in place node by node without a failover
    ROTATE_CERTIFICATES = "rotate_certificates"
    READ_PARAMETERS = "read_parameters"  # read pg_settings from every node; changes nothing
    # PostgreSQL parameters through Patroni's dynamic configuration; a rolling restart if needed
    CHANGE_PARAMETERS = "change_parameters"
    # Read which versions of PostgreSQL, Patroni, etcd and HAProxy run and which apt offers
    CHECK_UPDATES = "check_updates"
    # Apt's newer builds of the same majors, node by node, standbys first, one switchover
    MINOR_UPGRADE = "minor_upgrade"
    # pgBackRest on the repository host and the database nodes, the stanza, WAL archiving on
    CONFIGURE_BACKUPS = "configure_backups"
    BACKUP = "backup"  # a full, differential or incremental backup into the repository
    RESTORE_POINT = "restore_point"  # a named point in the WAL to restore to
    RESTORE = "restore"  # point-in-time recovery onto a new server, outside the cluster
    # The latest backup restored onto a throwaway server, compared with the primary, removed
    RESTORE_DRILL = "restore_drill"
    # A status query to a node's fence device from the witness (never an off); changes nothing
    FENCE_TEST = "fence_test"
    # The primary powered off through its fence device on purpose, the outage and loss
    # measured with a writer through the proxy, the old primary powered on and rebuilt
    FAILOVER_DRILL = "failover_drill"


class Job(models.Model):
    """One procedure (a playbook) run against a cluster by a Celery worker.

    Params never hold secrets; the worker reads them from the inventory when it runs.
    """

    kind = models.CharField(max_length=30, choices=JobKind.choices)
    cluster = models.ForeignKey("clusters.Cluster", related_name="jobs", on_delete=models.CASCADE)
    node = models.ForeignKey(
        "clusters.Node", null=True, blank=True, related_name="jobs", on_delete=models.SET_NULL
    )
    params = models.JSONField(default=dict, blank=True)
    mutating = models.BooleanField(default=True)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    cancel_requested = models.BooleanField(default=False)
    attempt = models.PositiveIntegerField(default=0)  # how many times a worker has claimed it
    worker = models.CharField(max_length=200, blank=True)  # host:pid of the claiming worker
    heartbeat = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            # The database, not the caller, guarantees one mutating job per cluster at a time.
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(mutating=True, status__in=["pending", "running"]),
                name="one_active_mutating_job_per_cluster",
            )
        ]
        indexes = [models.Index(fields=["status", "heartbeat"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} on {self.cluster_id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in JobStatus.terminal()


class Step(models.Model):
    """One step of a job, on one node or on the whole cluster, with a one-line verdict."""

    job = models.ForeignKey(Job, related_name="steps", on_delete=models.CASCADE)
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=60)  # the playbook's step function, stable
    title = models.CharField(max_length=200)  # what the admin reads
    node = models.ForeignKey("clusters.Node", null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.PENDING)
    summary = models.CharField(max_length=500, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)  # percent, when known
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="step_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.title} ({self.status})"

    @property
    def elapsed_s(self) -> float | None:
        if not self.started:
            return None
        return ((self.finished or timezone.now()) - self.started).total_seconds()


class LogLine(models.Model):
    """One line of a job's output: redacted and NUL-free before it is stored."""

    class Stream(models.TextChoices):
        STDOUT = "stdout"
        STDERR = "stderr"
        CONSOLE = "console"  # written by the console itself (what it does and why)

    job = models.ForeignKey(Job, related_name="log_lines", on_delete=models.CASCADE)
    seq = models.PositiveIntegerField()
    ts = models.DateTimeField()
    stream = models.CharField(max_length=10, choices=Stream.choices)
    host = models.CharField(max_length=63, blank=True)
    text = models.TextField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="logline_seq_unique")]

    def __str__(self) -> str:
        return f"{self.seq} [{self.host or '-'}] {self.text[:80]}"


class RestoreDrill(models.Model):
    """One restore drill (issue 22 part 3): the latest backup restored onto the policy's
    throwaway server to a restore point made for it, its tables compared with what the primary
    held at that point, and the copy removed. Written by the drill job's steps as they go, so a
    drill that failed stays in the history as failed, with its reason.

    `results`: per table, what the primary held and what the copy holds, as
    {"table": "public.t", "rows": n, "checksum": "…", "copy_rows": n, "copy_checksum": "…"}.
    `rto_seconds`: from the start of the restore (the files step) until the copy was promoted
    and its tables checked: how long bringing the data back takes.
    """

    class Outcome(models.TextChoices):
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"

    cluster = models.ForeignKey(
        "clusters.Cluster", related_name="restore_drills", on_delete=models.CASCADE
    )
    job = models.OneToOneField(Job, related_name="restore_drill", on_delete=models.CASCADE)
    target_address = models.CharField(max_length=253)
    database = models.CharField(max_length=63, default="postgres")
    backup_label = models.CharField(max_length=100, blank=True)
    restore_point = models.CharField(max_length=63, blank=True)
    results = models.JSONField(default=list, blank=True)
    started = models.DateTimeField(auto_now_add=True)
    restore_started = models.DateTimeField(null=True, blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)  # the copy was promoted
    finished = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    reason = models.TextField(blank=True)  # why it failed
    rto_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"restore drill of {self.cluster} (job {self.job_id}): {self.outcome}"


class FailoverDrill(models.Model):
    """One failover drill (issue 21 part 6): the primary powered off through its fence device
    on an admin's demand while a writer inserts through the proxy, the failover measured, the
    old primary powered on and rebuilt as a standby. Written by the drill job's steps as they
    go, so a drill that failed stays in the history as failed, with its reason.

    `rto_s`: from the power-off (the moment the off was sent to the device) to the first
    write a new primary acknowledged through the proxy. `outage_s`: the writer's own gap, its
    last acknowledged write before the power-off to its first after. `rpo_rows`: rows the
    writer saw acknowledged that the new primary does not hold, of `acknowledged` in all.
    """

    class Outcome(models.TextChoices):
        RUNNING = "running"
        PASSED = "passed"  # the failover happened and the old primary streams again
        FAILED = "failed"

    cluster = models.ForeignKey(
        "clusters.Cluster", related_name="failover_drills", on_delete=models.CASCADE
    )
    job = models.OneToOneField(Job, related_name="failover_drill", on_delete=models.CASCADE)
    started = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    replication = models.CharField(max_length=10, blank=True)  # "sync" or "async" at the time
    primary_before = models.CharField(max_length=63)
    primary_after = models.CharField(max_length=63, blank=True)
    powered_off_at = models.DateTimeField(null=True, blank=True)  # the off sent to the device
    off_confirmed_at = models.DateTimeField(null=True, blank=True)  # the device said OFF
    first_write_at = models.DateTimeField(null=True, blank=True)  # on the new primary
    rto_s = models.FloatField(null=True, blank=True)
    outage_s = models.FloatField(null=True, blank=True)
    acknowledged = models.PositiveIntegerField(null=True, blank=True)
    rpo_rows = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    message = models.TextField(blank=True)  # why it failed, or what to look at

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"failover drill of {self.cluster} (job {self.job_id}): {self.outcome}"
