"""Judging a monitor reading: the cluster's state and its reasons, node roles — table tests of
clusters.monitoring.health (alarms: test_health_alarms.py, fencing: test_health_fencing.py)."""

from dataclasses import replace

import pytest

from clusters.monitoring.health import (
    DEGRADED,
    DOWN,
    FAILING_OVER,
    HEALTHY,
    MAINTENANCE,
    NO_LEADER,
    NO_SYNC_STANDBY,
    NOTHING_ANSWERED,
    PATRONI_ROLES,
    PATRONI_SILENT,
    PAUSED,
    PROXY_SILENT,
    STATES,
    UNKNOWN,
    WRITES_NOWHERE,
    ClusterView,
    derive_state,
    is_up,
    role_of,
)
from tests.unit.clusters.monitoring.health_views import (
    HEALTHY_PAIR,
    NEW_PRIMARY,
    NEW_ROUTED_NOWHERE,
    RESUMED_OLD_PRIMARY,
    MiB,
    primary,
    standby,
    view,
)

# (id, view, expected state, a fragment every reason list must contain or None for "no reasons")
STATE_CASES = [
    ("healthy async pair", HEALTHY_PAIR, HEALTHY, None),
    ("healthy sync standby", view(primary(), standby(patroni_role="sync_standby")), HEALTHY, None),
    (
        "healthy three nodes",
        view(primary(), standby(), standby("node3", patroni_role="sync_standby")),
        HEALTHY,
        None,
    ),
    ("healthy single node", view(primary()), HEALTHY, None),
    (
        "leader routed while failing checks (UP 1/2)",
        view(primary(proxy_rw="UP 1/2"), standby()),
        HEALTHY,
        None,
    ),
    ("lag exactly at threshold", view(primary(), standby(lag_bytes=16 * MiB)), HEALTHY, None),
    ("lag unknown while streaming", view(primary(), standby(lag_bytes=None)), HEALTHY, None),
    ("read-only status unknown", view(primary(), standby(proxy_ro=None)), HEALTHY, None),
    (
        "nothing answered",
        view(
            standby("node1", writable=None),
            standby("node2", writable=None),
            leader=None,
            patroni_answered=False,
            proxy_answered=False,
        ),
        UNKNOWN,
        NOTHING_ANSWERED,
    ),
    (
        "nothing answered but SQL sees a split brain",
        view(
            primary("node1", proxy_rw=None),
            primary("node2", proxy_rw=None),
            leader=None,
            patroni_answered=False,
            proxy_answered=False,
        ),
        UNKNOWN,
        "Split brain: node1 and node2",
    ),
    ("paused and otherwise healthy", view(primary(), standby(), paused=True), MAINTENANCE, PAUSED),
    (
        "paused with a standby stopped by the operator",
        view(primary(), standby(patroni_state="stopped", writable=None), paused=True),
        MAINTENANCE,
        "node2 does not stream from the primary (Patroni: stopped)",
    ),
    (
        "paused without a leader",
        view(standby("node1", patroni_state="running"), standby(), leader=None, paused=True),
        MAINTENANCE,
        PAUSED,
    ),
    (
        "paused with the proxy unreadable",
        view(
            primary(proxy_rw=None),
            standby(proxy_rw=None, proxy_ro=None),
            paused=True,
            proxy_answered=False,
        ),
        MAINTENANCE,
        PROXY_SILENT,
    ),
    (
        "failover in progress",
        view(
            standby("node1", patroni_role=None, patroni_state=None, writable=None, proxy_rw="DOWN"),
            standby(patroni_state="running"),
            leader=None,
        ),
        FAILING_OVER,
        NO_LEADER,
    ),
    (
        "no leader, the only standby too far behind to be promoted",
        view(standby(lag_bytes=5 * MiB), leader=None, failover_lag_limit=MiB),
        FAILING_OVER,
        "No standby will be promoted: each lags more than maximum_lag_on_failover (1.0 MiB) "
        "behind the last primary (node2 5.0 MiB)",
    ),
    (
        "no leader, one of two standbys close enough to win",
        view(
            standby(lag_bytes=5 * MiB),
            standby("node3", lag_bytes=1000),
            leader=None,
            failover_lag_limit=MiB,
        ),
        FAILING_OVER,
        NO_LEADER,
    ),
    (
        "failover in progress, writes routed nowhere",
        view(standby("node1", writable=None), standby(), leader=None),
        FAILING_OVER,
        WRITES_NOWHERE,
    ),
    (
        "leader in recovery",
        view(primary(writable=False), standby()),
        DOWN,
        "node1 holds the leader key but is read-only: writes fail.",
    ),
    (
        "leader unreachable by SQL",
        view(primary(writable=None), standby()),
        DOWN,
        "node1 holds the leader key but its PostgreSQL does not answer the console.",
    ),
    (
        "leader is not a known database node",
        view(primary(), standby(), leader="node9"),
        DOWN,
        "node9 holds the leader key but is not a database node of this cluster.",
    ),
    (
        "writes routed nowhere",
        view(primary(proxy_rw="DOWN"), standby()),
        DOWN,
        WRITES_NOWHERE,
    ),
    (
        "leader in MAINT in the read-write backend",
        view(primary(proxy_rw="MAINT"), standby()),
        DOWN,
        WRITES_NOWHERE,
    ),
    (
        "writes routed to the old primary, now a read-only standby",
        view(standby("node1", proxy_rw="UP"), NEW_ROUTED_NOWHERE, leader="node2"),
        DOWN,
        "HAProxy routes writes to node1, not to the leader node2: clients' writes fail or go "
        "astray.",
    ),
    (
        "resumed old primary still the only one routed",
        view(RESUMED_OLD_PRIMARY, NEW_ROUTED_NOWHERE, leader="node2"),
        DOWN,
        "HAProxy routes writes to node1, not to the leader node2: clients' writes fail or go "
        "astray.",
    ),
    (
        "resumed old primary routed next to the new one",
        view(RESUMED_OLD_PRIMARY, NEW_PRIMARY, leader="node2"),
        DEGRADED,
        "Split brain: node1 and node2 accept writes at the same time; what the one without "
        "the leader key takes will be lost.",
    ),
    (
        "split brain, writes routed only to the leader",
        view(
            primary(),
            primary(
                "node2",
                patroni_role="replica",
                patroni_state="streaming",
                proxy_rw="DOWN",
                proxy_ro="UP",
            ),
        ),
        DEGRADED,
        "Split brain",
    ),
    (
        "split brain while failing over",
        view(
            primary(patroni_role="replica"), primary("node2", patroni_role="replica"), leader=None
        ),
        FAILING_OVER,
        "Split brain",
    ),
    (
        "a standby routed for writes too",
        view(primary(), standby(proxy_rw="UP 2/3")),
        DEGRADED,
        "HAProxy routes writes to more than one server (node1 and node2): only the leader "
        "should get them.",
    ),
    (
        "proxy unreadable",
        view(primary(proxy_rw=None), standby(proxy_rw=None, proxy_ro=None), proxy_answered=False),
        DEGRADED,
        PROXY_SILENT,
    ),
    (
        "Patroni silent, HAProxy still routes writes",
        view(
            replace(primary(), patroni_role=None, patroni_state=None),
            replace(standby(), patroni_role=None, patroni_state=None),
            leader=None,
            patroni_answered=False,
        ),
        DEGRADED,
        PATRONI_SILENT,
    ),
    (
        "Patroni silent, writes routed nowhere",
        view(
            standby("node1", patroni_role=None, writable=None),
            standby(patroni_role=None, writable=None),
            leader=None,
            patroni_answered=False,
        ),
        DOWN,
        WRITES_NOWHERE,
    ),
    (
        "lagging standby",
        view(primary(), standby(lag_bytes=40 * MiB, lag_seconds=12.5)),
        DEGRADED,
        "node2 lags 40.0 MiB, 12.5 s behind the primary (threshold 16.0 MiB).",
    ),
    (
        "lagging past a custom threshold",
        view(primary(), standby(lag_bytes=2 * MiB, lag_seconds=None), lag_threshold_bytes=MiB),
        DEGRADED,
        "node2 lags 2.0 MiB behind the primary (threshold 1.0 MiB).",
    ),
    (
        "lagging sync standby",
        view(primary(), standby(patroni_role="sync_standby", lag_bytes=17 * MiB)),
        DEGRADED,
        "node2 lags 17.0 MiB",
    ),
    (
        "standby running but not streaming",
        view(primary(), standby(patroni_state="running")),
        DEGRADED,
        "node2 does not stream from the primary (Patroni: running): it falls behind and is no "
        "safe failover target.",
    ),
    (
        "standby in archive recovery",
        view(primary(), standby(patroni_state="in archive recovery")),
        DEGRADED,
        "node2 does not stream from the primary (Patroni: in archive recovery)",
    ),
    (
        "standby stopped",
        view(primary(), standby(patroni_state="stopped", writable=None, proxy_ro="DOWN")),
        DEGRADED,
        "node2 does not stream from the primary (Patroni: stopped)",
    ),
    (
        "standby missing from /cluster",
        view(primary(), standby(patroni_role=None, patroni_state=None, writable=None)),
        DEGRADED,
        "node2 is missing from Patroni's members: its Patroni is stopped or cut off.",
    ),
    (
        "one of two standbys not streaming",
        view(primary(), standby(), standby("node3", patroni_state="starting")),
        DEGRADED,
        "node3 does not stream from the primary (Patroni: starting)",
    ),
    (
        "streaming standby not UP for reads",
        view(primary(), standby(proxy_ro="DOWN")),
        DEGRADED,
        "node2 streams but HAProxy sends it no reads (DOWN).",
    ),
    (
        "fenced old primary",
        view(
            standby(
                "node1",
                patroni_role=None,
                patroni_state=None,
                writable=None,
                proxy_rw="MAINT",
                proxy_ro="MAINT",
                fenced=True,
            ),
            NEW_PRIMARY,
            leader="node2",
        ),
        DEGRADED,
        "node1 is fenced (shut out by the sentinel): rebuild it as a standby.",
    ),
    (
        "fenced but still writable",
        view(
            replace(RESUMED_OLD_PRIMARY, fenced=True, proxy_rw="MAINT"), NEW_PRIMARY, leader="node2"
        ),
        DEGRADED,
        "Split brain",
    ),
    (
        "sync cluster whose standby is not yet synchronous",
        view(primary(), standby(), synchronous=True),
        DEGRADED,
        NO_SYNC_STANDBY,
    ),
    (
        "sync cluster whose only synchronous standby is fenced",
        view(primary(), standby(patroni_role="sync_standby", fenced=True), synchronous=True),
        DEGRADED,
        NO_SYNC_STANDBY,
    ),
    (
        "sync cluster with its synchronous standby",
        view(primary(), standby(patroni_role="sync_standby"), synchronous=True),
        HEALTHY,
        None,
    ),
    (
        "sync cluster with a quorum standby next to a plain one",
        view(
            primary(),
            standby(),
            standby("node3", patroni_role="quorum_standby"),
            synchronous=True,
        ),
        HEALTHY,
        None,
    ),
    ("sync cluster of one node", view(primary(), synchronous=True), HEALTHY, None),
    (
        "the proxy without the floating address is down",
        view(primary(), standby(), proxies_silent=("proxy2",)),
        DEGRADED,
        "proxy2's HAProxy does not answer: the floating address has no other proxy",
    ),
]


