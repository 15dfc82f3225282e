"""The cluster's CA and node certificates: made once, renewed only when something changed."""

import datetime
import ssl

import pytest
from cryptography import x509

from clusters.inventory import pki
from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import Cluster, Node
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


def test_node_certificates_carry_names_and_addresses_and_chain_to_the_ca():
    cluster, _ = three_node_cluster()
    issued = cluster_tls_ensure(cluster=cluster)
    assert issued == {"node1": "none yet", "node2": "none yet", "proxy": "none yet"}
    cluster.refresh_from_db()
    node1 = Node.objects.get(name="node1")
    info = pki.describe(node1.tls_certificate)
    assert set(info.dns_names) == {"node1", "localhost"}
    # The proxy's address too: clients check it with verify-full through HAProxy.
    assert set(info.ip_addresses) == {"198.18.0.11", "127.0.0.1", "::1", "198.18.0.13"}
    assert pki.signed_by(node1.tls_certificate, cluster.ca_certificate)
    proxy_info = pki.describe(Node.objects.get(name="proxy").tls_certificate)
    assert set(proxy_info.ip_addresses) == {"198.18.0.13", "127.0.0.1", "::1"}
    # Python's own TLS stack accepts the chain, as Patroni's will.
    context = ssl.create_default_context(cadata=cluster.ca_certificate)
    assert context.cert_store_stats()["x509_ca"] == 1


def test_a_second_run_changes_nothing_and_a_moved_node_gets_a_new_certificate():
    cluster, _ = three_node_cluster()
    cluster_tls_ensure(cluster=cluster)
    before = {n.name: n.tls_certificate for n in Node.objects.all()}
    ca = Cluster.objects.get().ca_certificate
    assert cluster_tls_ensure(cluster=cluster) == {}
    Node.objects.filter(name="node2").update(address="198.18.0.22")
    assert cluster_tls_ensure(cluster=cluster) == {"node2": "its names or addresses changed"}
    after = {n.name: n.tls_certificate for n in Node.objects.all()}
    assert after["node1"] == before["node1"] and after["node2"] != before["node2"]
    assert Cluster.objects.get().ca_certificate == ca


def test_renew_reissues_every_node_under_the_same_ca():
    cluster, _ = three_node_cluster()
    cluster_tls_ensure(cluster=cluster)
    before = {n.name: n.tls_certificate for n in Node.objects.all()}
    assert set(cluster_tls_ensure(cluster=cluster, renew=True)) == {"node1", "node2", "proxy"}
    for node in Node.objects.all():
        assert node.tls_certificate != before[node.name]
        assert pki.signed_by(node.tls_certificate, Cluster.objects.get().ca_certificate)


def test_a_certificate_from_another_ca_or_near_its_end_is_replaced():
    cluster, _ = three_node_cluster()
    cluster_tls_ensure(cluster=cluster)
    stranger = pki.new_authority("other")
    foreign = pki.issue(stranger, common_name="node1", dns_names=["node1"], ip_addresses=[])
    Node.objects.filter(name="node1").update(tls_certificate=foreign.certificate)
    short = pki.issue(
        pki.Issued(Cluster.objects.get().ca_certificate, Cluster.objects.get().ca_key),
        common_name="node2",
        dns_names=["node2", "localhost"],
        ip_addresses=["198.18.0.12", "127.0.0.1", "::1", "198.18.0.13"],
        days=5,
    )
    Node.objects.filter(name="node2").update(tls_certificate=short.certificate)
    issued = cluster_tls_ensure(cluster=cluster)
    assert issued["node1"] == "not signed by the cluster's CA"
    assert issued["node2"].startswith("it expires on ")
    assert "proxy" not in issued


def test_keys_are_encrypted_at_rest_and_redacted():
    cluster, _ = three_node_cluster()
    cluster_tls_ensure(cluster=cluster)
    cluster.refresh_from_db()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT ca_key FROM clusters_cluster")
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored and "PRIVATE KEY" in cluster.ca_key
    secrets = cluster.secret_values()
    assert cluster.ca_key in secrets
    assert Node.objects.get(name="node1").tls_key in secrets


def test_the_ca_is_a_ca_and_node_certificates_are_not():
    ca = pki.new_authority("pg1")
    cert = x509.load_pem_x509_certificate(ca.certificate.encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    node = pki.issue(ca, common_name="n", dns_names=["n"], ip_addresses=["10.0.0.1"])
    leaf = x509.load_pem_x509_certificate(node.certificate.encode())
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc > datetime.timedelta(days=700)
    assert "key=" not in repr(node) and "PRIVATE" not in repr(node)
