"""/api/v1/clusters/{id}/fast-failover/ (issue 21): the setting, each node's readiness and the
agent's decisions; admins change it, which runs setup on a cluster already built."""

import pytest
from django.utils import timezone

from clusters.models import Cluster, ClusterEvent, FenceDevice
from jobs.models import Job
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def pg() -> Cluster:
    cluster, nodes = three_node_cluster(state=Cluster.State.HEALTHY)
    FenceDevice.objects.create(
        node=nodes[1], method="redfish", options={"ip": "198.18.0.1"}, last_test_ok=True
    )
    return cluster


def url(cluster: Cluster) -> str:
    return f"/api/v1/clusters/{cluster.pk}/fast-failover/"


def test_a_viewer_reads_readiness_and_decisions(pg, client, django_user_model):
    ClusterEvent.objects.create(
        cluster=pg,
        kind="fast_failover",
        at=timezone.now(),
        summary="Fast failover declined: …",
        details={"outcome": "declined", "sentence": "node2 lags 40 MiB", "timings_ms": {}},
    )
    viewer = api_client(client, make_user(django_user_model, "vic", "viewer"))
    answer = viewer.get(url(pg)).json()
    assert answer["enabled"] is False and answer["window_minutes"] == 60
    assert answer["witness"] == "proxy" and answer["job"] is None
    nodes = {n["name"]: n for n in answer["nodes"]}
    assert nodes["node2"]["armed"] and not nodes["node1"]["armed"]
    assert nodes["node1"]["why"] == "no fence device"
    assert answer["decisions"][0]["outcome"] == "declined"
    assert viewer.put(url(pg), {"enabled": True}).status_code == 403


def test_an_admin_turns_it_on_and_gets_the_setup_job(pg, client, django_user_model):
    admin = api_client(client, make_user(django_user_model, "ada", "admin"))
    response = admin.put(url(pg), {"enabled": True, "window_minutes": 15})
    assert response.status_code == 200, response.content
    job = Job.objects.get(cluster=pg, kind="setup")
    assert response.json()["job"] == {"id": job.pk, "url": f"/api/v1/jobs/{job.pk}/"}
    pg.refresh_from_db()
    assert pg.fast_failover and pg.fast_failover_window_s == 900


@pytest.mark.parametrize(
    "body",
    [{"enabled": "yes"}, {"enabled": True, "window_minutes": 0}, {"window_minutes": 5}],
)
def test_a_bad_body_is_refused_and_changes_nothing(pg, client, django_user_model, body):
    admin = api_client(client, make_user(django_user_model, "ada", "admin"))
    assert admin.put(url(pg), body).status_code == 400
    pg.refresh_from_db()
    assert not pg.fast_failover and not Job.objects.exists()


def test_a_change_while_a_job_runs_is_refused_with_409(pg, client, django_user_model):
    Job.objects.create(cluster=pg, kind="switchover", status="running")
    admin = api_client(client, make_user(django_user_model, "ada", "admin"))
    response = admin.put(url(pg), {"enabled": True, "window_minutes": 60})
    assert response.status_code == 409 and "Not saved" in response.json()["error"]
    pg.refresh_from_db()
    assert not pg.fast_failover
