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


def three_node_cluster(
    name: str = "pg1", *, network: str = "198.18.0.", first: int = 11, **fields
) -> tuple[Cluster, list[Node]]:
    """`name` (pg1) with node1, node2 (database) and proxy at network+first… (the lab's
    addresses by default), no status yet; the credential "c" is shared between clusters."""
    cred, _ = Credential.objects.get_or_create(
        name="c", defaults={"username": "root", "password": "pw-123456"}
    )
    cluster = Cluster.objects.create(name=name, **fields)
    nodes = [
        Node.objects.create(
            cluster=cluster,
            name=node_name,
            address=f"{network}{first + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint=f"SHA256:{i}",
        )
        for i, (node_name, kind) in enumerate(
            (("node1", "database"), ("node2", "database"), ("proxy", "proxy"))
        )
    ]
    return cluster, nodes
