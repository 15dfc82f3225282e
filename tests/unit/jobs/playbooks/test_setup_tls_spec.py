"""Setup's spec carries the cluster's certificates (made on first use, kept afterwards), and
setup plans the TLS files step on every node before etcd is configured."""

import pytest

from clusters.inventory import pki
from jobs.playbooks import setup
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


def test_the_spec_carries_the_ca_and_every_nodes_certificate():
    cluster, _ = three_node_cluster()
    spec = setup.cluster_spec(cluster)
    assert spec.tls is not None
    assert spec.tls.ca_certificate == cluster.ca_certificate != ""
    assert {name for name, _ in spec.tls.nodes} == {"node1", "node2", "proxy"}
    for _, node_tls in spec.tls.nodes:
        assert pki.signed_by(node_tls.certificate, spec.tls.ca_certificate)
        assert "PRIVATE KEY" in node_tls.key
    assert "PRIVATE KEY" not in repr(spec.tls)
    # A second spec reuses them: nothing is reissued behind the servers' back.
    again = setup.cluster_spec(cluster)
    assert again.tls == spec.tls


def test_setup_writes_the_tls_files_on_every_node_before_etcd_is_configured():
    cluster, _ = three_node_cluster()
    steps = setup.plan(cluster, None, {})
    order = [s.name for s in steps]
    assert sorted(s.node.name for s in steps if s.name == "tls_files") == [
        "node1",
        "node2",
        "proxy",
    ]
    assert max(i for i, n in enumerate(order) if n == "install_packages") < order.index("tls_files")
    last_tls = max(i for i, n in enumerate(order) if n == "tls_files")
    assert last_tls < order.index("etcd_configure")
