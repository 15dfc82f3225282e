"""`/metrics`: token-protected, built from the database, a constant number of queries.

The view is called through RequestFactory until hacenter/urls.py routes "/metrics" to it.
"""

from datetime import timedelta
from itertools import count

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from clusters.access.roles import assign_role
from clusters.models import ApiToken, Cluster, ClusterEvent, Credential, Node, NodeStatus
from clusters.web.metrics import metrics
from jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db

_addresses = count(1)


@pytest.fixture
def token(django_user_model) -> str:
    user = django_user_model.objects.create_user("prometheus", password="scrape-pw-123")
    assign_role(user, "viewer")  # reading metrics needs a role; viewer is the least
    return ApiToken.issue(user)


@pytest.fixture(autouse=True)
def _interval(settings) -> None:
    settings.MONITOR_INTERVAL_S = 2.0  # node up = heard from within 6 s


def scrape(authorization: str | None) -> tuple[int, str]:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = metrics(RequestFactory().get("/metrics", **headers))
    return response.status_code, response.content.decode()


def samples(body: str) -> dict[tuple[str, frozenset], float]:
    """Every sample as (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def make_cluster(name: str, **kw: object) -> Cluster:
    """A cluster with node1 (primary), node2 (sync standby) and a proxy, each with a status."""
    cred, _ = Credential.objects.get_or_create(
        name="lab", defaults={"username": "root", "password": "pw-123456"}
    )
    cluster = Cluster.objects.create(name=name, **kw)
    now = timezone.now()

    def node(node_name: str, kind: str, **status: object) -> None:
        created = Node.objects.create(
            cluster=cluster,
            name=node_name,
            kind=kind,
            address=f"10.0.0.{next(_addresses)}",
            credential=cred,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint="SHA256:" + "A" * 43,
        )
        NodeStatus.objects.create(node=created, **status)

    node(
        "node1",
        Node.Kind.DATABASE,
        role="primary",
        state="running",
        timeline=3,
        lag_bytes=0,
        last_seen=now,
        writable=True,
        proxy_status="UP",
    )
    node(
        "node2",
        Node.Kind.DATABASE,
        role="sync_replica",
        state="streaming",
        timeline=3,
        lag_bytes=4096,
        lag_seconds=None,
        last_seen=now - timedelta(seconds=5),
        writable=False,
        proxy_status="DOWN",
    )
    # The proxy host was last heard from 7 s ago: more than 3 monitor periods.
    node("px", Node.Kind.PROXY, last_seen=now - timedelta(seconds=7))
    return cluster


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Token not-a-token", "Basic dXNlcjpwYXNz"],
)
def test_metrics_refuse_without_a_valid_token_and_reveal_nothing(authorization: str | None) -> None:
    make_cluster("secret-cluster")
    status, body = scrape(authorization)
    assert status == 401
    assert "secret-cluster" not in body and "hacenter_" not in body
    assert len(body) < 100


def test_metrics_refuse_the_token_of_a_disabled_user(token: str, django_user_model) -> None:
    django_user_model.objects.update(is_active=False)
    assert scrape(f"Bearer {token}")[0] == 401


@pytest.mark.parametrize("scheme", ["Bearer", "Token"])
def test_metrics_accept_bearer_and_token_schemes(token: str, scheme: str) -> None:
    status, _ = scrape(f"{scheme} {token}")
    assert status == 200
    assert ApiToken.objects.get().last_used is not None


def test_metrics_report_nodes_state_proxy_jobs_and_last_check(token: str) -> None:
    checked = timezone.now().replace(microsecond=0)
    cluster = make_cluster("alpha", state=Cluster.State.DEGRADED, last_checked=checked)
    Job.objects.create(kind="preflight", cluster=cluster, mutating=False, status="succeeded")
    Job.objects.create(kind="preflight", cluster=cluster, mutating=False, status="succeeded")
    Job.objects.create(kind="setup", cluster=cluster, status="failed")

    status, body = scrape(f"Bearer {token}")
    got = samples(body)

    assert status == 200

    def value(name: str, **labels: str) -> float | None:
        return got.get((name, frozenset(labels.items())))

    db1 = {"cluster": "alpha", "node": "node1"}
    db2 = {"cluster": "alpha", "node": "node2"}
    px = {"cluster": "alpha", "node": "px"}
    assert value("hacenter_node_up", **db1) == 1
    assert value("hacenter_node_up", **db2) == 1  # 5 s ago: within 3 periods of 2 s
    assert value("hacenter_node_up", **px) == 0  # 7 s ago
    assert value("hacenter_node_is_primary", **db1) == 1
    assert value("hacenter_node_is_primary", **db2) == 0
    assert value("hacenter_replication_lag_bytes", **db2) == 4096
    assert value("hacenter_replication_lag_seconds", **db2) is None  # unknown: no sample
    assert value("hacenter_node_timeline", **db1) == 3
    assert value("hacenter_proxy_backend_up", **db1) == 1
    assert value("hacenter_proxy_backend_up", **db2) == 0
    # The proxy host is not a database node: no role, lag, timeline or backend of its own.
    assert all(
        dict(labels).get("node") != "px" for name, labels in got if name != "hacenter_node_up"
    )
    for state in Cluster.State.values:
        expected = 1 if state == "degraded" else 0
        assert value("hacenter_cluster_state", cluster="alpha", state=state) == expected
    assert value("hacenter_jobs_total", status="succeeded") == 2
    assert value("hacenter_jobs_total", status="failed") == 1
    assert value("hacenter_jobs_total", status="running") == 0
    assert {dict(labels)["status"] for name, labels in got if name == "hacenter_jobs_total"} == set(
        JobStatus.values
    )
    assert value("hacenter_last_check_timestamp_seconds", cluster="alpha") == checked.timestamp()


def test_metrics_report_lag_seconds_when_known_and_skip_unset_timestamps(token: str) -> None:
    make_cluster("beta")  # never checked
    NodeStatus.objects.filter(node__name="node2").update(lag_seconds=1.5)
    got = samples(scrape(f"Token {token}")[1])
    lag = (
        "hacenter_replication_lag_seconds",
        frozenset({"cluster": "beta", "node": "node2"}.items()),
    )
    assert got[lag] == 1.5
    assert not any(name == "hacenter_last_check_timestamp_seconds" for name, _ in got)


def test_a_node_without_a_status_row_is_down_and_not_primary(token: str) -> None:
    make_cluster("gamma")
    NodeStatus.objects.filter(node__name="node1").delete()
    got = samples(scrape(f"Bearer {token}")[1])
    node1 = frozenset({"cluster": "gamma", "node": "node1"}.items())
    assert got[("hacenter_node_up", node1)] == 0
    assert got[("hacenter_node_is_primary", node1)] == 0
    assert ("hacenter_node_timeline", node1) not in got


def test_metrics_query_count_does_not_grow_with_clusters(
    token: str, django_assert_max_num_queries
) -> None:
    make_cluster("c00")
    with CaptureQueriesContext(connection) as one:
        scrape(f"Bearer {token}")
    for i in range(1, 10):
        make_cluster(f"c{i:02d}")
    # Token lookup, last_used, clusters, nodes with status, jobs per status, fast-path
    # decisions per cluster and outcome.
    with django_assert_max_num_queries(6), CaptureQueriesContext(connection) as ten:
        status, body = scrape(f"Bearer {token}")
    assert status == 200
    # The second scrape within a minute does not write last_used again: one query fewer.
    assert len(ten) in (len(one), len(one) - 1)
    assert sum(1 for name, _ in samples(body) if name == "hacenter_node_up") == 30


def test_fast_failover_decisions_are_counted_per_cluster_and_outcome(token: str) -> None:
    cluster = make_cluster("delta")
    now = timezone.now()
    for outcome in ("acted", "declined", "declined"):
        ClusterEvent.objects.create(
            cluster=cluster,
            kind="fast_failover",
            at=now,
            summary="Fast failover …",
            details={"outcome": outcome},
        )
    got = samples(scrape(f"Bearer {token}")[1])
    name = "hacenter_fast_failover_decisions_total"
    assert got[(name, frozenset({"cluster": "delta", "outcome": "declined"}.items()))] == 2
    assert got[(name, frozenset({"cluster": "delta", "outcome": "acted"}.items()))] == 1


def test_metrics_answer_get_only(token: str) -> None:
    request = RequestFactory().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert metrics(request).status_code == 405
