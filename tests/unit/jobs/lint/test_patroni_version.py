"""The lint names a Patroni with the leader-key overwrite (before 3.0.3; Debian 12 ships 3.0.2),
which an adopted cluster may run."""

from dataclasses import replace

import pytest

from jobs.lint import rules
from tests.unit.jobs.lint.test_rules import GOOD, only


@pytest.mark.parametrize(
    ("versions", "named"),
    [
        ({"node1": "3.0.2", "node2": "3.0.2"}, "node1 3.0.2, node2 3.0.2"),
        ({"node1": "4.1.5", "node2": "2.1.4"}, "node2 2.1.4"),
    ],
)
def test_a_patroni_before_3_0_3_is_an_error_naming_the_members(versions, named):
    found = only("patroni_version", replace(GOOD, patroni_versions=versions))
    assert len(found) == 1 and found[0].severity == rules.ERROR
    assert found[0].message == f"Patroni older than 3.0.3 runs on {named}."
    assert "leader key" in found[0].consequence


@pytest.mark.parametrize(
    "versions",
    [
        {},  # not read (a generated snapshot, or no member answered)
        {"node1": "3.0.3", "node2": "4.1.5"},
        {"node1": "3.1.2", "node2": "10.0.0"},
        {"node1": "4.1.0-dev", "node2": "?"},  # unreadable: not guessed at
    ],
)
def test_patroni_3_0_3_and_later_or_unknown_versions_are_not_named(versions):
    assert only("patroni_version", replace(GOOD, patroni_versions=versions)) == []
