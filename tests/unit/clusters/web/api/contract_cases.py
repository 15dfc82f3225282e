"""Every REST endpoint called once to succeed and at least once to fail, against one world.

The golden test (test_api_contract.py) holds each answer's status, content type, caching and
JSON shape; the OpenAPI test (test_api_openapi.py) checks the same answers against the
document. The world is real rows (a defined cluster, jobs, events, tokens); only the worker
that scans a host key is stood in for, as no worker runs in unit tests.
"""

from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from clusters.inventory import pki
from clusters.models import (
    AlertChannel,
    ApiToken,
    Cluster,
    ClusterEvent,
    ClusterSecret,
    EventSubscription,
    FenceDevice,
    Incident,
    NodeVersions,
    ScannedHostKey,
)
from jobs.models import Job, JobStatus, LogLine
from tests.conftest import make_user
from tests.unit.clusters.web.api.test_api import _cluster_body
from tests.unit.conftest import FP

# A body that makes the request larger than the API's 1 MB limit.
TOO_LARGE = {"name": "x" * (1024 * 1024 + 10)}


@dataclass(frozen=True)
class Case:
    """One request: `who` sends it (admin, viewer, nobody: no header, stranger: a wrong token)."""

    name: str
    method: str
    path: str  # with {cluster}, {job}, {failed_job}, {token} filled from the world
    body: dict | str | None = None
    who: str = "admin"
    query: dict = field(default_factory=dict)


NODE3 = {
    "name": "node3",
    "address": "198.18.0.13",
    "ssh_port": 22,
    "credential": "{cred}",
    "host_key_fingerprint": FP,
}
REPLACEMENT = {k: v for k, v in NODE3.items() if k != "name"}
ADOPT = {
    "nodes": [
        {
            "name": name,
            "address": f"198.18.0.{last}",
            "credential": "{cred}",
            "host_key_fingerprint": FP,
            "kind": "database",
        }
        for name, last in (("node1", 23), ("node2", 24))
    ],
    "rest_api": {"username": "admin", "password": "Rest-pass-1"},
    "name": "adopted",
}

