"""Parameter changes through the API: the last reading, a preview, the confirmed job; refusals
name each parameter and change nothing; the audit trail has names and values, never a
password."""

import json

import pytest
from django.utils import timezone

from clusters.models import ApiToken, AuditEntry, Cluster
from jobs.models import Job
from tests.unit.clusters.web.parameter_snapshot import SNAPSHOT
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db
URL = "/api/v1/clusters/{}/parameters/"


@pytest.fixture
def cluster() -> Cluster:
    cluster, _ = three_node_cluster(
        state=Cluster.State.HEALTHY, pg_parameters=SNAPSHOT, pg_parameters_read=timezone.now()
    )
    return cluster


def test_get_answers_each_nodes_values_and_what_waits_for_a_restart(api, cluster):
    answer = api.get(URL.format(cluster.pk)).json()
    assert answer["primary"] == "node1"
    assert answer["nodes"]["node2"]["shared_buffers"] == {
        "setting": "16384",
        "pending_restart": True,
    }
    assert answer["pending_restart"] == [{"node": "node2", "name": "shared_buffers"}]
    assert "password" not in json.dumps(answer)


def test_post_without_confirm_is_the_preview_and_starts_nothing(api, cluster):
    response = api.post(URL.format(cluster.pk), {"parameters": {"shared_buffers": "256MB"}})
    assert response.status_code == 200, response.json()
    preview = response.json()
    assert preview["restart"] is True
    assert preview["plan"].startswith("restart needed: rolling restart, standbys first")
    assert preview["parameters"][0]["expected"] == "32768"
    assert not Job.objects.exists()


def test_confirmed_change_starts_the_job_with_the_rolling_restart(api, cluster):
    body = {"parameters": {"shared_buffers": "256MB", "work_mem": "8MB"}, "confirm": True}
    response = api.post(URL.format(cluster.pk), {**body, "restart": True})
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "change_parameters"
    assert job.params == {
        "parameters": {"shared_buffers": "256MB", "work_mem": "8MB"},
        "restart": True,
    }
    assert [s.name for s in job.steps.all()] == [
        "validate",
        "apply",
        "wait_applied",
        "restart_standbys",
        "switchover",
        "restart_old_primary",
        "verify",
    ]
    entry = AuditEntry.objects.get(action="parameters.change")
    assert entry.params["shared_buffers"] == "256MB" and entry.params["job"] == job.pk


def test_a_confirmation_that_does_not_match_the_preview_is_refused(api, cluster):
    body = {"parameters": {"shared_buffers": "256MB"}, "confirm": True, "restart": False}
    response = api.post(URL.format(cluster.pk), body)
    assert response.status_code == 400
    assert "needs a restart" in response.json()["field_errors"]["restart"][0]
    assert not Job.objects.exists()


def test_reload_only_change_has_no_restart_steps(api, cluster):
    body = {"parameters": {"work_mem": "8MB"}, "confirm": True, "restart": False}
    response = api.post(URL.format(cluster.pk), body)
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert [s.name for s in job.steps.all()] == ["validate", "apply", "wait_applied", "verify"]


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        ({"wal_level": "logical"}, "wal_level", "refused: HA Center sets it"),
        ({"port": 5433}, "port", "Patroni manages it"),
        ({"shared_buffers": "256mb"}, "shared_buffers", "valid units"),
        ({"work_mem": "3TB"}, "work_mem", "outside"),
        ({"no_such": "1"}, "no_such", "no such parameter"),
        ({}, "parameters", "at least one"),
    ],
)
def test_refusals_name_the_parameter_and_change_nothing(api, cluster, parameters, field, message):
    body = {"parameters": parameters, "confirm": True, "restart": True}
    response = api.post(URL.format(cluster.pk), body)
    assert response.status_code == 400
    assert message in response.json()["field_errors"][field][0]
    assert not Job.objects.exists()


def test_no_reading_yet_asks_for_one(api, cluster):
    Cluster.objects.filter(pk=cluster.pk).update(pg_parameters={}, pg_parameters_read=None)
    response = api.post(URL.format(cluster.pk), {"parameters": {"work_mem": "8MB"}})
    assert response.status_code == 400
    assert "Read the cluster's parameters first" in response.json()["error"]


def test_a_restart_change_on_a_degraded_cluster_is_refused(api, cluster):
    Cluster.objects.filter(pk=cluster.pk).update(state=Cluster.State.DEGRADED)
    body = {"parameters": {"shared_buffers": "256MB"}, "confirm": True, "restart": True}
    response = api.post(URL.format(cluster.pk), body)
    assert response.status_code == 400
    assert "needs a healthy cluster" in response.json()["error"]
    # A reload still runs on a degraded cluster.
    body = {"parameters": {"work_mem": "8MB"}, "confirm": True, "restart": False}
    assert api.post(URL.format(cluster.pk), body).status_code == 202


def test_patch_does_what_post_does(client, user, cluster):
    token = ApiToken.issue(user)
    response = client.patch(
        URL.format(cluster.pk),
        data=json.dumps({"parameters": {"work_mem": "8MB"}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["plan"].startswith("reload")
