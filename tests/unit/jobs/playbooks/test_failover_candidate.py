"""The failover job asks Patroni's live member list whether its candidate can be promoted
before it asks for the promotion (the page's disabled button says the same from the monitor's
last reading)."""

import pytest

from jobs.playbooks.failover import promotion_refusal


@pytest.mark.parametrize(
    ("member", "synchronous", "words"),
    [
        ({"name": "node2", "role": "replica", "state": "streaming"}, False, None),
        ({"name": "node2", "role": "sync_standby", "state": "streaming"}, True, None),
        ({}, False, "not in the cluster's member list"),
        ({"name": "node2", "role": "replica", "state": "stopped"}, False, "is stopped"),
        ({"name": "node2", "role": "replica", "state": "start failed"}, False, "start failed"),
        (
            {
                "name": "node2",
                "role": "replica",
                "state": "streaming",
                "tags": {"nofailover": True},
            },
            False,
            "tagged nofailover",
        ),
        ({"name": "node2", "role": "replica", "state": "streaming"}, True, "synchronous standby"),
    ],
)
def test_a_candidate_patroni_would_not_promote_is_refused_in_words(member, synchronous, words):
    found = promotion_refusal(member, synchronous=synchronous)
    if words is None:
        assert found is None
    else:
        assert words in found
