"""The split-brain sentinel's hand: fence every node that accepts writes without the leader key.

Alarms are raised by clusters.observe from clusters.health.find_alarms; this module acts. A lab
test showed why acting matters: a primary frozen for 30 s came back believing it was the
leader, and without a fence writes went to two nodes.
"""

import logging

from django.conf import settings

from .health import ClusterView, fence_candidates, fence_confirmed
from .models import Cluster, ClusterEvent, Node, NodeStatus
from .monitor import leaders_named
from .observe import event_record

logger = logging.getLogger(__name__)


def sentinel_act(cluster: Cluster, view: ClusterView) -> list[str]:
    """Mark and fence each candidate once, if every node that answers agrees on the leader;
    returns the names fenced now."""
    from jobs import services  # lazy: clusters never imports jobs at import time
    from jobs.errors import JobRefused

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