CASES = [
    # credentials
    Case("credentials-list", "GET", "/api/v1/credentials/"),
    Case("credentials-list-no-token", "GET", "/api/v1/credentials/", who="nobody"),
    Case(
        "credentials-create",
        "POST",
        "/api/v1/credentials/",
        {"name": "new", "username": "root", "password": "pw-123456"},
    ),
    Case("credentials-create-bad", "POST", "/api/v1/credentials/", {"name": "x"}),
    Case("credentials-create-viewer", "POST", "/api/v1/credentials/", {"name": "x"}, "viewer"),
    Case("credentials-put", "PUT", "/api/v1/credentials/", {}),
    # host keys
    Case("host-key-scan", "POST", "/api/v1/host-keys/scan/", {"address": "198.18.0.14"}),
    Case("host-key-scan-bad", "POST", "/api/v1/host-keys/scan/", {"address": "a b", "port": 0}),
    # clusters
    Case("clusters-list", "GET", "/api/v1/clusters/"),
    Case("clusters-list-wrong-token", "GET", "/api/v1/clusters/", who="stranger"),
    Case("clusters-create", "POST", "/api/v1/clusters/", "CLUSTER_BODY"),
    Case("clusters-create-bad", "POST", "/api/v1/clusters/", {"name": "Bad Name!"}),
    Case("clusters-create-not-json", "POST", "/api/v1/clusters/", "{not json"),
    Case("clusters-create-not-object", "POST", "/api/v1/clusters/", "[1, 2]"),
    Case("clusters-create-too-large", "POST", "/api/v1/clusters/", TOO_LARGE),
    Case("cluster-adopt", "POST", "/api/v1/clusters/adopt/", ADOPT),
    Case("cluster-adopt-bad", "POST", "/api/v1/clusters/adopt/", {"nodes": []}),
    Case("cluster-detail", "GET", "/api/v1/clusters/{cluster}/"),
    Case("cluster-detail-missing", "GET", "/api/v1/clusters/999999/"),
    Case("cluster-parameters", "GET", "/api/v1/clusters/{cluster}/parameters/", who="viewer"),
    Case(
        "cluster-parameters-unread",
        "POST",
        "/api/v1/clusters/{cluster}/parameters/",
        {"parameters": {"work_mem": "8MB"}},
    ),
    Case(
        "cluster-parameters-bad",
        "POST",
        "/api/v1/clusters/{cluster}/parameters/",
        {"parameters": ["work_mem"]},
    ),
    Case("cluster-job-start", "POST", "/api/v1/clusters/{cluster}/jobs/", {"kind": "lint"}),
    Case("cluster-job-start-bad", "POST", "/api/v1/clusters/{cluster}/jobs/", {"node": 3}),
    Case(
        "cluster-job-start-viewer",
        "POST",
        "/api/v1/clusters/{cluster}/jobs/",
        {"kind": "lint"},
        "viewer",
    ),
    Case("node-add", "POST", "/api/v1/clusters/{cluster}/nodes/", NODE3),
    Case("node-add-bad", "POST", "/api/v1/clusters/{cluster}/nodes/", {"name": "Node 3"}),
    Case("node-replace", "POST", "/api/v1/clusters/{cluster}/nodes/node2/replace/", REPLACEMENT),
    Case(
        "node-replace-missing",
        "POST",
        "/api/v1/clusters/{cluster}/nodes/node9/replace/",
        REPLACEMENT,
    ),
    # a node's fence device (node1 has one in the world, node2 none)
    Case("fence", "GET", "/api/v1/clusters/{cluster}/nodes/node1/fence/", who="viewer"),
    Case("fence-missing", "GET", "/api/v1/clusters/{cluster}/nodes/node2/fence/"),
    Case(
        "fence-set",
        "PUT",
        "/api/v1/clusters/{cluster}/nodes/node2/fence/",
        {"method": "ipmilan", "options": {"ip": "198.18.0.2", "username": "admin"}, "secret": "x"},
    ),
    Case(
        "fence-set-bad",
        "PUT",
        "/api/v1/clusters/{cluster}/nodes/node2/fence/",
        {"method": "redfish", "options": {"ip": "a b", "plug": "x"}},
    ),
    Case("fence-delete", "DELETE", "/api/v1/clusters/{cluster}/nodes/node1/fence/"),
    Case("fence-test", "POST", "/api/v1/clusters/{cluster}/nodes/node1/fence/test/"),
    Case("fence-test-missing", "POST", "/api/v1/clusters/{cluster}/nodes/node2/fence/test/"),
    # failover drills (the world's cluster is not healthy: a drill is refused, nothing starts)
    Case("failover-drills", "GET", "/api/v1/clusters/{cluster}/failover-drills/", who="viewer"),
    Case(
        "failover-drill-refused",
        "POST",
        "/api/v1/clusters/{cluster}/failover-drills/",
        {"confirm": "pg1"},
    ),
    Case("failover-drill-bad", "POST", "/api/v1/clusters/{cluster}/failover-drills/", {}),
    Case(
        "failover-drill-viewer",
        "POST",
        "/api/v1/clusters/{cluster}/failover-drills/",
        {"confirm": "pg1"},
        who="viewer",
    ),
    Case("connection", "GET", "/api/v1/clusters/{cluster}/connection/"),
    Case("connection-viewer", "GET", "/api/v1/clusters/{cluster}/connection/", who="viewer"),
    Case("ca", "GET", "/api/v1/clusters/{cluster}/ca/"),
    Case("ca-missing", "GET", "/api/v1/clusters/{bare}/ca/"),
    Case("events", "GET", "/api/v1/clusters/{cluster}/events/", query={"limit": "1"}),
    Case("events-bad", "GET", "/api/v1/clusters/{cluster}/events/", query={"limit": "0"}),
    Case("events-all", "GET", "/api/v1/events/", query={"cluster": "pg1", "limit": "1"}),
    Case("events-all-bad", "GET", "/api/v1/events/", query={"cluster": "nope", "kind": "x"}),
    # incidents
    Case("incidents", "GET", "/api/v1/clusters/{cluster}/incidents/", who="viewer"),
    Case("incidents-bad", "GET", "/api/v1/clusters/{cluster}/incidents/", query={"open": "x"}),
    Case("incidents-missing", "GET", "/api/v1/clusters/999999/incidents/"),
    Case("incident", "GET", "/api/v1/incidents/{incident}/", who="viewer"),
    Case("incident-missing", "GET", "/api/v1/incidents/999999/"),
    # jobs
    Case("jobs-list", "GET", "/api/v1/jobs/", query={"limit": "1"}),
    Case("jobs-list-bad", "GET", "/api/v1/jobs/", query={"status": "done", "cursor": "x"}),
    Case("cluster-jobs-list", "GET", "/api/v1/clusters/{cluster}/jobs/", who="viewer"),
    Case("cluster-jobs-list-missing", "GET", "/api/v1/clusters/999999/jobs/"),
    Case("job-detail", "GET", "/api/v1/jobs/{failed_job}/"),
    Case("job-detail-missing", "GET", "/api/v1/jobs/999999/"),
    Case("job-log", "GET", "/api/v1/jobs/{failed_job}/log/", query={"after": "0"}),
    Case("job-log-bad", "GET", "/api/v1/jobs/{failed_job}/log/", query={"after": "-1"}),
    Case("job-cancel", "POST", "/api/v1/jobs/{job}/cancel/"),
    Case("job-cancel-ended", "POST", "/api/v1/jobs/{failed_job}/cancel/"),
    Case("job-retry", "POST", "/api/v1/jobs/{failed_job}/retry/"),
    Case("job-retry-running", "POST", "/api/v1/jobs/{job}/retry/"),
    # audit and lag (read-only)
    Case("audit", "GET", "/api/v1/audit/", query={"action": "cluster."}),
    Case("audit-bad", "GET", "/api/v1/audit/", query={"since": "yesterday", "result": "x"}),
    Case("audit-viewer", "GET", "/api/v1/audit/", who="viewer"),
    Case("lag", "GET", "/api/v1/clusters/{cluster}/lag/", query={"range": "1h"}),
    Case("lag-bad", "GET", "/api/v1/clusters/{cluster}/lag/", query={"range": "1y"}),
    Case("versions", "GET", "/api/v1/clusters/{cluster}/versions/"),
    Case("versions-missing", "GET", "/api/v1/clusters/999999/versions/"),
    # alert channels, users and roles
    Case("alert-channels-list", "GET", "/api/v1/alert-channels/", who="viewer"),
    Case(
        "alert-channels-create",
        "POST",
        "/api/v1/alert-channels/",
        {"kind": "email", "target": "oncall@example.com", "cluster": "pg1"},
    ),
    Case("alert-channels-create-bad", "POST", "/api/v1/alert-channels/", {"kind": "fax"}),
    Case("alert-channel", "GET", "/api/v1/alert-channels/{channel}/"),
    Case("alert-channel-patch", "PATCH", "/api/v1/alert-channels/{channel}/", {"enabled": False}),
    Case("alert-channel-patch-bad", "PATCH", "/api/v1/alert-channels/{channel}/", {}),
    Case("alert-channel-test", "POST", "/api/v1/alert-channels/{channel}/test/"),
    Case("alert-channel-deliveries", "GET", "/api/v1/alert-channels/{channel}/deliveries/"),
    Case(
        "alert-channel-deliveries-bad",
        "GET",
        "/api/v1/alert-channels/{channel}/deliveries/",
        query={"limit": "0"},
    ),
    Case(
        "alert-channel-delete-viewer", "DELETE", "/api/v1/alert-channels/{channel}/", None, "viewer"
    ),
    Case("users-list", "GET", "/api/v1/users/"),
    Case("users-list-viewer", "GET", "/api/v1/users/", who="viewer"),
    Case(
        "users-create",
        "POST",
        "/api/v1/users/",
        {"username": "newbie", "password": "a-long-password-1", "role": "viewer"},
    ),
    Case("users-create-bad", "POST", "/api/v1/users/", {"username": 3, "role": "boss"}),
    Case("user-role", "PUT", "/api/v1/users/{viewer_user}/role/", {"role": "operator"}),
    Case("user-role-bad", "PUT", "/api/v1/users/{viewer_user}/role/", {"role": None}),
    Case("roles", "GET", "/api/v1/roles/", who="viewer"),
    # event subscriptions
    Case("subscriptions-list", "GET", "/api/v1/subscriptions/", who="viewer"),
    Case(
        "subscriptions-create",
        "POST",
        "/api/v1/subscriptions/",
        {"name": "bot", "url": "https://hooks.example.com/T0KEN"},
    ),
    Case("subscriptions-create-bad", "POST", "/api/v1/subscriptions/", {"name": "x", "url": 1}),
    Case("subscription", "GET", "/api/v1/subscriptions/{subscription}/"),
    Case(
        "subscription-patch", "PATCH", "/api/v1/subscriptions/{subscription}/", {"enabled": False}
    ),
    Case("subscription-rotate", "POST", "/api/v1/subscriptions/{subscription}/rotate-secret/"),
    Case("subscription-test", "POST", "/api/v1/subscriptions/{subscription}/test/"),
    Case("subscription-deliveries", "GET", "/api/v1/subscriptions/{subscription}/deliveries/"),
    Case("subscription-delete", "DELETE", "/api/v1/subscriptions/{subscription}/"),
    Case("subscription-missing", "GET", "/api/v1/subscriptions/999999/"),
    # tokens
    Case("tokens-list", "GET", "/api/v1/tokens/"),
    Case("tokens-create", "POST", "/api/v1/tokens/", {"name": "ci", "days": 30}),
    Case("tokens-create-bad", "POST", "/api/v1/tokens/", {"name": "ci", "user": "nobody-here"}),
    Case("token-delete", "DELETE", "/api/v1/tokens/{token}/"),
    Case("token-delete-missing", "DELETE", "/api/v1/tokens/999999/"),
    Case("token-revoke", "POST", "/api/v1/tokens/{token}/revoke/"),
    Case("token-revoke-get", "GET", "/api/v1/tokens/{token}/revoke/"),
]


