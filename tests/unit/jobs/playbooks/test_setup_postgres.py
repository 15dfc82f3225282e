"""Which node is the primary, when the database nodes' Patronis may not all see the same
(a node whose network just came back still shows an old view, or none)."""

from jobs.playbooks.setup_postgres import agreed_leader


def test_the_primary_is_the_leader_every_view_that_names_one_agrees_on():
    def view(leader: str | None) -> list[dict]:
        return [
            {"name": n, "role": "leader" if n == leader else "replica"} for n in ("node1", "node2")
        ]

    assert agreed_leader([view("node2"), view("node2")]) == ("node2", "")
    # A node just back from a network cut, not yet reaching etcd: no leader in its view.
    assert agreed_leader([view(None), view("node2")]) == ("node2", "")
    assert agreed_leader([view("node1"), view("node2")]) == (
        None,
        "the nodes disagree: node1 and node2 each shown as leader",
    )
    assert agreed_leader([view(None)]) == (None, "no node reports a leader")
    assert agreed_leader([]) == (None, "no Patroni answers")
