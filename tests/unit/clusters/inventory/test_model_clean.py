"""The models run the validators the forms and the API run (issue 17): the Django admin saved
inventory that bypassed them (a database user that is SQL, a host name as a node's address)."""

import pytest
from django.core.exceptions import ValidationError

from clusters.models import Cluster, Credential, Node, ScannedHostKey
from tests.unit.clusters.web.bad_input_builders import FP, PLAIN_KEY

pytestmark = pytest.mark.django_db


def _errors(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "pg1;reboot", "lower-case letters"),
        ("name", "pg1\n", "lower-case letters"),
        ("database_user", "app; COPY x TO PROGRAM 'id'", "lower-case letters, digits"),
        ("database_user", "postgres", "uses itself"),
        ("database_name", "app\n", "lower-case letters, digits"),
        ("client_networks", ["0.0.0.0/0"], "every address on the internet"),
        ("client_networks", ["10.0.0.1/8"], "has host bits set"),
        ("apt_proxy", "http://user:pw@cache:3142", "http://host:port"),
        ("application_unit", "sshd.service", "run by HA Center or the system"),
        ("http_frontends", [{"listen_port": 5432, "app_port": 80}], "Port 5432 is taken"),
        (
            "http_frontends",
            [{"listen_port": 80, "app_port": 8080, "check_path": "/x\n"}],
            "Give a path",
        ),
    ],
)
def test_a_cluster_that_the_forms_refuse_does_not_validate(field, value, message):
    cluster = Cluster(name="pg1", database_name="app", database_user="app")
    setattr(cluster, field, value)
    errors = _errors(cluster)
    assert message in " ".join(errors[field]), errors


def test_a_valid_cluster_validates():
    Cluster(name="pg1", database_name="app", database_user="app", client_networks=[]).full_clean()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "node1`id`", "lower-case letters"),
        ("address", "db1.example.com", "host names are not accepted"),
        ("address", "198.18.0.11\n", "host names are not accepted"),
        ("address", "127.0.0.1", "loopback"),
        ("ssh_port", 0, "1 to 65535"),
        ("host_key_fingerprint", "MD5:aa", "SHA256"),
    ],
)
def test_a_node_that_the_forms_refuse_does_not_validate(cred, field, value, message):
    cluster = Cluster.objects.create(name="pg1")
    node = Node(
        cluster=cluster,
        name="node1",
        address="198.18.0.11",
        credential=cred,
        kind="database",
        host_key_type="ssh-ed25519",
        host_key_base64="AAAA",
        host_key_fingerprint=FP,
    )
    node.full_clean()
    setattr(node, field, value)
    assert message in " ".join(_errors(node)[field])


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "lab; rm -rf /"}, "name", "Use 1–100 letters"),
        ({"username": "root && reboot"}, "username", "Unix user"),
        ({"password": "pw\nreboot"}, "password", "Control characters"),
        ({"password": "", "private_key": "not a key"}, "private_key", "not a private key"),
        ({"private_key": PLAIN_KEY}, "__all__", "either a private key or a password"),
        ({"passphrase": "x"}, "passphrase", "only goes with a private key"),
    ],
)
def test_a_credential_that_the_forms_refuse_does_not_validate(changes, field, message):
    credential = Credential(name="lab", username="root", password="pw-123456")
    credential.full_clean()
    for key, value in changes.items():
        setattr(credential, key, value)
    assert message in " ".join(_errors(credential)[field])


def test_the_django_admin_refuses_a_cluster_the_forms_refuse(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root-password-123")
    client.force_login(root)
    form = {
        "name": "pg1",
        "state": "new",
        "replication": "async",
        "failover_profile": "balanced",
        "postgres_version": "15",
        "client_networks": "[]",
        "database_name": "app",
        "database_user": "app; COPY (SELECT 1) TO PROGRAM 'id'",
        "http_frontends": "[]",
        "adopted_from": "{}",
        "origin": "built",
        "patroni_layout": "{}",
        "config_findings": "[]",
        "fast_failover_window_s": "3600",
        "nodes-TOTAL_FORMS": "0",
        "nodes-INITIAL_FORMS": "0",
        "nodes-MIN_NUM_FORMS": "0",
        "nodes-MAX_NUM_FORMS": "1000",
    }
    response = client.post("/admin/clusters/cluster/add/", form)
    assert response.status_code == 200  # the form again, with the error
    assert "lower-case letters, digits and underscores" in response.content.decode()
    assert not Cluster.objects.exists()
    form["database_user"] = "app"
    response = client.post("/admin/clusters/cluster/add/", form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert Cluster.objects.get().database_user == "app"


def test_the_django_admin_refuses_a_credential_the_forms_refuse(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root-password-123")
    client.force_login(root)
    form = {"name": "lab", "username": "root && reboot", "password": "pw-123456"}
    response = client.post("/admin/clusters/credential/add/", form)
    assert response.status_code == 200 and not Credential.objects.exists()
    # Its secrets are kept out of Django's error reports, as on the credential pages.
    assert set(response.wsgi_request.sensitive_post_parameters) >= {"password", "private_key"}


def test_a_scanned_host_key_the_scans_refuse_does_not_validate():
    key = ScannedHostKey(
        address="db1.example.com", port=22, key_type="ssh-ed25519", base64="AAAA", fingerprint="x"
    )
    errors = _errors(key)
    assert "host names are not accepted" in " ".join(errors["address"])
    assert "SHA256" in " ".join(errors["fingerprint"])