@pytest.fixture
def world(client, django_user_model, cred, scanned, monkeypatch) -> dict:
    """pg1 defined through the API and running, with a CA, an application database, events,
    a failed job with a log, a running read-only job, and a second token of the admin."""
    from clusters.web import scans

    admin = make_user(django_user_model, "ops", "admin")
    viewer = make_user(django_user_model, "watcher", "viewer")
    keys = {"admin": ApiToken.issue(admin), "viewer": ApiToken.issue(viewer)}
    keys["stranger"] = "hc_not-a-token"
    for last in (13, 20, 21, 22, 23, 24):  # node3, the second cluster's and the adopted ones
        ScannedHostKey.objects.create(
            address=f"198.18.0.{last}",
            port=22,
            key_type="ssh-ed25519",
            base64="AAAAnew",
            fingerprint=FP,
        )
    body = _cluster_body(cred.pk)
    answer = client.post(
        "/api/v1/clusters/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {keys['admin']}",
    )
    cluster = Cluster.objects.get(pk=answer.json()["id"])
    ca = pki.new_authority(cluster.name)
    cluster.ca_certificate, cluster.ca_key = ca.certificate, ca.key
    cluster.state = Cluster.State.HEALTHY
    cluster.database_name, cluster.database_user = "app", "app"
    cluster.save()
    ClusterSecret.objects.create(cluster=cluster, name="application", value="App-pw-0123456789")
    incident = Incident.objects.create(
        cluster=cluster,
        kind="failover",
        opened=timezone.now(),
        title="failover from node1 to node2",
        old_primary="node1",
        new_primary="node2",
    )
    ClusterEvent.objects.create(
        cluster=cluster, kind="failover", at=timezone.now(), node="node1", incident=incident
    )
    ClusterEvent.objects.create(cluster=cluster, kind="failover", at=timezone.now(), node="node2")
    failed = Job.objects.create(
        kind="preflight", cluster=cluster, mutating=False, status=JobStatus.FAILED, error="no"
    )
    LogLine.objects.create(job=failed, seq=1, ts=timezone.now(), stream="stdout", text="hi")
    running = Job.objects.create(
        kind="lint", cluster=cluster, mutating=False, status=JobStatus.RUNNING
    )
    NodeVersions.objects.create(
        node=cluster.nodes.get(name="node1"),
        packages={
            "postgresql-15": {"installed": "15.18-0+deb12u1", "candidate": "15.20-0+deb12u1"}
        },
        running={"postgresql": "15.18-0+deb12u1", "patroni": "4.1.5"},
        stale=["/usr/sbin/haproxy"],
        checked_at=timezone.now(),
    )
    FenceDevice.objects.create(
        node=cluster.nodes.get(name="node1"),
        method="redfish",
        options={"ip": "198.18.0.1", "ipport": 8443, "username": "admin"},
        secret="Bmc-pass-0123",
    )
    bare = Cluster.objects.create(name="bare")
    channel = AlertChannel.objects.create(kind="email", target="dba@example.com", cluster=cluster)
    subscription = EventSubscription.objects.create(
        name="cmdb", url="https://cmdb.example.com/hook/S3CRET", secret="s" * 43
    )
    ApiToken.issue(admin, name="spare")
    token = ApiToken.objects.get(user=admin, name="spare")
    monkeypatch.setattr(
        scans,
        "scan_via_worker",
        lambda address, port: {"key_type": "ssh-ed25519", "fingerprint": FP},
    )
    return {
        "client": client,
        "keys": keys,
        "ids": {
            "cluster": cluster.pk,
            "bare": bare.pk,
            "job": running.pk,
            "failed_job": failed.pk,
            "incident": incident.pk,
            "token": token.pk,
            "cred": cred.pk,
            "channel": channel.pk,
            "subscription": subscription.pk,
            "viewer_user": viewer.pk,
        },
        "cluster_body": {
            **body,
            "name": "pg2",
            "nodes": [{**n, "address": f"198.18.0.{20 + i}"} for i, n in enumerate(body["nodes"])],
        },
    }


def _filled(value, ids: dict):
    """`value` with every "{name}" string placeholder replaced by the world's id."""
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids.get(value[1:-1], value)
    return value


def send(world: dict, case: Case):
    """Send `case` through Django's test client and answer the response."""
    client, ids = world["client"], world["ids"]
    path = case.path.format(**ids)
    headers = {}
    if case.who in world["keys"]:
        headers["HTTP_AUTHORIZATION"] = f"Token {world['keys'][case.who]}"
    if case.method == "GET":
        return client.get(path, case.query, **headers)
    if case.body == "CLUSTER_BODY":
        data = world["cluster_body"]
        for node in data["nodes"]:
            node["credential"] = ids["cred"]
    else:
        data = _filled(case.body, ids)
    if data is None:
        data = {}
    kwargs = {"content_type": "application/json", **headers}
    return getattr(client, case.method.lower())(path, data=data, **kwargs)
