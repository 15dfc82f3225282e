"""The monitor's rounds: which clusters are due, and one pass over a batch of them.

Every MONITOR_INTERVAL_S beat runs the fan-out: one conditional UPDATE claims every monitored
cluster whose lease is free (no pass queued or running for it) and the claimed ids go out in
batches of MONITOR_BATCH_SIZE, one Celery task each. So a cluster is never queued twice, a busy
pool never piles up tasks, and Celery's per-task cost is paid once per batch, not per cluster.

A batch loads its inventories and judgement context in a handful of queries, starts every
cluster's reads at once in the worker's read pool, and records clusters in waves as their reads
complete: a cluster whose nodes hang for their full timeouts is written (and its lease freed)
after the others, and delays none of them.
"""

import logging
import queue
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from clusters.models import Cluster
from clusters.monitoring.observe import Pass, context_load, record
from clusters.monitoring.reads import PendingReading, load_inventories
from clusters.monitoring.sentinel import sentinel_act
from clusters.monitoring.view import to_view

logger = logging.getLogger(__name__)

MONITORED = [
    Cluster.State.HEALTHY,
    Cluster.State.DEGRADED,
    Cluster.State.FAILING_OVER,
    Cluster.State.MAINTENANCE,
    Cluster.State.DOWN,
    Cluster.State.UNKNOWN,
]
# After the first reading of a wave is complete, wait this long for more: readings of healthy
# clusters complete within milliseconds of each other, and one write for all of them is much
# cheaper than one each.
WAVE_GATHER_S = 0.05


def monitor_claim_due(*, now: datetime | None = None) -> tuple[datetime, list[list[int]]]:
    """Claim every due cluster with one conditional UPDATE; returns the lease (the token the
    batches carry) and the claimed ids in batches, the longest unobserved first."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.MONITOR_LEASE_S)
    claimed = (
        Cluster.objects.filter(state__in=MONITORED)
        .filter(Q(monitor_lease__isnull=True) | Q(monitor_lease__lt=now))
        .update(monitor_lease=lease)
    )
    if not claimed:
        return lease, []
    ids = list(
        Cluster.objects.filter(monitor_lease=lease)
        .order_by(F("last_checked").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)
    )
    return lease, split(ids, settings.MONITOR_BATCH_SIZE)


def split(ids: list[int], size: int) -> list[list[int]]:
    """Batches of at most `size`, as equal as possible (two workers get equal shares)."""
    count = -(-len(ids) // max(1, size))
    base, extra = divmod(len(ids), count) if count else (0, 0)
    batches, start = [], 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        batches.append(ids[start:end])
        start = end
    return batches


def monitor_batch_run(*, cluster_ids: list[int], lease: datetime) -> dict[int, str]:
    """One pass over the batch's clusters whose lease is still `lease`; returns their states."""
    inventories = load_inventories(cluster_ids, lease)
    if not inventories:
        return {}
    context = context_load([i.cluster.pk for i in inventories])
    complete: queue.SimpleQueue[PendingReading] = queue.SimpleQueue()
    for inventory in inventories:
        inventory.history_wanted = context.history_wanted(inventory.cluster.pk)
        PendingReading(inventory, on_complete=complete.put)
    states: dict[int, str] = {}
    left = len(inventories)
    while left:
        try:
            # Every read is bounded by its timeout; the lease bounds a server that answers
            # byte by byte, each byte inside the timeout. Its cluster's lease then expires.
            wave = [complete.get(timeout=settings.MONITOR_LEASE_S)]
        except queue.Empty:
            logger.error("%d monitor readings did not complete within the lease", left)
            break
        deadline = time.monotonic() + WAVE_GATHER_S
        while len(wave) < left and (wait := deadline - time.monotonic()) > 0:
            try:
                wave.append(complete.get(timeout=wait))
            except queue.Empty:
                break
        left -= len(wave)
        passes, failed = [], []
        for reading in wave:
            try:
                passes.append(_pass(reading))
            except Exception:  # a bug met by one cluster's reading must not stop the others
                logger.exception("monitor reading of %s failed", reading.inventory.cluster.name)
                failed.append(reading.inventory.cluster.pk)
        states.update(record(passes, context, lease, failed=failed))
        for one in passes:
            try:
                sentinel_act(one.cluster, one.view)
            except Exception:  # one cluster's fencing trouble must not stop the others' passes
                logger.exception("sentinel failed on cluster %s", one.cluster.name)
    return states


def _pass(pending: PendingReading) -> Pass:
    reading = pending.result()
    return Pass(pending.inventory, reading, to_view(pending.inventory, reading))
