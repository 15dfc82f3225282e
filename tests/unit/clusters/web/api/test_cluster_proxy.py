"""The cluster answer's `proxy.backends`: HAProxy's servers per backend as the monitor last read
them, with their state and whether they take that backend's new connections."""

import pytest

from clusters.models import NodeStatus
from tests.unit.conftest import FP, three_node_cluster

pytestmark = pytest.mark.django_db


def observed(nodes, **backends_by_node: dict) -> None:
    by_name = {n.name: n for n in nodes}
    for name, backends in backends_by_node.items():
        NodeStatus.objects.create(node=by_name[name], role="unknown", proxy_backends=backends)


def backends(api, cluster) -> list[tuple]:
    answer = api.get(f"/api/v1/clusters/{cluster.pk}/").json()["proxy"]["backends"]
    keys = ("frontend", "backend", "node", "status", "haproxy_status", "serving")
    assert all(set(b) == set(keys) for b in answer)
    return [tuple(b[k] for k in keys) for b in answer]


def test_backends_list_each_server_of_the_rw_and_ro_backends_and_who_takes_traffic(api):
    cluster, nodes = three_node_cluster(state="healthy")
    observed(
        nodes,
        node1={"primary": "UP", "be_replicas": "DOWN", "be_replicas_fallback": "UP"},
        node2={"primary": "DOWN", "be_replicas": "UP 1/2", "be_replicas_fallback": "DOWN"},
    )
    assert backends(api, cluster) == [
        ("rw", "primary", "node1", "UP", "UP", True),
        ("rw", "primary", "node2", "DOWN", "DOWN", False),
        ("ro", "be_replicas", "node1", "DOWN", "DOWN", False),
        ("ro", "be_replicas", "node2", "UP", "UP 1/2", True),
        # The fallback takes reads only while no replica is UP.
        ("ro", "be_replicas_fallback", "node1", "UP", "UP", False),
        ("ro", "be_replicas_fallback", "node2", "DOWN", "DOWN", False),
    ]


def test_with_no_replica_up_reads_go_to_the_fallback_and_maint_or_drain_take_none(api):
    cluster, nodes = three_node_cluster(state="degraded")
    observed(
        nodes,
        node1={"primary": "UP", "be_replicas": "DOWN", "be_replicas_fallback": "UP"},
        node2={"primary": "MAINT", "be_replicas": "DRAIN", "be_replicas_fallback": "MAINT"},
    )
    serving = {(b[1], b[2]): (b[3], b[5]) for b in backends(api, cluster)}
    assert serving[("be_replicas", "node2")] == ("DRAIN", False)
    assert serving[("primary", "node2")] == ("MAINT", False)
    assert serving[("be_replicas_fallback", "node1")] == ("UP", True)


def test_backends_are_empty_until_haproxy_was_read(api):
    cluster, nodes = three_node_cluster(state="unknown")
    observed(nodes, node1={}, node2={})
    assert backends(api, cluster) == []


def test_a_cluster_never_monitored_has_no_backends(api, cred, scanned):
    body = {
        "name": "pg1",
        "replication": "async",
        "nodes": [
            {
                "name": name,
                "address": f"198.18.0.{last}",
                "ssh_port": 22,
                "credential": cred.pk,
                "host_key_fingerprint": FP,
                "kind": kind,
            }
            for name, last, kind in (
                ("node1", 11, "database"),
                ("node2", 12, "database"),
                ("proxy", 10, "proxy"),
            )
        ],
        "client_networks": ["198.18.0.0/24"],
        "failover_profile": "balanced",
    }
    created = api.post("/api/v1/clusters/", body)
    assert created.status_code == 201, created.json()
    assert created.json()["proxy"]["backends"] == []
    assert api.get(f"/api/v1/clusters/{created.json()['id']}/").json()["proxy"]["backends"] == []