@pytest.mark.parametrize(
    ("the_view", "state", "fragment"),
    [pytest.param(v, s, f, id=i) for i, v, s, f in STATE_CASES],
)
def test_derive_state(the_view: ClusterView, state: str, fragment: str | None) -> None:
    got, reasons = derive_state(the_view)
    assert got == state, reasons
    if fragment is None:
        assert reasons == []
    else:
        assert any(fragment in r for r in reasons), reasons


def test_reasons_are_empty_exactly_when_healthy() -> None:
    for case_id, the_view, _, _ in STATE_CASES:
        state, reasons = derive_state(the_view)
        assert (state == HEALTHY) == (not reasons), case_id


def test_a_split_brain_is_never_healthy() -> None:
    split = [v for _, v, _, _ in STATE_CASES if sum(m.writable is True for m in v.members) >= 2]
    assert len(split) >= 5
    for the_view in split:
        assert derive_state(the_view)[0] != HEALTHY


def test_reasons_are_one_sentence_each() -> None:
    for case_id, the_view, _, _ in STATE_CASES:
        for reason in derive_state(the_view)[1]:
            assert reason.endswith(".") and reason.count(". ") == 0, (case_id, reason)


def test_a_down_cluster_puts_what_makes_it_down_first() -> None:
    state, reasons = derive_state(view(primary(writable=False), standby(patroni_state="running")))
    assert state == DOWN
    assert reasons[0] == "node1 holds the leader key but is read-only: writes fail."
    assert reasons[-1].startswith("node2 does not stream from the primary (Patroni: running)")


