"""The bad-input catalogue's builders: request bodies, keys and the case record (`Bad`)."""

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

FP = "SHA256:" + "B" * 43
OTHER_FP = "SHA256:" + "C" * 43


def _key(passphrase: bytes | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        .decode()
    )


ENCRYPTED_KEY = _key(b"the passphrase")
PLAIN_KEY = _key()
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ ops"


def node(i: int, **changes) -> dict:
    base = {
        "name": ("node1", "node2", "proxy")[i],
        "address": f"198.18.0.{11 + i}",
        "ssh_port": 22,
        "credential": "CRED",
        "host_key_fingerprint": FP,
        "kind": "proxy" if i == 2 else "database",
    }
    return base | changes


def cluster_body(**changes) -> dict:
    body = {
        "name": "pg1",
        "replication": "async",
        "nodes": [node(0), node(1), node(2)],
        "client_networks": ["10.20.0.0/16"],
        "database": {"name": "app", "user": "app"},
    }
    return body | changes


def with_node(i: int, **changes) -> dict:
    nodes = [node(0), node(1), node(2)]
    nodes[i] = node(i, **changes)
    return cluster_body(nodes=nodes)


def cred_body(**changes) -> dict:
    return {"name": "new", "username": "root", "password": "pw-123456"} | changes


@dataclass
class Bad:
    id: str
    url: str
    body: dict | bytes | str
    message: str  # what the answer must say (HTML entities decoded)
    field: str | None = None  # the API's field_errors key that must carry the message
    status: int = 400
    page: bool = False  # a form POST to a page rather than a JSON API call


CREDS, CLUSTERS, SCAN = "/api/v1/credentials/", "/api/v1/clusters/", "/api/v1/host-keys/scan/"
JOBS = "/api/v1/clusters/EXISTING/jobs/"
TOKENS = "/api/v1/tokens/"
NODES = "/api/v1/clusters/EXISTING/nodes/"
LETTERS = "Use 1–100 letters"
NAME_RULE = "Use 1–63 lower-case letters"
TEN_MB = "A" * (10 * 1024 * 1024)
CONTROL = "Line breaks, tabs and other control characters are not allowed here"
IP_ONLY = "Enter the server's IP address; host names are not accepted"
