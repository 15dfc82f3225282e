"""Client TLS per cluster (the API, the wizard, the quick form, export/import, the cluster
page), the CA download, and connection strings that verify the server."""

import json

import pytest

from clusters.inventory import pki
from clusters.inventory.connection_strings import cluster_connection_strings
from clusters.inventory.export_import import inventory_export, inventory_import
from clusters.models import Cluster, ClusterSecret
from clusters.web import wizard
from tests.conftest import api_client, make_user
from tests.unit.clusters.inventory.test_export_import import host_key
from tests.unit.clusters.web.api.test_api import _cluster_body
from tests.unit.clusters.web.test_wizard import STEP1
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

PEM = "application/x-pem-file"


def with_ca(cluster: Cluster, *, active: bool = True) -> str:
    ca = pki.new_authority(cluster.name)
    cluster.ca_certificate, cluster.ca_key = ca.certificate, ca.key
    cluster.save()
    cluster.nodes.update(tls_active=active)
    return ca.certificate


# --- the option --------------------------------------------------------------------------


def test_new_clusters_require_client_tls_unless_told_otherwise(api, cred, scanned):
    created = api.post("/api/v1/clusters/", _cluster_body(cred.pk)).json()
    assert created["require_client_tls"] is True and created["tls"] is None
    assert Cluster.objects.get(pk=created["id"]).require_client_tls is True
    Cluster.objects.all().delete()
    body = _cluster_body(cred.pk, require_client_tls=False)
    created = api.post("/api/v1/clusters/", body).json()
    assert created["require_client_tls"] is False
    assert api.get(f"/api/v1/clusters/{created['id']}/").json()["require_client_tls"] is False


def test_the_wizard_offers_client_tls_ticked_and_keeps_the_choice(client, django_user_model):
    admin = make_user(django_user_model, "boss", "admin")
    client.force_login(admin)
    page = client.get("/wizard/1/").content.decode()
    ticked = 'id="f-client-tls" name="require_client_tls" checked'
    assert ticked in page
    draft = wizard.draft_get(user=admin)
    wizard.wizard_cluster_save(draft=draft, fields=dict(STEP1, require_client_tls="on"))
    assert wizard.cluster_data(draft.cluster_fields)["require_client_tls"] is True
    # An unticked box is not posted at all.
    wizard.wizard_cluster_save(draft=draft, fields=STEP1)
    assert wizard.cluster_data(draft.cluster_fields)["require_client_tls"] is False
    assert ticked not in client.get("/wizard/1/").content.decode()
    # A draft kept from before the box existed counts as ticked.
    assert wizard.cluster_data({"name": "pg1"})["require_client_tls"] is True


def test_the_quick_form_has_the_box_ticked(client, django_user_model):
    client.force_login(make_user(django_user_model, "boss", "admin"))
    page = client.get("/clusters/new/").content.decode()
    assert '<input type="checkbox" name="require_client_tls" checked>' in page


def test_export_and_import_keep_the_choice_but_no_certificate(cred):
    cluster = Cluster.objects.create(name="pg1", require_client_tls=False)
    for i, (name, kind) in enumerate(
        (("node1", "database"), ("node2", "database"), ("p", "proxy"))
    ):
        key_type, blob, fp = host_key()
        cluster.nodes.create(
            name=name,
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type=key_type,
            host_key_base64=blob,
            host_key_fingerprint=fp,
        )
    with_ca(cluster)
    exported = inventory_export()
    assert exported["clusters"][0]["require_client_tls"] is False
    assert "BEGIN" not in json.dumps(exported)  # neither the CA nor any key goes into a dump
    Cluster.objects.all().delete()
    (imported,) = inventory_import(data=exported)
    assert imported.require_client_tls is False and not imported.ca_certificate
    # An export from before the option: the cluster requires TLS, as every new one does.
    Cluster.objects.all().delete()
    del exported["clusters"][0]["require_client_tls"]
    (imported,) = inventory_import(data=exported)
    assert imported.require_client_tls is True


# --- the CA download ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_downloads_the_ca_from_the_page_and_the_api(client, django_user_model, role):
    cluster, _ = three_node_cluster()
    ca = with_ca(cluster)
    user = make_user(django_user_model, f"u-{role}", role)
    client.force_login(user)
    page = client.get(f"/clusters/{cluster.pk}/ca.crt")
    assert page.status_code == 200 and page["Content-Type"] == PEM
    assert page.content.decode() == ca
    assert 'filename="hacenter-pg1-ca.crt"' in page["Content-Disposition"]
    answer = api_client(client, user).get(f"/api/v1/clusters/{cluster.pk}/ca/")
    assert answer.status_code == 200 and answer["Content-Type"] == PEM
    assert answer.content.decode() == ca
    assert "PRIVATE KEY" not in page.content.decode() + answer.content.decode()


