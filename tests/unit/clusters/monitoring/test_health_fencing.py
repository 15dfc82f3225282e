"""Whom the sentinel may fence, and when the nodes' word is enough to do it — table tests of
clusters.monitoring.health's fencing rules, on the views of health_views.py."""

from dataclasses import replace

import pytest

from clusters.monitoring.health import ClusterView, fence_candidates, fence_confirmed
from tests.unit.clusters.monitoring.health_views import (
    HEALTHY_PAIR,
    NEW_PRIMARY,
    RESUMED_OLD_PRIMARY,
    primary,
    view,
)

FENCE_CASES = [
    ("healthy", HEALTHY_PAIR, []),
    ("resumed old primary", view(RESUMED_OLD_PRIMARY, NEW_PRIMARY, leader="node2"), ["node1"]),
    (
        "resumed old primary while the leader is not writable yet",
        view(RESUMED_OLD_PRIMARY, replace(NEW_PRIMARY, writable=False), leader="node2"),
        ["node1"],
    ),
    (
        "already fenced",
        view(replace(RESUMED_OLD_PRIMARY, fenced=True), NEW_PRIMARY, leader="node2"),
        [],
    ),
    (
        "two strays",
        view(
            primary(), primary("node2", patroni_role="replica"), primary("node3", patroni_role=None)
        ),
        ["node2", "node3"],
    ),
    (
        "no leader key: Patroni is electing",
        view(RESUMED_OLD_PRIMARY, replace(NEW_PRIMARY, patroni_role="replica"), leader=None),
        [],
    ),
    (
        "paused: an operator is working by hand",
        view(RESUMED_OLD_PRIMARY, NEW_PRIMARY, leader="node2", paused=True),
        [],
    ),
    (
        "Patroni silent",
        view(RESUMED_OLD_PRIMARY, NEW_PRIMARY, leader="node2", patroni_answered=False),
        [],
    ),
    (
        "unreachable node is not a candidate",
        view(replace(RESUMED_OLD_PRIMARY, writable=None), NEW_PRIMARY, leader="node2"),
        [],
    ),
]


# (id, leader per answering node, the view's leader, fence?)
CONFIRM_CASES = [
    ("every node names the leader", {"node1": "node2", "node2": "node2"}, "node2", True),
    ("the frozen rogue does not answer", {"node1": "node1"}, "node1", True),
    # The chaos suite's network cut: the healed old primary still named itself while the new
    # primary named itself; the monitor had read the old one's view.
    (
        "a stale view against the new primary's",
        {"node1": "node1", "node2": "node2"},
        "node1",
        False,
    ),
    ("a node that names nobody", {"node1": "node2", "node2": None}, "node2", False),
    ("nobody answered", {}, "node2", False),
]


@pytest.mark.parametrize(
    ("named", "leader", "expected"),
    [pytest.param(n, lead, e, id=i) for i, n, lead, e in CONFIRM_CASES],
)
def test_fence_confirmed(named: dict, leader: str, expected: bool) -> None:
    assert fence_confirmed(named, leader) is expected


@pytest.mark.parametrize(
    ("the_view", "expected"), [pytest.param(v, e, id=i) for i, v, e in FENCE_CASES]
)
def test_fence_candidates(the_view: ClusterView, expected: list[str]) -> None:
    assert fence_candidates(the_view) == expected
