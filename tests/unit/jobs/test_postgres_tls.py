"""The console's libpq TLS settings: verify-full against the cluster's CA once a node serves
its certificate, prefer before; the CA file in a private directory."""

import os
import stat
from pathlib import Path

import pytest

from clusters.inventory import pki
from clusters.models import Cluster, Node
from jobs import postgres_tls
from jobs.postgres_tls import UnsafeCaDirectory, ca_file, node_tls, proxy_tls


@pytest.fixture
def private_tmp(monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(postgres_tls, "_FILES", {})
    return tmp_path


def _node(cluster: Cluster, name: str, active: bool) -> Node:
    return Node(name=name, address="10.0.0.1", kind="database", tls_active=active, cluster=cluster)


def test_the_ca_file_is_written_once_in_a_private_directory(private_tmp):
    ca = pki.new_authority("pg1").certificate
    path = ca_file(ca)
    assert ca_file(ca) == path
    assert Path(path).read_text() == ca
    directory = os.path.dirname(path)
    assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o700
    other = pki.new_authority("pg2").certificate
    assert ca_file(other) != path  # one file per CA
    os.unlink(path)
    assert Path(ca_file(ca)).read_text() == ca  # a removed file is written again


@pytest.mark.parametrize("mode", [0o755, 0o770])
def test_a_ca_directory_others_can_write_is_refused(private_tmp, mode):
    directory = private_tmp / f"hacenter-ca-{os.getuid()}"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(UnsafeCaDirectory, match="0700"):
        ca_file("-----BEGIN CERTIFICATE-----\n")


def test_a_ca_directory_that_is_a_link_is_refused(private_tmp):
    target = private_tmp / "elsewhere"
    target.mkdir(mode=0o700)
    (private_tmp / f"hacenter-ca-{os.getuid()}").symlink_to(target)
    with pytest.raises(UnsafeCaDirectory):
        ca_file("-----BEGIN CERTIFICATE-----\n")


def test_node_tls_verifies_only_a_node_that_serves_the_cas_certificate(private_tmp):
    ca = pki.new_authority("pg1").certificate
    with_ca = Cluster(name="pg1", ca_certificate=ca)
    assert node_tls(_node(with_ca, "node1", True)) == {
        "sslmode": "verify-full",
        "sslrootcert": ca_file(ca),
    }
    assert node_tls(_node(with_ca, "node1", False)) == {"sslmode": "prefer"}
    assert node_tls(_node(Cluster(name="old"), "node1", True)) == {"sslmode": "prefer"}


def test_proxy_tls_waits_for_every_database_node(private_tmp):
    ca = pki.new_authority("pg1").certificate
    cluster = Cluster(name="pg1", ca_certificate=ca)
    both = [_node(cluster, "node1", True), _node(cluster, "node2", True)]
    assert proxy_tls(cluster, both)["sslmode"] == "verify-full"
    half = [_node(cluster, "node1", True), _node(cluster, "node2", False)]
    assert proxy_tls(cluster, half) == {"sslmode": "prefer"}
    assert proxy_tls(cluster, []) == {"sslmode": "prefer"}
