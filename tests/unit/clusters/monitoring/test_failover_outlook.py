"""If the primary died now: Patroni's verdict per standby, table-tested."""

import pytest

from clusters.monitoring.failover_outlook import (
    ELIGIBLE,
    REFUSED,
    UNKNOWN,
    WOULD_PROMOTE,
    Member,
    failover_outlook,
)

MIB = 1024 * 1024


def member(name: str, role: str = "replica", **fields) -> Member:
    values = {
        "state": "running" if role == "primary" else "streaming",
        "lag_bytes": 0 if role != "primary" else None,
        "wal_position": 1000,
        "fenced": False,
        "answered": True,
    }
    return Member(name=name, role=role, **{**values, **fields})


def verdicts(members, sync=False, observed=True):
    found = failover_outlook(members, sync=sync, maximum_lag=MIB, observed=observed)
    return {o.node: (o.verdict, o.reasons, o.bytes_at_risk) for o in found}


def test_the_standby_furthest_ahead_would_be_promoted_and_the_other_stands_down():
    found = verdicts(
        [
            member("node1", "primary"),
            member("node2", lag_bytes=4096, wal_position=900),
            member("node3", lag_bytes=100, wal_position=996),
        ]
    )
    assert found["node3"] == (WOULD_PROMOTE, [], 100)
    assert found["node2"] == (ELIGIBLE, ["node3 is further ahead and would be promoted"], 4096)
    assert "node1" not in found  # the primary has no outlook of its own


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"answered": False}, "its Patroni did not answer the last reading"),
        ({"fenced": True}, "it is fenced until rebuilt"),
        ({"state": "stopped"}, "its PostgreSQL is stopped, not streaming"),
        ({"state": ""}, "its PostgreSQL is in an unknown state, not streaming"),
        ({"lag_bytes": 3 * MIB}, "it lags 3 MiB, more than maximum_lag_on_failover (1 MiB)"),
    ],
)
def test_each_reason_patroni_would_refuse_a_standby(fields, words):
    found = verdicts([member("node1", "primary"), member("node2", **fields)])
    verdict, reasons, _ = found["node2"]
    assert verdict == REFUSED and reasons == [words]


def test_a_standby_at_exactly_the_limit_may_still_take_over():
    assert verdicts([member("node1", "primary"), member("node2", lag_bytes=MIB)])["node2"][0] == (
        WOULD_PROMOTE
    )


def test_in_synchronous_mode_only_the_synchronous_standby_may_and_risks_nothing():
    found = verdicts(
        [
            member("node1", "primary"),
            member("node2", "sync_replica", lag_bytes=4096, wal_position=10),
            member("node3", "replica", lag_bytes=0, wal_position=2000),
        ],
        sync=True,
    )
    # Being behind node3 does not matter: only the synchronous standby may run, and every
    # acknowledged commit waited for it.
    assert found["node2"] == (WOULD_PROMOTE, [], 0)
    assert found["node3"][0] == REFUSED
    assert found["node3"][1] == ["in synchronous mode only the synchronous standby may take over"]
    assert found["node3"][2] == 0


def test_without_a_fresh_reading_or_a_primary_every_standby_is_unknown():
    members = [member("node1", "primary"), member("node2")]
    assert verdicts(members, observed=False)["node2"] == (
        UNKNOWN,
        ["no fresh reading of the cluster"],
        None,
    )
    leaderless = [member("node1", "unknown"), member("node2")]
    assert verdicts(leaderless)["node2"] == (UNKNOWN, ["there is no primary now"], None)


def test_a_synchronous_standby_too_far_behind_is_refused_too():
    found = verdicts(
        [member("node1", "primary"), member("node2", "sync_replica", lag_bytes=3 * MIB)], sync=True
    )
    assert found["node2"][0] == REFUSED


def test_no_standby_able_means_no_winner():
    found = verdicts([member("node1", "primary"), member("node2", fenced=True, state="stopped")])
    verdict, reasons, _ = found["node2"]
    assert verdict == REFUSED and len(reasons) == 2


def test_a_member_whose_role_is_unknown_is_listed_as_refused():
    found = verdicts([member("node1", "primary"), member("node2", "unknown", state="stopped")])
    assert found["node2"][0] == REFUSED
