"""The two Patroni settings that decide who may take over: synchronous mode and
maximum_lag_on_failover, as Patroni runs the cluster."""

from clusters.models import Cluster
from jobs.configs.patroni import MAXIMUM_LAG_ON_FAILOVER

# Patroni's own default, for an adopted cluster whose configuration does not set it.
PATRONI_DEFAULT_MAXIMUM_LAG = 1048576


def failover_settings(cluster: Cluster) -> tuple[bool, int]:
    """(synchronous mode, maximum_lag_on_failover) as Patroni runs the cluster: HA Center's own
    settings, or what the adopted cluster's layout read from its Patroni."""
    if cluster.origin == Cluster.Origin.ADOPTED:
        dynamic = (cluster.patroni_layout or {}).get("dynamic", {})
        limit = dynamic.get("maximum_lag_on_failover", PATRONI_DEFAULT_MAXIMUM_LAG)
        return bool(dynamic.get("synchronous_mode")), int(limit)
    return cluster.replication == Cluster.Replication.SYNC, MAXIMUM_LAG_ON_FAILOVER
