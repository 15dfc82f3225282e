"""Pages render what the database holds: the cluster page with status, alarms, events, actions."""

import pytest
from django.utils import timezone

from clusters.models import (
    ClusterAlarm,
    ClusterEvent,
    NodeStatus,
)
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    cluster, nodes = three_node_cluster(state="degraded", database_name="app", database_user="app")
    for i, node in enumerate(nodes):
        if node.kind == "database":
            NodeStatus.objects.create(
                node=node,
                role="primary" if i == 0 else "unknown",
                state="running" if i == 0 else "down",
                timeline=2,
                fenced=i == 1,
                fence_reason="accepts writes without the key",
            )
    now = timezone.now()
    ClusterAlarm.objects.create(
        cluster=cluster,
        code="split_brain",
        raised=now,
        message="node1 and node2 both accept writes",
    )
    ClusterEvent.objects.create(
        cluster=cluster,
        kind="failover",
        severity="critical",
        at=now,
        summary="failover from node2 to node1",
        downtime_s=22.4,
        old_primary="node2",
        new_primary="node1",
    )
    return cluster


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-password-123")


def test_cluster_page_shows_alarm_fence_events_and_the_rebuild_action(client, admin, cluster):
    client.force_login(admin)
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "node1 and node2 both accept writes" in html
    assert "failover from node2 to node1" in html and "22.4 s" in html
    assert "Fenced:" in html and "accepts writes without the key" in html
    assert html.count("Rebuild as standby") == 1  # node2 only: node1 is the primary
    assert "Reveal connection strings" in html
    assert "Type <code>pg1</code> to confirm (the cluster's name)" in html


def test_remove_from_the_page_without_the_name_changes_nothing(client, admin, cluster):
    client.force_login(admin)
    response = client.post(
        f"/clusters/{cluster.pk}/jobs/", {"kind": "remove_cluster", "confirm": "wrong"}, follow=True
    )
    # In words, on the page: what was typed and what to type (the API's message names `confirm`).
    html = response.content.decode()
    assert "You typed &#x27;wrong&#x27;; type the cluster&#x27;s name, pg1, to confirm." in html
    assert "&#x27;confirm&#x27;" not in html
    assert not cluster.jobs.exists()


def test_cluster_list_shows_primary_standbys_and_last_event_in_constant_queries(
    client, user, cluster, django_assert_max_num_queries
):
    client.force_login(user)
    # session, user, its groups, clusters, statuses, lag history, wizard draft: not per row
    with django_assert_max_num_queries(7):
        html = client.get("/").content.decode()
    assert "node1" in html and "Degraded" in html
    assert "fenced" in html
    assert "failover from node2 to node1" in html
