"""Node changes through the API: what is refused, with which message, and that a refusal
changes nothing (the jobs themselves run on the lab: tests/integration/test_node_changes_lab.py)."""

import pytest

from clusters.models import AuditEntry, Cluster, Node, ScannedHostKey
from jobs.models import Job
from tests.unit.clusters.web.api.test_api import _cluster_body
from tests.unit.conftest import FP

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(api, cred, scanned):
    """pg1 defined and marked as set up (the plans only read the inventory)."""
    cluster_id = api.post("/api/v1/clusters/", _cluster_body(cred.pk)).json()["id"]
    Cluster.objects.filter(pk=cluster_id).update(state=Cluster.State.HEALTHY)
    ScannedHostKey.objects.create(
        address="198.18.0.13", port=22, key_type="ssh-ed25519", base64="AAAAnew", fingerprint=FP
    )
    return Cluster.objects.get(pk=cluster_id)


def new_server(cred, **overrides) -> dict:
    return {
        "name": "node3",
        "address": "198.18.0.13",
        "ssh_port": 22,
        "credential": cred.pk,
        "host_key_fingerprint": FP,
        **overrides,
    }


def test_add_node_saves_the_server_and_queues_the_job(api, cred, running):
    response = api.post(f"/api/v1/clusters/{running.pk}/nodes/", new_server(cred))
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.kind, job.node.name, job.node.host_key_base64) == ("add_node", "node3", "AAAAnew")
    steps = list(job.steps.values_list("name", "node__name"))
    assert steps[0] == ("check_cluster", "node3")
    assert ("patroni_configure", "node1") in steps and ("haproxy", "proxy") in steps
    assert AuditEntry.objects.filter(action="node.add", params__node="node3").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "node1"}, "name", "has a node called node1"),
        ({"address": "198.18.0.11"}, "address", "already belongs"),
        ({"address": "198.18.0.13; reboot"}, "address", ""),
        ({"host_key_fingerprint": "SHA256:" + "B" * 43}, "host_key_fingerprint", "not seen"),
        ({"ssh_port": 0}, "ssh_port", ""),
        ({"name": "Node 3"}, "name", ""),
    ],
)
def test_add_node_refuses_bad_input_and_writes_nothing(
    api, cred, running, overrides, field, message
):
    response = api.post(f"/api/v1/clusters/{running.pk}/nodes/", new_server(cred, **overrides))
    assert response.status_code == 400
    assert message in " ".join(response.json()["field_errors"][field])
    assert running.nodes.count() == 3 and not Job.objects.exists()


def test_add_node_to_a_cluster_not_set_up_is_refused_and_the_node_not_kept(api, cred, running):
    Cluster.objects.filter(pk=running.pk).update(state=Cluster.State.NEW)
    response = api.post(f"/api/v1/clusters/{running.pk}/nodes/", new_server(cred))
    assert response.status_code == 400 and "not set up yet" in response.json()["error"]
    assert not Node.objects.filter(name="node3").exists()
    assert AuditEntry.objects.get(action="node.add").result.startswith("refused")


def test_replace_moves_the_name_to_the_new_server_and_keeps_the_old_address(api, cred, running):
    url = f"/api/v1/clusters/{running.pk}/nodes/node2/replace/"
    same = api.post(url, new_server(cred, address="198.18.0.12"))
    assert same.status_code == 400 and "Rebuild" in same.json()["field_errors"]["address"][0]
    response = api.post(url, new_server(cred))
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "replace_node" and job.params == {"old_address": "198.18.0.12"}
    node = Node.objects.get(cluster=running, name="node2")
    assert (node.address, node.host_key_base64) == ("198.18.0.13", "AAAAnew")
    busy = api.post(f"/api/v1/clusters/{running.pk}/nodes/node1/replace/", new_server(cred))
    assert busy.status_code == 400  # .13 is node2's server now


def test_a_refused_replace_leaves_the_node_as_it_was(api, cred, running):
    Job.objects.create(cluster=running, kind="switchover", status="running")  # one at a time
    url = f"/api/v1/clusters/{running.pk}/nodes/node2/replace/"
    response = api.post(url, new_server(cred))
    assert response.status_code == 409
    assert Node.objects.get(cluster=running, name="node2").address == "198.18.0.12"


def test_remove_node_needs_the_name_and_two_database_nodes_left(api, running):
    url = f"/api/v1/clusters/{running.pk}/jobs/"
    unconfirmed = api.post(url, {"kind": "remove_node", "node": "node2"})
    assert (
        unconfirmed.status_code == 400 and "repeat the node's name" in unconfirmed.json()["error"]
    )
    last = api.post(url, {"kind": "remove_node", "node": "node2", "confirm": "node2"})
    assert last.status_code == 400 and "add a standby first" in last.json()["error"]
    proxy = api.post(url, {"kind": "remove_node", "node": "proxy", "confirm": "proxy"})
    # A proxy is a node change too, but never the only proxy.
    assert proxy.status_code == 400 and "only proxy" in proxy.json()["error"]
    assert not Job.objects.exists()


def test_add_a_proxy_through_the_api_then_a_third_is_refused(api, cred, running):
    url = f"/api/v1/clusters/{running.pk}/nodes/"
    second = api.post(url, new_server(cred, name="proxy2", kind="proxy"))
    assert second.status_code == 202, second.json()
    job = Job.objects.get(pk=second.json()["id"])
    assert (job.kind, job.node.name, job.node.kind) == ("add_node", "proxy2", "proxy")
    assert "etcd_membership" not in set(job.steps.values_list("name", flat=True))
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    ScannedHostKey.objects.create(
        address="198.18.0.14", port=22, key_type="ssh-ed25519", base64="AAAAnew", fingerprint=FP
    )
    third = api.post(url, new_server(cred, name="proxy3", address="198.18.0.14", kind="proxy"))
    assert third.status_code == 400 and "at most 2" in third.json()["error"], third.json()
    assert not Node.objects.filter(name="proxy3").exists()


def test_remove_node_keeps_the_name_in_the_job_for_after_the_node_is_gone(api, cred, running):
    Node.objects.create(
        cluster=running,
        name="node3",
        address="198.18.0.13",
        credential=cred,
        kind="database",
        host_key_type="ssh-ed25519",
        host_key_base64="AAAAnew",
        host_key_fingerprint=FP,
    )
    url = f"/api/v1/clusters/{running.pk}/jobs/"
    response = api.post(url, {"kind": "remove_node", "node": "node3", "confirm": "node3"})
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.params["node_name"] == "node3"
    steps = list(job.steps.values_list("name", "node__name"))
    assert ("patroni_configure", "node3") not in steps and ("stop_node", "node3") in steps
