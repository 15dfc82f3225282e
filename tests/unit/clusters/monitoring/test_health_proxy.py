"""Where HAProxy sends each backend's connections, and its server states as one word (tables)."""

import pytest

from clusters.monitoring.health import proxy_serving, proxy_state


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("UP", "UP"),
        ("UP 1/2", "UP"),  # failing its checks, still UP until the next failure
        ("DOWN", "DOWN"),
        ("DOWN 1/2", "DOWN"),  # passing its checks, still DOWN until the next success
        ("MAINT", "MAINT"),
        ("MAINT (via primary/node1)", "MAINT"),
        ("DRAIN", "DRAIN"),
        ("NOLB", "NOLB"),
        (" up ", "UP"),
        ("no check", "NO CHECK"),  # not a state of ours: answered as HAProxy wrote it
        ("", ""),
    ],
)
def test_a_status_is_read_as_haproxys_state_word(status, state):
    assert proxy_state(status) == state


SERVING = [
    (
        "healthy pair: writes to the primary, reads to the standby, no fallback",
        {
            "primary": {"node1": "UP", "node2": "DOWN"},
            "be_replicas": {"node1": "DOWN", "node2": "UP"},
            "be_replicas_fallback": {"node1": "UP", "node2": "DOWN"},
        },
        {"primary": {"node1"}, "be_replicas": {"node2"}, "be_replicas_fallback": set()},
    ),
    (
        "no replica UP: reads fall back to the primary",
        {
            "primary": {"node1": "UP", "node2": "DOWN"},
            "be_replicas": {"node1": "DOWN", "node2": "MAINT"},
            "be_replicas_fallback": {"node1": "UP", "node2": "DOWN"},
        },
        {"primary": {"node1"}, "be_replicas": set(), "be_replicas_fallback": {"node1"}},
    ),
    (
        "draining and no-load-balance servers take no new connections",
        {
            "primary": {"node1": "DRAIN", "node2": "UP 1/2"},
            "be_replicas": {"node1": "NOLB", "node2": "DOWN 1/2"},
        },
        {"primary": {"node2"}, "be_replicas": set()},
    ),
    (
        "split brain as HAProxy sees it: both UP for writes, both get them",
        {"primary": {"node1": "UP", "node2": "UP"}},
        {"primary": {"node1", "node2"}},
    ),
    ("HAProxy unread", {}, {}),
]


@pytest.mark.parametrize(("case", "backends", "serving"), SERVING, ids=[c[0] for c in SERVING])
def test_the_servers_each_backend_sends_new_connections_to(case, backends, serving):
    assert proxy_serving(backends) == serving
