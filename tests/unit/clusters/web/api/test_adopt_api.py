"""POST /api/v1/clusters/adopt/: what it writes for a valid request (an adopted cluster, pinned
nodes, the REST password encrypted and never answered, an adopt job), and that bad input gets a
clear 400 and writes nothing."""

import pytest

from clusters.models import AuditEntry, Cluster, ClusterSecret, Node
from jobs.models import Job
from tests.conftest import api_client, make_user
from tests.unit.conftest import FP

pytestmark = pytest.mark.django_db

URL = "/api/v1/clusters/adopt/"
REST_PASSWORD = "Rest-pass-1"


def _body(cred_id: int, **overrides) -> dict:
    nodes = [
        {
            "name": name,
            "address": f"198.18.0.{last}",
            "credential": cred_id,
            "host_key_fingerprint": FP,
            "kind": "database",
        }
        for name, last in (("node1", 11), ("node2", 12))
    ]
    return {
        "nodes": nodes,
        "rest_api": {"username": "admin", "password": REST_PASSWORD},
        **overrides,
    }


def _nothing_written() -> bool:
    return not Cluster.objects.exists() and not Node.objects.exists() and not Job.objects.exists()


def test_adopt_defines_the_cluster_and_starts_the_adopt_job(api, cred, scanned):
    response = api.post(URL, _body(cred.pk))
    assert response.status_code == 202, response.json()
    body = response.json()
    cluster = Cluster.objects.get(pk=body["id"])
    assert cluster.origin == Cluster.Origin.ADOPTED
    # No name given: a placeholder the adopt job replaces with Patroni's scope.
    assert cluster.name == "adopted-node1"
    assert cluster.patroni_layout == {"rest_user": "admin", "placeholder_name": True}
    assert [n.name for n in cluster.nodes.order_by("name")] == ["node1", "node2"]
    assert Node.objects.get(name="node1").host_key_base64 == "AAAAC3NzaC1lZDI1NTE5AAAAIExample"
    assert cluster.secrets.get(name=ClusterSecret.Name.REST_API).value == REST_PASSWORD
    job = Job.objects.get(pk=body["job"]["id"])
    assert (job.kind, job.cluster_id) == ("adopt", cluster.pk)
    assert REST_PASSWORD not in response.content.decode()
    assert REST_PASSWORD not in str(AuditEntry.objects.get(action="cluster.adopt").params)


def test_a_name_the_admin_gives_is_kept_and_placeholders_do_not_collide(api, cred, scanned):
    named = api.post(URL, _body(cred.pk, name="shop"))
    assert named.status_code == 202, named.json()
    assert Cluster.objects.get(pk=named.json()["id"]).patroni_layout == {"rest_user": "admin"}
    Cluster.objects.filter(name="shop").update(name="adopted-node1")  # as if once adopted so
    Node.objects.all().delete()  # its servers free again
    second = api.post(URL, _body(cred.pk))
    assert second.status_code == 202, second.json()
    assert Cluster.objects.get(pk=second.json()["id"]).name == "adopted-node1-2"


@pytest.mark.parametrize(
    ("case", "overrides", "field"),
    [
        ("no nodes", {"nodes": []}, "nodes"),
        ("nodes not a list", {"nodes": "node1"}, "nodes"),
        ("a user without a password", {"rest_api": {"username": "admin"}}, "rest_api"),
        ("rest_api not an object", {"rest_api": "admin:pw"}, "rest_api"),
        (
            "a password that is not a string",
            {"rest_api": {"username": "a", "password": 5}},
            "rest_api.password",
        ),
        ("a bad name", {"name": "Shop; rm -rf /"}, "name"),
    ],
)
def test_bad_adopt_input_is_a_clear_400_and_writes_nothing(
    api, cred, scanned, case, overrides, field
):
    response = api.post(URL, _body(cred.pk, **overrides))
    assert response.status_code == 400, case
    assert field in response.json()["field_errors"], (case, response.json())
    assert _nothing_written(), case


def test_adopt_needs_database_nodes_a_single_proxy_and_distinct_names(api, cred, scanned):
    body = _body(cred.pk)
    for node in body["nodes"]:
        node["kind"] = "proxy"
    response = api.post(URL, body)
    assert response.status_code == 400
    errors = " ".join(response.json()["field_errors"]["nodes"])
    assert "database nodes" in errors and "one proxy" in errors
    body = _body(cred.pk)
    body["nodes"][1]["name"] = "node1"
    response = api.post(URL, body)
    assert "same name" in " ".join(response.json()["field_errors"]["nodes"])
    assert _nothing_written()


def test_adopt_refuses_an_unconfirmed_host_key_and_a_server_of_another_cluster(api, cred, scanned):
    body = _body(cred.pk)
    body["nodes"][0]["host_key_fingerprint"] = "SHA256:" + "B" * 43
    response = api.post(URL, body)
    assert "nodes[0].host_key_fingerprint" in response.json()["field_errors"]
    assert _nothing_written()
    assert api.post(URL, _body(cred.pk, name="one")).status_code == 202
    again = api.post(URL, _body(cred.pk, name="two"))
    assert again.status_code == 400
    assert "already belongs" in str(again.json()["field_errors"]["nodes[0].address"])
    assert list(Cluster.objects.values_list("name", flat=True)) == ["one"]


def test_an_existing_cluster_name_is_refused(api, cred, scanned):
    Cluster.objects.create(name="shop")
    response = api.post(URL, _body(cred.pk, name="shop"))
    assert response.status_code == 400 and "name" in response.json()["field_errors"]
    assert Cluster.objects.count() == 1


def test_only_an_admin_adopts(client, django_user_model, cred, scanned):
    operator = api_client(client, make_user(django_user_model, "op", "operator"))
    response = operator.post(URL, _body(cred.pk))
    assert response.status_code == 403
    assert _nothing_written()
