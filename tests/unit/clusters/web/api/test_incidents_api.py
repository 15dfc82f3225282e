"""GET /api/v1/clusters/{id}/incidents/ and /api/v1/incidents/{id}/: a cluster's incidents
newest first with a cursor, and one incident told whole (every answer checked against the
OpenAPI document by this folder's conftest)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import Incident
from tests.conftest import api_client, make_user
from tests.unit.clusters.alerts.test_incidents import primary_silent_reading, promoted_reading
from tests.unit.clusters.monitoring.test_monitor_rounds import (
    failed_over_reading,
    healthy_reading,
    make_cluster,
    one_wave,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_api(client, django_user_model):
    return api_client(client, make_user(django_user_model, "watcher", "viewer"))


@pytest.fixture
def failed_over():
    cluster = make_cluster()
    one_wave([cluster], healthy_reading(position=1000))
    one_wave([cluster], primary_silent_reading())
    one_wave([cluster], failed_over_reading())
    one_wave([cluster], promoted_reading(timezone.now().isoformat()))
    return cluster


def test_an_incident_is_told_with_its_timeline_measures_events_and_next_action(
    viewer_api, failed_over
):
    listed = viewer_api.get(f"/api/v1/clusters/{failed_over.pk}/incidents/").json()
    assert listed["next"] is None and len(listed["incidents"]) == 1
    summary = listed["incidents"][0]
    assert summary["kind"] == "failover" and summary["closed"] is None
    assert (summary["old_primary"], summary["new_primary"]) == ("node1", "node2")
    assert summary["lost_bytes"] == 995 and summary["downtime_s"] is not None
    answer = viewer_api.get(f"/api/v1/incidents/{summary['id']}/")
    assert answer.status_code == 200
    found = answer.json()
    assert [m["key"] for m in found["timeline"]] == [
        "last_healthy",
        "detected",
        "promoted",
        "routed",
        "old_back",
        "rebuilt",
    ]
    assert found["timeline"][-1]["state"] == "not_yet"
    assert found["recommendation"]["code"] == "bring_back"
    assert found["recommendation"]["node"] == "node1"
    kinds = [e["kind"] for e in found["events"] if e["kind"] != "state_changed"]
    assert kinds[:2] == ["node_down", "failover"]


def test_incidents_page_newest_first_with_a_cursor_and_filters(viewer_api):
    cluster = make_cluster()
    now = timezone.now()
    made = [
        Incident.objects.create(
            cluster=cluster,
            kind="switchover" if i % 2 else "failover",
            opened=now - timedelta(hours=5 - i),
            closed=now - timedelta(hours=5 - i, minutes=-5),
            title=f"incident {i}",
        )
        for i in range(5)
    ]
    url = f"/api/v1/clusters/{cluster.pk}/incidents/"
    first = viewer_api.get(url, data={"limit": 2}).json()
    assert [i["title"] for i in first["incidents"]] == ["incident 4", "incident 3"]
    second = viewer_api.get(url, data={"limit": 2, "cursor": first["next"]}).json()
    assert [i["title"] for i in second["incidents"]] == ["incident 2", "incident 1"]
    switchovers = viewer_api.get(url, data={"kind": "switchover"}).json()["incidents"]
    assert {i["id"] for i in switchovers} == {made[1].pk, made[3].pk}
    assert viewer_api.get(url, data={"open": "true"}).json()["incidents"] == []


def test_bad_queries_and_unknown_ids_are_refused_with_their_reasons(viewer_api):
    cluster = make_cluster()
    answer = viewer_api.get(
        f"/api/v1/clusters/{cluster.pk}/incidents/", data={"kind": "boom", "open": "maybe"}
    )
    assert answer.status_code == 400
    assert set(answer.json()["field_errors"]) == {"kind", "open"}
    assert viewer_api.get("/api/v1/clusters/999999/incidents/").status_code == 404
    assert viewer_api.get("/api/v1/incidents/999999/").status_code == 404


def test_incidents_need_a_token(client):
    cluster = make_cluster()
    assert client.get(f"/api/v1/clusters/{cluster.pk}/incidents/").status_code == 401
