"""The REST API: token auth, JSON errors with field errors, the job log cursor."""

import pytest
from django.utils import timezone

from clusters.models import AuditEntry, Cluster, Credential, Node
from jobs.models import Job, JobStatus, LogLine
from tests.conftest import api_client, make_user
from tests.unit.conftest import FP

pytestmark = pytest.mark.django_db


def test_api_refuses_a_request_without_a_token(client):
    response = client.get("/api/v1/clusters/")
    assert response.status_code == 401
    assert "Authorization: Token" in response.json()["error"]


def test_api_refuses_a_wrong_token(client):
    response = client.get("/api/v1/clusters/", HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401


def test_create_api_token_command_prints_a_working_token(user, client, capsys):
    from django.core.management import call_command

    call_command("create_api_token", user.username)
    token = capsys.readouterr().out.strip()
    assert client.get("/api/v1/clusters/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_invalid_json_is_a_clear_400(api):
    response = api.post("/api/v1/clusters/", data="{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_credential_needs_a_key_or_a_password_and_stores_nothing(api):
    response = api.post("/api/v1/credentials/", {"name": "x", "username": "root"})
    body = response.json()
    assert response.status_code == 400
    assert "either a private key or a password" in str(body["field_errors"])
    assert not Credential.objects.exists()


def test_credential_with_shell_metacharacters_in_username_is_refused(api):
    response = api.post(
        "/api/v1/credentials/", {"name": "x", "username": "root; rm -rf /", "password": "pw-123456"}
    )
    assert response.status_code == 400
    assert "username" in response.json()["field_errors"]


def test_credential_is_created_and_its_secret_never_answered(api):
    response = api.post(
        "/api/v1/credentials/", {"name": "lab", "username": "hcops", "password": "very-secret-pw"}
    )
    assert response.status_code == 201
    assert response.json() == {
        "id": response.json()["id"],
        "name": "lab",
        "username": "hcops",
        "kind": "password",
    }
    listing = api.get("/api/v1/credentials/").content.decode()
    assert "very-secret-pw" not in listing
    entry = AuditEntry.objects.get(action="credential.create")
    assert "very-secret-pw" not in str(entry.params)


def _cluster_body(cred_id: int, **overrides) -> dict:
    nodes = [
        {
            "name": "node1",
            "address": "198.18.0.11",
            "ssh_port": 22,
            "credential": cred_id,
            "host_key_fingerprint": FP,
            "kind": "database",
        },
        {
            "name": "node2",
            "address": "198.18.0.12",
            "ssh_port": 22,
            "credential": cred_id,
            "host_key_fingerprint": FP,
            "kind": "database",
        },
        {
            "name": "proxy",
            "address": "198.18.0.10",
            "ssh_port": 22,
            "credential": cred_id,
            "host_key_fingerprint": FP,
            "kind": "proxy",
        },
    ]
    return {
        "name": "pg1",
        "replication": "async",
        "nodes": nodes,
        "client_networks": ["198.18.0.0/24"],
        "failover_profile": "balanced",
        **overrides,
    }


def test_cluster_with_field_errors_names_each_field_and_creates_nothing(api, cred, scanned):
    body = _cluster_body(cred.pk, name="Bad Name!", client_networks=["10.0.0.1/8"])
    body["nodes"][1]["address"] = "$(reboot)"
    body["nodes"][2]["ssh_port"] = 70000
    response = api.post("/api/v1/clusters/", body)
    errors = response.json()["field_errors"]
    assert response.status_code == 400
    assert {"name", "client_networks[0]", "nodes[1].address", "nodes[2].ssh_port"} <= set(errors)
    assert not Cluster.objects.exists()


def test_cluster_needs_two_database_nodes_and_one_proxy(api, cred, scanned):
    body = _cluster_body(cred.pk)
    body["nodes"] = body["nodes"][:1]
    response = api.post("/api/v1/clusters/", body)
    assert response.status_code == 400
    assert "at least two database nodes" in str(response.json()["field_errors"]["nodes"])


def test_cluster_refuses_a_fingerprint_that_was_never_scanned(api, cred):
    response = api.post("/api/v1/clusters/", _cluster_body(cred.pk))
    assert response.status_code == 400
    assert "was not seen at this address" in str(response.json()["field_errors"])


def test_cluster_refuses_duplicate_addresses(api, cred, scanned):
    body = _cluster_body(cred.pk)
    body["nodes"][1]["address"] = "198.18.0.11"
    response = api.post("/api/v1/clusters/", body)
    assert "Two nodes have this address" in str(response.json()["field_errors"])


def test_cluster_is_created_with_pinned_keys_and_read_back(api, cred, scanned):
    response = api.post(
        "/api/v1/clusters/", _cluster_body(cred.pk, database={"name": "app", "user": "app"})
    )
    assert response.status_code == 201, response.json()
    cluster_id = response.json()["id"]
    assert Node.objects.get(name="node1").host_key_base64 == "AAAAC3NzaC1lZDI1NTE5AAAAIExample"
    detail = api.get(f"/api/v1/clusters/{cluster_id}/").json()
    assert detail["state"] == "new"
    assert [n["name"] for n in detail["nodes"]] == ["node1", "node2", "proxy"]
    assert detail["proxy"]["endpoints"] == {"rw": "198.18.0.10:5432", "ro": "198.18.0.10:5433"}
    assert api.get("/api/v1/clusters/").json() == [
        {
            "id": cluster_id,
            "name": "pg1",
            "state": "new",
            "state_reasons": [],
            "state_since": None,
            "primary": None,
        }
    ]


def test_job_start_refuses_unknown_kind_and_node(api, cred, scanned):
    cluster_id = api.post("/api/v1/clusters/", _cluster_body(cred.pk)).json()["id"]
    bad_kind = api.post(f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": "explode"})
    assert bad_kind.status_code == 400 and "unknown job kind" in bad_kind.json()["error"]
    bad_node = api.post(
        f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": "preflight", "node": "nope"}
    )
    assert bad_node.status_code == 400 and "node" in bad_node.json()["field_errors"]
    started = api.post(f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": "preflight"})
    assert started.status_code == 202
    assert started.json()["url"] == f"/api/v1/jobs/{started.json()['id']}/"


def test_host_key_scan_validates_before_asking_a_worker(api):
    response = api.post("/api/v1/host-keys/scan/", {"address": "a b;c", "port": "22"})
    assert response.status_code == 400
    assert set(response.json()["field_errors"]) == {"address", "port"}


def _job_with_log(lines: int, status: str) -> Job:
    cluster = Cluster.objects.create(name="c1")
    job = Job.objects.create(kind="preflight", cluster=cluster, mutating=False, status=status)
    LogLine.objects.bulk_create(
        LogLine(job=job, seq=i, ts=timezone.now(), stream="stdout", host="node1", text=f"l{i}")
        for i in range(1, lines + 1)
    )
    return job


def test_log_endpoint_pages_with_a_cursor_and_says_done_at_the_end(api):
    job = _job_with_log(1500, JobStatus.SUCCEEDED)
    first = api.get(f"/api/v1/jobs/{job.pk}/log/?after=0").json()
    assert len(first["lines"]) == 1000 and first["next"] == 1000 and first["done"] is False
    second = api.get(f"/api/v1/jobs/{job.pk}/log/?after={first['next']}").json()
    assert [ln["seq"] for ln in second["lines"]] == list(range(1001, 1501))
    assert second["done"] is True
    assert api.get(f"/api/v1/jobs/{job.pk}/log/?after=1500").json() == {
        "lines": [],
        "next": 1500,
        "done": True,
    }


def test_log_of_a_running_job_is_never_done(api):
    job = _job_with_log(3, JobStatus.RUNNING)
    body = api.get(f"/api/v1/jobs/{job.pk}/log/?after=3").json()
    assert body == {"lines": [], "next": 3, "done": False}


def test_log_endpoint_refuses_a_bad_cursor(api):
    job = _job_with_log(1, JobStatus.RUNNING)
    assert api.get(f"/api/v1/jobs/{job.pk}/log/?after=-1").status_code == 400


def test_log_page_poller_stops_when_the_job_has_ended(client, user):
    client.force_login(user)
    running = _job_with_log(2, JobStatus.RUNNING)
    html = client.get(f"/jobs/{running.pk}/log/?after=0", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in html and "after=2" in html
    Job.objects.filter(pk=running.pk).update(status=JobStatus.SUCCEEDED)
    html = client.get(f"/jobs/{running.pk}/log/?after=2", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html and "end of log" in html


def test_pages_require_login(client):
    for url in ("/", "/jobs/", "/credentials/", "/clusters/new/"):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url


def test_cluster_refuses_a_proxy_that_is_also_a_database_node(api, cred, scanned):
    body = _cluster_body(cred.pk)
    body["nodes"][2]["address"] = "198.18.0.11"  # the proxy on node1's server
    response = api.post("/api/v1/clusters/", body)
    assert response.status_code == 400
    assert "Two nodes have this address" in str(response.json()["field_errors"]["nodes[2].address"])
    assert not Cluster.objects.exists()


def test_only_a_database_node_can_be_the_master(api, cred, scanned):
    body = _cluster_body(cred.pk)
    body["nodes"][2]["master"] = True
    response = api.post("/api/v1/clusters/", body)
    assert "Only a database node can be the master" in str(response.json()["field_errors"])


def test_first_database_node_is_master_unless_another_is_marked(api, cred, scanned):
    body = _cluster_body(cred.pk)
    body["nodes"][1]["master"] = True
    assert api.post("/api/v1/clusters/", body).status_code == 201
    assert list(Node.objects.filter(bootstrap_primary=True).values_list("name", flat=True)) == [
        "node2"
    ]


def test_remove_cluster_needs_the_name_repeated(api, cred, scanned):
    cluster_id = api.post("/api/v1/clusters/", _cluster_body(cred.pk)).json()["id"]
    response = api.post(
        f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": "remove_cluster", "confirm": "pg2"}
    )
    assert response.status_code == 400
    assert "repeat the cluster's name" in response.json()["error"]


def test_connection_strings_are_for_admins_only_and_every_read_is_audited(
    api, cred, scanned, client, django_user_model
):
    cluster_id = api.post("/api/v1/clusters/", _cluster_body(cred.pk)).json()["id"]
    operator = api_client(client, make_user(django_user_model, "op", "operator"))
    response = operator.get(f"/api/v1/clusters/{cluster_id}/connection/")
    assert response.status_code == 403
    entry = AuditEntry.objects.get(action="cluster.connection.read")
    assert entry.result.startswith("refused")
