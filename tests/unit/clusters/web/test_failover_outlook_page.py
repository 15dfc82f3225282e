"""The cluster page and the API say, per standby, whether Patroni would promote it if the
primary died now, from the monitor's last reading (a stale reading says unknown)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import Cluster, NodeStatus
from clusters.web import selectors
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


def observed_cluster(*, checked_ago: float = 2, standby: dict | None = None, **fields) -> Cluster:
    now = timezone.now()
    cluster, (node1, node2, _proxy) = three_node_cluster(
        state="healthy", last_checked=now - timedelta(seconds=checked_ago), **fields
    )
    NodeStatus.objects.create(node=node1, role="primary", state="running", last_seen=now)
    values = {"role": "replica", "state": "streaming", "lag_bytes": 2048, "last_seen": now}
    NodeStatus.objects.create(node=node2, **{**values, **(standby or {})})
    return cluster


def test_a_streaming_standby_would_be_promoted_and_its_lag_is_at_risk(admin_client):
    cluster = observed_cluster()
    assert selectors.cluster_failover_outlook(cluster) == [
        {"node": "node2", "verdict": "would_promote", "reasons": [], "bytes_at_risk": 2048}
    ]
    page = admin_client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert 'data-node="node2" data-verdict="would_promote"' in page
    assert "Patroni would promote it" in page
    assert "2 KiB of acknowledged writes would be lost" in page


def test_a_stopped_standby_is_refused_and_the_page_says_nobody_would_take_over(admin_client):
    cluster = observed_cluster(standby={"state": "stopped"})
    page = admin_client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "its PostgreSQL is stopped, not streaming" in page
    assert "No standby would take over" in page


def test_the_synchronous_standby_risks_nothing(admin_client):
    cluster = observed_cluster(replication="sync", standby={"role": "sync_replica"})
    (outlook,) = selectors.cluster_failover_outlook(cluster)
    assert outlook["verdict"] == "would_promote" and outlook["bytes_at_risk"] == 0


def test_an_old_reading_is_no_ground_for_a_verdict(admin_client):
    cluster = observed_cluster(checked_ago=600)
    (outlook,) = selectors.cluster_failover_outlook(cluster)
    assert outlook["verdict"] == "unknown"
    assert (
        "No standby would take over"
        not in admin_client.get(f"/clusters/{cluster.pk}/").content.decode()
    )


def test_an_adopted_clusters_own_limit_is_used():
    layout = {"dynamic": {"maximum_lag_on_failover": 1000, "synchronous_mode": False}}
    cluster = observed_cluster(origin="adopted", patroni_layout=layout)
    (outlook,) = selectors.cluster_failover_outlook(cluster)
    assert outlook["verdict"] == "refused"
    assert "more than maximum_lag_on_failover (1000 B)" in outlook["reasons"][0]


def test_the_api_answers_the_outlook(api):
    cluster = observed_cluster()
    body = api.get(f"/api/v1/clusters/{cluster.pk}/").json()
    assert body["failover_outlook"][0]["verdict"] == "would_promote"
