"""Monitor readings as the health rules see them, for the table tests of
clusters.monitoring.health: a healthy primary and standby, and the views that trouble makes."""

from clusters.monitoring.health import ClusterView, MemberView

MiB = 1024 * 1024


def primary(name: str = "node1", **kw: object) -> MemberView:
    """A leader as it looks when all is well: writable, UP for writes, DOWN for reads."""
    fields: dict = {
        "patroni_role": "leader",
        "patroni_state": "running",
        "writable": True,
        "timeline": 2,
        "lag_bytes": None,
        "lag_seconds": None,
        "proxy_rw": "UP",
        "proxy_ro": "DOWN",
    }
    return MemberView(name=name, **{**fields, **kw})


def standby(name: str = "node2", **kw: object) -> MemberView:
    """A standby as it looks when all is well: streaming, read-only, UP for reads only."""
    fields: dict = {
        "patroni_role": "replica",
        "patroni_state": "streaming",
        "writable": False,
        "timeline": 2,
        "lag_bytes": 0,
        "lag_seconds": 0.0,
        "proxy_rw": "DOWN",
        "proxy_ro": "UP",
    }
    return MemberView(name=name, **{**fields, **kw})


def view(*members: MemberView, leader: str | None = "node1", **kw: object) -> ClusterView:
    fields: dict = {"patroni_answered": True, "paused": False, "proxy_answered": True}
    return ClusterView(members=members, leader=leader, **{**fields, **kw})


HEALTHY_PAIR = view(primary(), standby())

# The frozen-then-resumed old primary: node1 was frozen (SIGSTOP) long enough for node2 to take
# the leader key and promote; resumed, it still accepts writes and HAProxy has not noticed yet.
RESUMED_OLD_PRIMARY = primary("node1", patroni_role="replica", patroni_state="running")
NEW_PRIMARY = primary("node2")
NEW_ROUTED_NOWHERE = primary("node2", proxy_rw="DOWN")  # HAProxy has not seen it promote yet
