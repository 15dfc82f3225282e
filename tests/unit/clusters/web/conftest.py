"""The bad-input catalogue's world: what its cases need to exist, the tables they must leave
alone, and a stand-in for the worker that no case may reach."""

import pytest

from clusters.models import (
    AlertChannel,
    ApiToken,
    Cluster,
    ClusterSecret,
    Credential,
    Node,
    ScannedHostKey,
)
from jobs.models import Job, Step
from tests.unit.clusters.web.bad_input_builders import (
    FP,
)


@pytest.fixture
def world(user):
    cred = Credential.objects.create(name="lab", username="root", password="pw-123456")
    # Scanned keys for every address a case uses, so each case reaches the check it is about.
    wheres = [(f"198.18.0.{last}", 22) for last in (11, 12, 13, 21)] + [
        ("198.18.0.11", 2222),
        ("198.18.0.21", 2222),
    ]
    for address, port in wheres:
        ScannedHostKey.objects.create(
            address=address, port=port, key_type="ssh-ed25519", base64="AAAA", fingerprint=FP
        )
    existing = Cluster.objects.create(name="pg0")
    for i, kind in enumerate(("database", "database", "proxy")):
        Node.objects.create(
            cluster=existing,
            name=("node1", "node2", "proxy")[i],
            address=f"198.18.0.{21 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint=FP,
        )
    return {"cred": cred, "cluster": existing}


def _state() -> dict:
    """Every inventory and job row, as values: any change anywhere shows up as a difference."""
    models = (Credential, Cluster, Node, ClusterSecret, ScannedHostKey, Job, Step, AlertChannel)
    state = {m.__name__: list(m.objects.order_by("pk").values()) for m in models}
    # Tokens too, but not last_used: the request's own token records its use.
    state["ApiToken"] = list(ApiToken.objects.order_by("pk").values(*_TOKEN_FIELDS))
    return state


_TOKEN_FIELDS = ("pk", "user_id", "digest", "prefix", "name", "expires", "revoked")


@pytest.fixture
def worker_calls(monkeypatch) -> list[str]:
    """Addresses a worker would have been asked to scan; any other task fails the test."""
    import clusters.web.scans

    calls: list[str] = []

    def scan(address: str, port: int) -> dict:
        calls.append(address)
        return {"error": "no worker in this test"}

    def refuse(*args, **kwargs):
        raise AssertionError("a task was queued: a worker would have contacted a server")

    monkeypatch.setattr(clusters.web.scans, "scan_via_worker", scan)
    monkeypatch.setattr("celery.app.task.Task.apply_async", refuse)
    return calls
