"""How a batch of monitor passes meets the database: what judging needs from earlier passes
(Context, loaded once per batch) and what a wave of passes writes (Writes, one transaction).

Per cluster and pass the monitor used to cost a dozen statements and as many commits; a wave of
any number of clusters now costs about five statements and one commit (`observe` decides what
changed, this module writes it).
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery

from clusters.models import (
    Cluster,
    ClusterAlarm,
    ClusterEvent,
    Incident,
    NodeStatus,
    StatusSample,
)

Kind = ClusterEvent.Kind
HANDOVERS = [Kind.FAILOVER, Kind.SWITCHOVER]

STATUS_FIELDS = [
    "role",
    "state",
    "timeline",
    "writable",
    "lag_bytes",
    "lag_seconds",
    "proxy_status",
    "proxy_backends",
    "wal_position",
    "postmaster_started",
    "last_seen",
    "lag_high_since",
    "lag_minutes",
    "host_up_since",
]


@dataclass
class Context:
    """What judging a batch of clusters needs from earlier passes, loaded once per batch instead
    of once per cluster and pass: active alarms, the latest hand-over and the rejoins after it,
    the open incident."""

    alarms: dict[int, dict[str, ClusterAlarm]]
    handovers: dict[int, ClusterEvent]
    rejoins: dict[int, list[tuple[str, datetime]]]  # (node, at) per cluster
    incidents: dict[int, Incident] = field(default_factory=dict)  # the open one per cluster

    def history_wanted(self, cluster_id: int) -> bool:
        """Whether the cluster's latest hand-over still waits for its promotion time, which only
        Patroni's /history has (the reader also fetches it whenever the leader changes)."""
        handover = self.handovers.get(cluster_id)
        return handover is not None and not handover.details.get("promoted_at")


def context_load(cluster_ids: list[int]) -> Context:
    """Three or four queries for the whole batch."""
    alarms: dict[int, dict[str, ClusterAlarm]] = {pk: {} for pk in cluster_ids}
    for alarm in ClusterAlarm.objects.filter(cluster_id__in=cluster_ids, cleared__isnull=True):
        alarms[alarm.cluster_id][alarm.code] = alarm
    latest = ClusterEvent.objects.filter(cluster=OuterRef("pk"), kind__in=HANDOVERS).order_by("-at")
    handovers = {
        e.cluster_id: e
        for e in ClusterEvent.objects.filter(
            pk__in=Cluster.objects.filter(pk__in=cluster_ids)
            .annotate(handover=Subquery(latest.values("pk")[:1]))
            .values("handover")
        )
    }
    rejoins: dict[int, list[tuple[str, datetime]]] = {pk: [] for pk in cluster_ids}
    if handovers:
        since = min(e.at for e in handovers.values())
        for cluster_id, node, at in ClusterEvent.objects.filter(
            cluster_id__in=list(handovers), kind=Kind.REJOIN, at__gte=since
        ).values_list("cluster_id", "node", "at"):
            rejoins[cluster_id].append((node, at))
    incidents = {
        i.cluster_id: i
        for i in Incident.objects.filter(cluster_id__in=cluster_ids, closed__isnull=True)
    }
    return Context(alarms, handovers, rejoins, incidents)


@dataclass
class Writes:
    """The rows a wave of passes writes, gathered so that a wave costs a few statements and one
    commit whatever its number of clusters."""

    new_statuses: list[NodeStatus] = field(default_factory=list)
    changed_statuses: list[NodeStatus] = field(default_factory=list)
    # Answered, nothing but last_seen changed: one UPDATE for all of them.
    seen_statuses: list[int] = field(default_factory=list)
    samples: list[StatusSample] = field(default_factory=list)
    quiet_clusters: list[int] = field(default_factory=list)  # only last_checked changes
    cluster_changes: dict[int, dict] = field(default_factory=dict)
    failed_clusters: list[int] = field(default_factory=list)  # lease freed, nothing written

    def add(self, other: "Writes") -> None:
        for name in ("new_statuses", "changed_statuses", "seen_statuses", "samples"):
            getattr(self, name).extend(getattr(other, name))
        self.quiet_clusters += other.quiet_clusters
        self.cluster_changes |= other.cluster_changes

    def flush(self, now: datetime, lease: datetime | None) -> None:
        """Write everything in one transaction and free the clusters' leases (only where the
        lease is still ours: a pass that outlived its lease writes no cluster row)."""
        owned = Cluster.objects.filter(monitor_lease=lease)
        with transaction.atomic():
            # A first pass racing setup's own status write: setup's row stands, the next pass
            # updates it.
            NodeStatus.objects.bulk_create(self.new_statuses, ignore_conflicts=True)
            _statuses_update(self.changed_statuses)
            if self.seen_statuses:
                NodeStatus.objects.filter(pk__in=self.seen_statuses).update(last_seen=now)
            StatusSample.objects.bulk_create(self.samples)
            if self.quiet_clusters:
                owned.filter(pk__in=self.quiet_clusters).update(
                    last_checked=now, monitor_lease=None
                )
            for pk, changes in self.cluster_changes.items():
                owned.filter(pk=pk).update(**changes, monitor_lease=None)
            if self.failed_clusters:
                owned.filter(pk__in=self.failed_clusters).update(monitor_lease=None)


def _statuses_update(statuses: list[NodeStatus]) -> None:
    """One prepared UPDATE per row through executemany. bulk_update builds a CASE expression per
    field and row, and at a few dozen rows that cost more CPU than the whole rest of the pass.
    `fenced` and `fence_reason` are the sentinel's: never written here."""
    if not statuses:
        return
    meta, quote = NodeStatus._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in STATUS_FIELDS]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    # Only the model's own table and column names are formatted in; every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    rows = [
        [f.get_db_prep_save(getattr(s, f.attname), connection) for f in fields] + [s.pk]
        for s in statuses
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
