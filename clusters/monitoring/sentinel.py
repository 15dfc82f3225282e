"""The split-brain sentinel's hand: fence every node that accepts writes without the leader key.

Alarms are raised by `observe` from `health.find_alarms`; this module acts. A lab test showed
why acting matters: a primary frozen for 30 s came back believing it was the leader, and without
a fence writes went to two nodes.
"""

import logging

from django.conf import settings

from clusters.alerts.events import event_record
from clusters.models import Cluster, ClusterEvent, Node, NodeStatus
from clusters.monitoring.health import ClusterView, fence_candidates, fence_confirmed
from clusters.monitoring.reads import leaders_named
from jobs import services
from jobs.errors import JobRefused

logger = logging.getLogger(__name__)


def sentinel_act(cluster: Cluster, view: ClusterView) -> list[str]:
    """Mark and fence each candidate once, if every node that answers agrees on the leader;
    returns the names fenced now."""
    candidates = fence_candidates(view)
    if not candidates:
        return []
    database = list(cluster.nodes.filter(kind=Node.Kind.DATABASE))
    named = leaders_named(database, settings.MONITOR_TIMEOUT_S)
    if not fence_confirmed(named, view.leader):
        # The split_brain alarm still stands; the next pass looks again.
        logger.warning(
            "not fencing %s on %s: the nodes do not agree on the leader (%s)",
            ", ".join(candidates),
            cluster.name,
            ", ".join(f"{node} names {leader or 'nobody'}" for node, leader in named.items())
            or "no Patroni answered",
        )
        return []
    fenced = []
    for name in candidates:
        reason = f"{name} accepts writes but {view.leader or 'no node'} holds the leader key"
        marked = NodeStatus.objects.filter(
            node__cluster=cluster, node__name=name, fenced=False
        ).update(fenced=True, fence_reason=reason)
        if not marked:
            continue  # fenced already, by an earlier pass
        node = cluster.nodes.get(name=name)
        try:
            job = services.job_start(
                cluster=cluster, kind="fence", node=node, params={"reason": reason}
            )
        except JobRefused as exc:
            logger.error("could not start fencing %s: %s", name, exc)
            continue
        event_record(
            cluster,
            ClusterEvent.Kind.FENCED,
            f"fenced {name}: {reason}",
            node=name,
            severity=ClusterEvent.Severity.CRITICAL,
            details={"job": job.pk},
        )
        fenced.append(name)
    return fenced
