"""The alarms a monitor reading raises, and their messages — table tests of
clusters.monitoring.health.find_alarms."""

import pytest

from clusters.monitoring.health import (
    MAX_ALARM_MESSAGE,
    ClusterView,
    find_alarms,
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

STANDBY_DOWN = (
    "node2 does not stream from the primary (Patroni: stopped): it falls behind and is no safe "
    "failover target."
)

# (id, view, expected alarms: code -> a fragment of its message)
ALARM_CASES = [
    ("healthy", HEALTHY_PAIR, {}),
    ("nothing answered", view(leader=None, patroni_answered=False, proxy_answered=False), {}),
    (
        "resumed old primary routed next to the new one",
        view(RESUMED_OLD_PRIMARY, NEW_PRIMARY, leader="node2"),
        {
            "split_brain": "Split brain: node1 and node2 accept writes at the same time "
            "(leader key: node2).",
            "proxy_rw_not_leader": "HAProxy routes writes to node1, which does not hold the "
            "leader key (node2).",
            "standby_not_streaming": "node1 does not stream from the primary (Patroni: running)",
        },
    ),
    (
        "resumed old primary the only one routed",
        view(RESUMED_OLD_PRIMARY, NEW_ROUTED_NOWHERE, leader="node2"),
        {
            "split_brain": "Split brain",
            "proxy_rw_not_leader": "node1",
            "leader_mismatch": "Patroni's leader is node2 but HAProxy routes writes to node1.",
            "standby_not_streaming": "node1",
        },
    ),
    (
        "writes routed to a read-only old primary",
        view(standby("node1", proxy_rw="UP"), NEW_ROUTED_NOWHERE, leader="node2"),
        {"proxy_rw_not_leader": "node1", "leader_mismatch": "node2"},
    ),
    (
        "two strays routed next to the leader",
        view(primary(), standby(proxy_rw="UP"), standby("node3", proxy_rw="UP 1/2")),
        {"proxy_rw_not_leader": "node2 and node3, which do not hold the leader key (node1)."},
    ),
    (
        "writes routed nowhere: clients cannot write, an alarm",
        view(primary(proxy_rw="DOWN"), standby()),
        {"writes_nowhere": "HAProxy routes writes to no server: clients cannot write."},
    ),
    (
        "the leader's node dead, its key not expired yet: writes go nowhere",
        view(primary(writable=None, proxy_rw="DOWN"), standby()),
        {"writes_nowhere": "no server"},
    ),
    (
        "Patroni silent and writes routed nowhere",
        view(
            standby("node1", patroni_role=None, writable=None),
            standby(patroni_role=None, writable=None),
            leader=None,
            patroni_answered=False,
        ),
        {"writes_nowhere": "no server"},
    ),
    (
        "writes routed nowhere while Patroni elects: the state says failing over, no alarm",
        view(standby("node1", writable=None), standby(), leader=None),
        {},
    ),
    (
        "writes routed nowhere while paused: an operator works by hand, no alarm",
        view(primary(proxy_rw="DOWN"), standby(), paused=True),
        {},
    ),
    (
        "writes routed nowhere on a cluster without a proxy: nothing to alarm on",
        view(
            primary(proxy_rw=None),
            standby(proxy_rw=None),
            proxy_answered=False,
            proxy_expected=False,
        ),
        {},
    ),
    (
        "split brain while failing over: no leader to compare routing with",
        view(
            primary(patroni_role="replica"), primary("node2", patroni_role="replica"), leader=None
        ),
        {"split_brain": "(leader key: nobody)."},
    ),
    (
        "split brain while paused",
        view(primary(), primary("node2", patroni_role="replica"), paused=True),
        {"split_brain": "Split brain", "proxy_rw_not_leader": "node2"},
    ),
    (
        "two standbys not streaming, in one message",
        view(primary(), standby(patroni_state="stopped"), standby("node3", patroni_role=None)),
        {"standby_not_streaming": f"{STANDBY_DOWN} node3 is missing from Patroni's members"},
    ),
    (
        "standby not streaming while paused",
        view(primary(), standby(patroni_state="stopped"), paused=True),
        {},
    ),
    (
        "standbys not streaming while failing over",
        view(
            standby("node1", patroni_state="stopped"), standby(patroni_state="running"), leader=None
        ),
        {},
    ),
    (
        "fenced old primary",
        view(
            standby("node1", patroni_role=None, writable=None, proxy_rw="MAINT", fenced=True),
            NEW_PRIMARY,
            leader="node2",
        ),
        {},
    ),
    (
        "lagging standby: a lag event, not an alarm",
        view(primary(), standby(lag_bytes=100 * MiB)),
        {},
    ),
    (
        "proxy unreadable: no routing alarm",
        view(primary(proxy_rw=None), standby(proxy_rw="UP"), proxy_answered=False),
        {},
    ),
    (
        "archive: segments wait, nothing archived for 700 s",
        view(primary(), standby(), archive={"waiting": 4, "last_archived_age_s": 700}),
        {"archive_behind": "WAL archive falls behind: the newest archived WAL is 700 s old"},
    ),
    (
        "archive: the last attempt failed while segments wait",
        view(
            primary(),
            standby(),
            archive={
                "waiting": 2,
                "last_failed_wal": "00000001000000000000000B",
                "last_failed_at": "2026-12-05T08:01:00+00:00",
                "last_archived_at": "2026-12-05T08:00:00+00:00",
            },
        ),
        {"archive_behind": "archiving fails on the primary: 00000001000000000000000B failed"},
    ),
    (
        "archive: an idle server archived nothing for hours, nothing waits",
        view(primary(), standby(), archive={"waiting": 0, "last_archived_age_s": 9000}),
        {},
    ),
    (
        "Patroni silent: no routing or standby alarm",
        view(
            standby("node1", proxy_rw="UP", patroni_role=None),
            standby(proxy_rw="UP"),
            leader="node1",
            patroni_answered=False,
        ),
        {},
    ),
]


@pytest.mark.parametrize(
    ("the_view", "expected"), [pytest.param(v, e, id=i) for i, v, e in ALARM_CASES]
)
def test_find_alarms(the_view: ClusterView, expected: dict[str, str]) -> None:
    alarms = find_alarms(the_view)
    assert set(alarms) == set(expected), alarms
    for code, fragment in expected.items():
        assert fragment in alarms[code], alarms[code]


def test_alarm_messages_fit_the_alarm_row() -> None:
    many = [
        standby(f"standby-with-a-long-name-{i:02d}", patroni_state="stopped") for i in range(20)
    ]
    message = find_alarms(view(primary(), *many))["standby_not_streaming"]
    assert len(message) == MAX_ALARM_MESSAGE
    assert message.endswith("…")
