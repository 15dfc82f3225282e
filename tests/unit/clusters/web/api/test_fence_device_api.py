"""/api/v1/clusters/{id}/nodes/{name}/fence/ (issue 21 part 1): admins define a node's fence
device, operators test it, nobody reads its secret back."""

import json

import pytest

from clusters.models import AuditEntry, FenceDevice
from jobs.models import Job
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db
SECRET = "bmc-api-secret-5521"
BODY = {
    "method": "redfish",
    "options": {"ip": "198.18.0.1", "ipport": 8443, "username": "admin", "ssl_insecure": True},
    "secret": SECRET,
}


@pytest.fixture
def pg():
    return three_node_cluster()[0]


@pytest.fixture
def admin(client, django_user_model):
    return api_client(client, make_user(django_user_model, "ada", "admin"))


@pytest.fixture
def operator(client, django_user_model):
    return api_client(client, make_user(django_user_model, "olga", "operator"))


def url(cluster, node="node2", tail=""):
    return f"/api/v1/clusters/{cluster.pk}/nodes/{node}/fence/{tail}"


def test_an_admin_defines_a_device_and_its_secret_is_never_answered(pg, admin):
    response = admin.put(url(pg), BODY)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["method"] == "redfish" and answer["secret_set"] is True
    assert answer["witness"] == "proxy" and answer["agent"] == "fence_redfish"
    assert answer["last_test"] == {"at": None, "ok": None, "power": None, "result": ""}
    assert SECRET not in response.content.decode()
    assert SECRET not in admin.get(url(pg)).content.decode()
    assert FenceDevice.objects.get(node__name="node2").secret == SECRET
    entry = AuditEntry.objects.get(action="fence_device.set")
    assert entry.result == "ok" and SECRET not in json.dumps(entry.params)


def test_bad_options_are_refused_by_field_and_nothing_is_saved(pg, admin):
    body = {**BODY, "options": {"ip": "bmc;reboot", "username": "admin"}}
    response = admin.put(url(pg), body)
    assert response.status_code == 400
    assert "options.ip" in response.json()["field_errors"]
    assert not FenceDevice.objects.exists()
    response = admin.put(url(pg, "proxy"), BODY)
    assert response.status_code == 400 and not FenceDevice.objects.exists()


def test_an_operator_may_test_but_not_change(pg, admin, operator):
    assert operator.put(url(pg), BODY).status_code == 403
    assert admin.get(url(pg)).status_code == 404  # no device yet
    admin.put(url(pg), BODY)
    response = operator.post(url(pg, tail="test/"))
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.kind, job.node.name, job.mutating) == ("fence_test", "node2", False)
    assert AuditEntry.objects.filter(action="fence_device.test", result="ok").exists()


def test_testing_a_node_without_a_device_is_a_404(pg, operator):
    assert operator.post(url(pg, tail="test/")).status_code == 404
    assert not Job.objects.exists()


def test_an_admin_removes_a_device(pg, admin, operator):
    admin.put(url(pg), BODY)
    assert operator.delete(url(pg)).status_code == 403
    response = admin.delete(url(pg))
    assert response.status_code == 200 and SECRET not in response.content.decode()
    assert not FenceDevice.objects.exists()
