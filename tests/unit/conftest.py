"""Fixtures shared by the unit tests: a credential and scanned host keys for the lab's addresses."""

import pytest

from clusters.models import Cluster, Credential, Node, ScannedHostKey

FP = "SHA256:" + "A" * 43


@pytest.fixture
def cred():
    return Credential.objects.create(name="lab", username="root", password="pw-123456")


@pytest.fixture
def scanned():
    for last in (10, 11, 12):
        ScannedHostKey.objects.create(
            address=f"198.18.0.{last}",
            port=22,
            key_type="ssh-ed25519",
            base64="AAAAC3NzaC1lZDI1NTE5AAAAIExample",
            fingerprint=FP,
        )


def three_node_cluster(**fields) -> tuple[Cluster, list[Node]]:
    """pg1 with node1, node2 (database) and proxy at the lab's addresses, no status yet."""
    cred = Credential.objects.create(name="c", username="root", password="pw-123456")
    cluster = Cluster.objects.create(name="pg1", **fields)
    nodes = [
        Node.objects.create(
            cluster=cluster,
            name=name,
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint=f"SHA256:{i}",
        )
        for i, (name, kind) in enumerate(
            (("node1", "database"), ("node2", "database"), ("proxy", "proxy"))
        )
    ]
    return cluster, nodes