def test_the_ca_is_for_logged_in_users_with_a_role_only(client, django_user_model):
    cluster, _ = three_node_cluster()
    with_ca(cluster)
    assert client.get(f"/clusters/{cluster.pk}/ca.crt").status_code == 302  # to the login page
    assert client.get(f"/api/v1/clusters/{cluster.pk}/ca/").status_code == 401
    nobody = make_user(django_user_model, "nobody", None)
    client.force_login(nobody)
    assert client.get(f"/clusters/{cluster.pk}/ca.crt").status_code == 403
    assert api_client(client, nobody).get(f"/api/v1/clusters/{cluster.pk}/ca/").status_code == 403


def test_a_cluster_without_a_ca_answers_404(client, api, django_user_model):
    cluster, _ = three_node_cluster()
    answer = api.get(f"/api/v1/clusters/{cluster.pk}/ca/")
    assert answer.status_code == 404 and "no certificate authority" in answer.json()["error"]
    assert api.get("/api/v1/clusters/999/ca/").status_code == 404
    client.force_login(make_user(django_user_model, "v", "viewer"))
    assert client.get(f"/clusters/{cluster.pk}/ca.crt").status_code == 404


def test_the_cluster_answer_and_page_describe_the_ca_without_its_key(api, client, user):
    cluster, _ = three_node_cluster()
    with_ca(cluster)
    detail = api.get(f"/api/v1/clusters/{cluster.pk}/").json()
    info = pki.describe(cluster.ca_certificate)
    assert detail["tls"] == {
        "ca_url": f"/api/v1/clusters/{cluster.pk}/ca/",
        "ca_file": "hacenter-pg1-ca.crt",
        "fingerprint_sha256": info.fingerprint_sha256,
        "not_after": info.not_after.isoformat(),
        "verified": True,
    }
    client.force_login(user)
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert f'href="/clusters/{cluster.pk}/ca.crt"' in page
    assert "clients must use TLS" in page and info.fingerprint_sha256 in page
    for body in (json.dumps(detail), page):
        assert "PRIVATE KEY" not in body
        assert cluster.ca_key.splitlines()[1] not in body


# --- connection strings ------------------------------------------------------------------


def _with_app(**fields) -> Cluster:
    cluster, _ = three_node_cluster(database_name="app", database_user="app", **fields)
    ClusterSecret.objects.create(cluster=cluster, name="application", value="pw-Abc_123")
    return cluster


def test_connection_strings_verify_the_server_with_the_downloaded_ca():
    cluster = _with_app()
    with_ca(cluster)
    strings = cluster_connection_strings(cluster)
    tail = "sslmode=verify-full&sslrootcert=hacenter-pg1-ca.crt"
    assert strings["read_write"] == f"postgresql://app:pw-Abc_123@198.18.0.13:5432/app?{tail}"
    assert strings["read_only"] == f"postgresql://app:pw-Abc_123@198.18.0.13:5433/app?{tail}"
    assert strings["multi_host"] == (
        "postgresql://app:pw-Abc_123@198.18.0.11:5432,198.18.0.12:5432/app"
        f"?target_session_attrs=read-write&{tail}"
    )
    assert strings["ca_file"] == "hacenter-pg1-ca.crt"
    assert strings["ca_url"] == f"/api/v1/clusters/{cluster.pk}/ca/"


@pytest.mark.parametrize("ca", ["none", "not served yet"])
def test_clusters_not_on_tls_yet_keep_todays_strings(ca):
    cluster = _with_app()
    if ca == "not served yet":
        with_ca(cluster, active=False)
    strings = cluster_connection_strings(cluster)
    assert strings["read_write"] == "postgresql://app:pw-Abc_123@198.18.0.13:5432/app"
    assert strings["multi_host"].endswith("/app?target_session_attrs=read-write")
    assert strings["ca_file"] is None and "sslmode" not in json.dumps(strings)


def test_revealed_strings_say_where_the_ca_comes_from(client, user):
    cluster = _with_app()
    with_ca(cluster)
    client.force_login(user)
    html = client.post(f"/clusters/{cluster.pk}/connection/", HTTP_HX_REQUEST="true")
    text = html.content.decode()
    assert "sslmode=verify-full&amp;sslrootcert=hacenter-pg1-ca.crt" in text
    assert f'href="/clusters/{cluster.pk}/ca.crt"' in text and "require" in text
