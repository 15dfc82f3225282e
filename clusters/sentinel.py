"""The split-brain sentinel's hand: fence every node that accepts writes without the leader key.

Alarms are raised by clusters.observe from clusters.health.find_alarms; this module acts. A lab
test showed why acting matters: a primary frozen for 30 s came back believing it was the
leader, and without a fence writes went to two nodes.
"""

import logging

from .health import ClusterView, fence_candidates
from .models import Cluster, ClusterEvent, NodeStatus
from .observe import event_record

logger = logging.getLogger(__name__)


def sentinel_act(cluster: Cluster, view: ClusterView) -> list[str]:
    """Mark and fence each candidate once; returns the names fenced now."""
    from jobs import services  # lazy: clusters never imports jobs at import time
    from jobs.errors import JobRefused

    fenced = []
    for name in fence_candidates(view):
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
