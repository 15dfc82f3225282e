"""Two proxies and a floating address in the inventory, the API, the page and the strings."""

import pytest

from clusters.inventory.connection_strings import cluster_connection_strings
from clusters.inventory.export_import import inventory_export
from clusters.inventory.virtual_ip import virtual_ip_problems
from clusters.models import Cluster, ClusterSecret, Node, ScannedHostKey
from tests.unit.clusters.web.api.test_api import FP, _cluster_body
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

PROXIES = ["198.18.0.10", "198.18.0.13"]
NODES = [*PROXIES, "198.18.0.11", "198.18.0.12"]


@pytest.mark.parametrize(
    ("value", "proxies", "message"),
    [
        ("198.18.0.100", PROXIES, "prefix length"),
        ("198.18.0.100/33", PROXIES, "not an address"),
        ("198.18.0.11/24", PROXIES, "a node's own address"),
        ("198.18.0.0/24", PROXIES, "network's own"),
        ("198.19.0.100/24", PROXIES, "not the proxies' network"),
        ("198.18.0.100/24", PROXIES[:1], "needs two proxy nodes"),
    ],
)
def test_a_floating_address_that_cannot_work_is_refused(value, proxies, message):
    assert any(message in p for p in virtual_ip_problems(value, proxies, NODES))


def test_a_free_address_in_the_proxies_network_is_fine():
    assert virtual_ip_problems("198.18.0.100/24", PROXIES, NODES) == []


def _two_proxy_body(cred_id: int, **overrides) -> dict:
    body = _cluster_body(cred_id, **overrides)
    body["nodes"].append(dict(body["nodes"][-1], name="proxy2", address="198.18.0.13"))
    return body


@pytest.fixture
def scanned_proxy2(scanned):
    ScannedHostKey.objects.create(
        address="198.18.0.13",
        port=22,
        key_type="ssh-ed25519",
        base64="AAAAC3NzaC1lZDI1NTE5AAAAIExample",
        fingerprint=FP,
    )


def test_the_api_defines_two_proxies_with_a_floating_address(api, cred, scanned_proxy2):
    answer = api.post("/api/v1/clusters/", _two_proxy_body(cred.pk, virtual_ip="198.18.0.100/24"))
    assert answer.status_code == 201, answer.json()
    created = answer.json()
    cluster = Cluster.objects.get(pk=created["id"])
    assert [p.name for p in cluster.proxy_nodes] == ["proxy", "proxy2"]
    assert created["virtual_ip"] == {
        "address": "198.18.0.100/24",
        "router_id": cluster.vrrp_router_id_effective,
        "holder": None,
    }
    assert created["proxy"]["etcd_witness"] == "proxy"
    assert created["proxy"]["addresses"] == PROXIES
    assert created["proxy"]["endpoints"] == {"rw": "198.18.0.100:5432", "ro": "198.18.0.100:5433"}


def test_the_api_refuses_a_floating_address_outside_the_proxies_network(api, cred, scanned_proxy2):
    body = _two_proxy_body(cred.pk, virtual_ip="10.1.2.3/24", vrrp_router_id=300)
    answer = api.post("/api/v1/clusters/", body)
    assert answer.status_code == 400
    fields = answer.json()["field_errors"]
    assert "not the proxies' network" in " ".join(fields["virtual_ip"]), fields
    assert "vrrp_router_id" in fields
    assert not Cluster.objects.exists()


def test_router_id_is_the_admins_or_derived_from_the_cluster():
    cluster, _ = three_node_cluster()
    assert 1 <= cluster.vrrp_router_id_effective <= 255
    cluster.vrrp_router_id = 77
    assert cluster.vrrp_router_id_effective == 77


def _with_second_proxy(**fields) -> Cluster:
    cluster, nodes = three_node_cluster(database_name="app", database_user="app", **fields)
    Node.objects.create(
        cluster=cluster,
        name="proxy2",
        address="198.18.0.20",
        credential=nodes[0].credential,
        kind="proxy",
        host_key_type="ssh-ed25519",
        host_key_base64="AAAA",
        host_key_fingerprint="SHA256:9",
    )
    ClusterSecret.objects.create(cluster=cluster, name="application", value="pw-Abc_123")
    return cluster


def test_connection_strings_use_the_floating_address_and_offer_both_proxies():
    cluster = _with_second_proxy(virtual_ip="198.18.0.100/24")
    strings = cluster_connection_strings(cluster)
    assert strings["read_write"] == "postgresql://app:pw-Abc_123@198.18.0.100:5432/app"
    assert strings["read_only"] == "postgresql://app:pw-Abc_123@198.18.0.100:5433/app"
    assert strings["proxies_multi_host"] == (
        "postgresql://app:pw-Abc_123@198.18.0.13:5432,198.18.0.20:5432/app"
        "?target_session_attrs=read-write"
    )


def test_one_proxy_keeps_todays_strings():
    cluster, _ = three_node_cluster(database_name="app", database_user="app")
    ClusterSecret.objects.create(cluster=cluster, name="application", value="pw-Abc_123")
    strings = cluster_connection_strings(cluster)
    assert strings["read_write"] == "postgresql://app:pw-Abc_123@198.18.0.13:5432/app"
    assert strings["proxies_multi_host"] is None


def test_the_page_says_who_holds_the_address_and_who_is_the_witness(client, user):
    cluster = _with_second_proxy(virtual_ip="198.18.0.100/24", state="healthy")
    Cluster.objects.filter(pk=cluster.pk).update(vip_holder="proxy2", vrrp_router_id=9)
    client.force_login(user)
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "held by <strong>proxy2</strong>" in page
    assert "VRRP router id 9" in page
    assert "etcd witness (third member): proxy" in page


def test_export_keeps_the_floating_address():
    _with_second_proxy(virtual_ip="198.18.0.100/24", vrrp_router_id=12)
    exported = inventory_export()["clusters"][0]
    assert exported["virtual_ip"] == "198.18.0.100/24" and exported["vrrp_router_id"] == 12


def test_an_explicit_router_id_another_cluster_uses_on_the_network_is_refused(
    api, cred, scanned_proxy2
):
    other = _with_second_proxy(virtual_ip="198.18.0.101/24", vrrp_router_id=5)
    assert other.vrrp_router_id_effective == 5
    body = _two_proxy_body(cred.pk, virtual_ip="198.18.0.100/24", vrrp_router_id=5)
    answer = api.post("/api/v1/clusters/", body)
    assert answer.status_code == 400
    assert "uses VRRP router id 5" in " ".join(answer.json()["field_errors"]["vrrp_router_id"])