@pytest.mark.parametrize(
    ("patroni_role", "role"),
    [
        ("leader", "primary"),
        ("master", "primary"),
        ("primary", "primary"),
        ("replica", "replica"),
        ("standby_leader", "replica"),
        ("sync_standby", "sync_replica"),
        ("quorum_standby", "sync_replica"),
        ("something_new", "unknown"),
        (None, "unknown"),
    ],
)
def test_role_of(patroni_role: str | None, role: str) -> None:
    assert role_of(standby(patroni_role=patroni_role)) == role


def test_role_of_ignores_writability() -> None:
    # A writable node without the leader key is a split brain to report, not a primary.
    assert role_of(RESUMED_OLD_PRIMARY) == "replica"


@pytest.mark.parametrize(
    ("status", "up"),
    [
        ("UP", True),
        ("UP 1/2", True),
        ("up", True),
        ("DOWN", False),
        ("DOWN 1/2", False),
        ("MAINT", False),
        ("DRAIN", False),
        ("", False),
        (None, False),
    ],
)
def test_is_up(status: str | None, up: bool) -> None:
    assert is_up(status) is up


def test_states_and_roles_agree_with_the_models() -> None:
    from clusters.models import Cluster, NodeStatus

    assert set(STATES) <= set(Cluster.State.values)
    assert PATRONI_ROLES == NodeStatus.PATRONI_ROLES
    assert set(PATRONI_ROLES.values()) <= set(NodeStatus.Role.values)


def test_no_candidate_reason_only_when_every_listed_standby_is_too_far_behind() -> None:
    close = view(standby(lag_bytes=5 * MiB), standby("node3", lag_bytes=1000), leader=None)
    assert not any("No standby" in r for r in derive_state(close)[1])
    unknown_limit = view(standby(lag_bytes=5 * MiB), leader=None)
    assert not any("No standby" in r for r in derive_state(unknown_limit)[1])
    at_limit = view(standby(lag_bytes=MiB), leader=None, failover_lag_limit=MiB)
    assert not any("No standby" in r for r in derive_state(at_limit)[1])
