"""What the console shows of a cluster's fast failover (issue 21): whether it is on, which
database nodes it can fence (a device whose last test passed) and which keep the lease path and
why, and the witness agent's last decisions (clusters.monitoring.fastpath_decisions)."""

from clusters.models import Cluster, ClusterEvent, FenceDevice, Node

RECENT_DECISIONS = 10


def node_readiness(node: Node, device: FenceDevice | None) -> dict:
    """One database node: armed (the agent may fence it), or why it keeps the lease path."""
    why = device.untested_reason() if device else "no fence device"
    return {"name": node.name, "armed": not why, "why": why, "method": device and device.method}


def fast_failover_detail(cluster: Cluster) -> dict:
    """The fast-failover section: the setting, each node's readiness, one summary sentence and
    the recent decisions."""
    devices = {d.node_id: d for d in FenceDevice.objects.filter(node__cluster=cluster)}
    nodes = [node_readiness(n, devices.get(n.pk)) for n in cluster.database_nodes]
    armed = [n["name"] for n in nodes if n["armed"]]
    if not cluster.fast_failover:
        summary = "Off: an unplanned failover waits for the leader key's lease to expire."
    elif not cluster.proxy_node:
        summary = "On, but the cluster has no proxy: the agent has no witness to run on."
    elif not armed:
        summary = "On, but no node has a tested fence device: every failover takes the lease path."
    else:
        keep = [n["name"] for n in nodes if not n["armed"]]
        summary = f"On: the witness may fence {' and '.join(armed)} and hand over at once" + (
            f"; {' and '.join(keep)} keep{'s' if len(keep) == 1 else ''} the lease path."
            if keep
            else "."
        )
    decisions = ClusterEvent.objects.filter(
        cluster=cluster, kind=ClusterEvent.Kind.FAST_FAILOVER
    ).order_by("-at")[:RECENT_DECISIONS]
    return {
        "enabled": cluster.fast_failover,
        "window_minutes": cluster.fast_failover_window_s // 60,
        "witness": cluster.proxy_node,
        "nodes": nodes,
        "summary": summary,
        "decisions": [
            {
                "at": e.at,
                "outcome": e.details.get("outcome", ""),
                "sentence": e.details.get("sentence", e.summary),
                "timings_ms": e.details.get("timings_ms", {}),
                "severity": e.severity,
            }
            for e in decisions
        ],
    }
