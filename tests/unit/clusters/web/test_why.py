"""Saying why: the cluster page's "Why" box, the card's one-line reason, the API's reasons, and
"unknown" drawn as unknown (last known facts, no action that needs a fresh reading) and "new" as
not set up yet, never as an outage. Pages only read the database."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clusters.models import Cluster, NodeStatus, StatusSample
from clusters.monitoring.health import NOTHING_ANSWERED, WRITES_NOWHERE
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

LAGGING = "node2 lags 40.0 MiB, 12.5 s behind the primary (threshold 16.0 MiB)."
# What an outage looks like on the page: a cluster that is merely unread or not set up must
# show none of it.
OUTAGE_WORDS = ("nobody accepts writes", "no primary", "topo-missing", "observed just now")
# The actions that act on a reading of the servers: every confirmation page, replacing a node and
# adding one.
FRESH_ACTIONS = ("/confirm/", "/replace/", "/nodes/new/")


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-password-123")


def make(state: str, *, roles=("primary", "replica"), **fields) -> Cluster:
    """pg1 in `state`, its nodes last seen with `roles` (unknown: not answering)."""
    now = timezone.now()
    cluster, nodes = three_node_cluster(state=state, last_leader="node1", **fields)
    for node, role in zip(nodes, roles, strict=False):
        NodeStatus.objects.create(
            node=node,
            role=role,
            state={"primary": "running", "replica": "streaming"}.get(role, "down"),
            proxy_status="UP" if role == "primary" else "DOWN",
            last_seen=now - timedelta(minutes=6) if role == "unknown" else now,
        )
    return cluster


def page(client, admin, cluster: Cluster) -> str:
    client.force_login(admin)
    response = client.get(f"/clusters/{cluster.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_degraded_cluster_page_says_why_and_for_how_long(client, admin):
    since = timezone.now() - timedelta(minutes=4, seconds=5)
    cluster = make("degraded", state_reasons=[LAGGING], state_since=since)
    html = page(client, admin, cluster)
    assert 'data-why="degraded"' in html and 'role="status"' in html
    assert "Degraded for 4 min</h2>" in html
    assert f"<li>{LAGGING}</li>" in html
    for action in (*FRESH_ACTIONS, "/confirm/rebuild/?node=node2"):
        assert action in html, action  # read recently: the actions are offered
    # Except a switchover, which needs a healthy cluster: shown disabled, with the reason.
    assert "/confirm/switchover/" not in html
    assert "needs a healthy cluster: pg1 is degraded" in html


def test_a_down_cluster_whose_writes_go_nowhere_says_so_in_the_box_and_the_topology(client, admin):
    cluster = make("down", state_reasons=[WRITES_NOWHERE], state_since=timezone.now())
    NodeStatus.objects.filter(node__name="node1").update(proxy_status="DOWN")
    html = page(client, admin, cluster)
    assert 'class="why flash error"' in html and "Down for 0 s</h2>" in html
    assert "HAProxy routes writes to no server: clients cannot write." in html
    assert "no server: clients cannot write</strong> <small>(HAProxy has node1 DOWN)" in html
    assert "(proxy status DOWN)" not in html


def test_a_healthy_cluster_page_only_says_since_when_quietly(client, admin):
    cluster = make("healthy", state_since=timezone.now() - timedelta(hours=3))
    html = page(client, admin, cluster)
    assert 'class="hint why" data-why="healthy">Healthy since <time' in html
    assert "(3 h)" in html
    assert "why-title" not in html


def test_an_unknown_cluster_says_nothing_answered_shows_last_known_facts_and_no_fresh_action(
    client, admin
):
    since = timezone.now() - timedelta(minutes=5)
    cluster = make(
        "unknown",
        roles=("unknown", "unknown"),
        state_reasons=[NOTHING_ANSWERED],
        state_since=since,
        last_checked=timezone.now(),
    )
    for name, role in (("node1", "primary"), ("node2", "replica")):
        StatusSample.objects.create(
            node=cluster.nodes.get(name=name),
            at=since - timedelta(seconds=2),
            up=True,
            role=role,
        )
    html = page(client, admin, cluster)
    assert f'No answer from any node since <time datetime="{since.isoformat()}"' in html
    assert f"{timezone.localtime(since):%H:%M:%S}</time>" in html
    assert "This may be the console's own network: check from another host" in html
    assert "Leader: <strong>node1</strong>" in html
    assert "node1: primary <time" in html and "node2: replica <time" in html
    assert "PostgreSQL last answered" in html
    assert "primary unknown" in html and "last known leader node1" in html
    for words in OUTAGE_WORDS:
        assert words not in html, words
    assert "no answer since <time" in html  # instead of "observed just now"
    for action in FRESH_ACTIONS:
        assert action not in html, action
    assert "Run preflight" in html  # reads the servers itself: still offered
    assert html.count("needs a fresh reading") == 2  # the database nodes' rows
    assert "<td>down</td>" not in html and '<span class="empty">no answer</span>' in html


def test_an_unknown_cluster_whose_postgresql_still_answers_says_which(client, admin):
    since = timezone.now() - timedelta(minutes=1)
    cluster = make(
        "unknown", roles=("unknown", "unknown"), state_reasons=[NOTHING_ANSWERED], state_since=since
    )
    NodeStatus.objects.filter(node__name="node1").update(last_seen=timezone.now())
    html = page(client, admin, cluster)
    assert "No answer from Patroni or HAProxy since" in html
    assert "PostgreSQL on node1 still answers." in html
    assert "node1: role never read" in html  # no sample with a role


def test_a_cluster_never_set_up_is_drawn_as_not_set_up_never_as_an_outage(client, admin):
    cluster, _ = three_node_cluster()  # new: no status at all
    html = page(client, admin, cluster)
    assert "not set up yet" in html and "the primary is chosen at setup" in html
    for words in (*OUTAGE_WORDS, "topo-trouble", "not streaming", "why-title"):
        assert words not in html, words
    assert "Set up the cluster" in html


def test_stale_reasons_of_a_cluster_set_back_to_new_are_not_shown(client, admin, api):
    cluster, _ = three_node_cluster(state_reasons=[WRITES_NOWHERE], state_since=timezone.now())
    html = page(client, admin, cluster)
    assert WRITES_NOWHERE not in html
    listed = api.get("/api/v1/clusters/").json()[0]
    assert (listed["state_reasons"], listed["state_since"]) == ([], None)


def test_each_dashboard_card_carries_its_first_reason(client, admin):
    make("degraded", state_reasons=[LAGGING, "another reason."], state_since=timezone.now())
    client.force_login(admin)
    html = client.get("/").content.decode()
    assert f'<dt>Why</dt><dd class="reason">{LAGGING}</dd>' in html
    assert "another reason." not in html


def test_an_unknown_card_says_unknown_and_since_when_not_none(client, admin):
    make(
        "unknown",
        roles=("unknown", "unknown"),
        state_reasons=[NOTHING_ANSWERED],
        state_since=timezone.now() - timedelta(minutes=2),
        last_checked=timezone.now(),
    )
    client.force_login(admin)
    html = client.get("/").content.decode()
    assert "unknown (last known: node1)" in html
    assert "no answer since <time" in html and "2 min ago" in html
    for outage in ('<span class="error-text">none</span>', "✖ down", "no write backend up"):
        assert outage not in html, outage
    assert html.count('<span class="empty">no answer</span>') == 2  # node1 and node2
    assert "the console&#x27;s own network may be cut off" in html


def test_a_healthy_card_has_no_why_line(client, admin):
    make("healthy", state_since=timezone.now())
    client.force_login(admin)
    assert "<dt>Why</dt>" not in client.get("/").content.decode()


def test_the_api_answers_the_reasons_and_since_when(api):
    since = timezone.now() - timedelta(minutes=3)
    cluster = make("down", state_reasons=[WRITES_NOWHERE], state_since=since)
    listed = api.get("/api/v1/clusters/").json()[0]
    detail = api.get(f"/api/v1/clusters/{cluster.pk}/").json()
    for answer in (listed, detail):
        assert answer["state_reasons"] == [WRITES_NOWHERE]
        answered = parse_datetime(answer["state_since"])
        assert abs(answered - since) < timedelta(milliseconds=1)  # JSON keeps milliseconds
