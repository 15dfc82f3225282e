"""GET /api/v1/clusters/{id}/events/: newest first, filters, a cursor that holds while events
keep coming, and 400s that name the bad parameter."""

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from clusters.alerts.events import event_record
from clusters.models import Cluster, ClusterEvent
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def cluster():
    return three_node_cluster(state="healthy")[0]


def add(cluster, kind: str = "node_down", minutes: float = 0, **fields) -> ClusterEvent:
    fields.setdefault("summary", f"{kind} at +{minutes} min")
    return ClusterEvent.objects.create(
        cluster=cluster, kind=kind, at=T0 + timedelta(minutes=minutes), **fields
    )


def url(cluster, **query) -> str:
    args = "&".join(f"{k}={quote(str(v), safe=',')}" for k, v in query.items())
    return f"/api/v1/clusters/{cluster.pk}/events/" + (f"?{args}" if args else "")


def test_events_come_newest_first_with_every_field_and_no_other_clusters(api, cluster):
    failover = add(
        cluster,
        "failover",
        minutes=5,
        severity="critical",
        summary="failover from node1 to node2",
        old_primary="node1",
        new_primary="node2",
        downtime_s=23.4,
        lost_bytes=0,
        details={"promoted_at": "2026-03-01T12:05:01+00:00"},
    )
    add(cluster, "node_down", minutes=1, node="node1", severity="warning")
    other = Cluster.objects.create(name="pg2")
    add(other, "node_down", minutes=9)
    response = api.get(url(cluster))
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [e["kind"] for e in body["events"]] == ["failover", "node_down"]
    assert body["events"][0] == {
        "id": failover.pk,
        "cluster": cluster.pk,
        "at": "2026-03-01T12:05:00+00:00",
        "kind": "failover",
        "severity": "critical",
        "node": None,
        "summary": "failover from node1 to node2",
        "old_primary": "node1",
        "new_primary": "node2",
        "downtime_s": 23.4,
        "lost_bytes": 0,
        "details": {"promoted_at": "2026-03-01T12:05:01+00:00"},
        "incident": None,  # made by hand: in no incident
    }
    assert body["events"][1]["node"] == "node1"


def test_an_event_recorded_by_event_record_is_answered(api, cluster):
    event_record(cluster, "rejoin", "node1 streams again as a standby", node="node1")
    (event,) = api.get(url(cluster)).json()["events"]
    assert (event["kind"], event["node"], event["severity"]) == ("rejoin", "node1", "info")


def test_pages_follow_the_cursor_to_the_end_and_the_default_limit_is_50(api, cluster):
    for i in range(120):
        add(cluster, minutes=i)
    seen, cursor, sizes = [], None, []
    while True:
        body = api.get(url(cluster, **({"cursor": cursor} if cursor else {}))).json()
        sizes.append(len(body["events"]))
        seen += [e["id"] for e in body["events"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert sizes == [50, 50, 20]
    expected = list(ClusterEvent.objects.order_by("-at", "-pk").values_list("pk", flat=True))
    assert seen == expected


def test_the_cursor_holds_while_new_events_are_recorded_and_times_tie(api, cluster):
    """Offsets would shift by the 5 new events and answer 5 events twice; ties in `at` are
    ordered by id, so none is skipped or repeated either."""
    for _ in range(7):
        add(cluster, minutes=0)  # seven events at the very same time
    for i in range(1, 4):
        add(cluster, minutes=-i)
    first = api.get(url(cluster, limit=4)).json()
    for i in range(5):
        add(cluster, "node_up", minutes=60 + i)  # recorded meanwhile: newer than every page
    seen = [e["id"] for e in first["events"]]
    cursor = first["next"]
    while cursor:
        body = api.get(url(cluster, limit=4, cursor=cursor)).json()
        seen += [e["id"] for e in body["events"]]
        cursor = body["next"]
    older = ClusterEvent.objects.exclude(kind="node_up").order_by("-at", "-pk")
    assert seen == list(older.values_list("pk", flat=True))
    assert len(seen) == len(set(seen)) == 10


def test_a_page_that_ends_exactly_at_the_last_event_says_there_is_no_next(api, cluster):
    for i in range(3):
        add(cluster, minutes=i)
    assert api.get(url(cluster, limit=3)).json()["next"] is None
    assert api.get(url(cluster, limit=2)).json()["next"] is not None


def test_filters_by_kind_severity_and_time(api, cluster):
    add(cluster, "failover", minutes=0, severity="critical")
    add(cluster, "node_down", minutes=10, severity="warning")
    add(cluster, "lag_high", minutes=20, severity="warning")
    add(cluster, "node_up", minutes=30)

    def kinds(**query) -> list[str]:
        response = api.get(url(cluster, **query))
        assert response.status_code == 200, response.json()
        return [e["kind"] for e in response.json()["events"]]

    assert kinds(kind="node_down,node_up") == ["node_up", "node_down"]
    assert kinds(severity="warning") == ["lag_high", "node_down"]
    assert kinds(severity="warning", kind="lag_high") == ["lag_high"]
    assert kinds(since="2026-03-01T12:10:00Z") == ["node_up", "lag_high", "node_down"]  # inclusive
    assert kinds(until="2026-03-01T12:20:00+00:00") == ["node_down", "failover"]  # exclusive
    # An offset is honoured; a time without one is UTC.
    both = kinds(since="2026-03-01T13:05:00+01:00", until="2026-03-01T12:25:00")
    assert both == ["lag_high", "node_down"]
    assert kinds(since="2026-03-02") == []  # a date: its midnight, UTC
    # A '+' typed into a query string unencoded arrives as a space.
    plus_as_space = f"/api/v1/clusters/{cluster.pk}/events/?since=2026-03-01T13:25:00+01:00"
    assert [e["kind"] for e in api.get(plus_as_space).json()["events"]] == ["node_up"]
    repeated = f"/api/v1/clusters/{cluster.pk}/events/?kind=failover&kind=node_up"
    assert [e["kind"] for e in api.get(repeated).json()["events"]] == ["node_up", "failover"]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"kind": "explosion"}, "kind", "Unknown kind 'explosion'"),
        ({"kind": "failover,nope"}, "kind", "Unknown kind 'nope'"),
        ({"severity": "fatal"}, "severity", "use one of info, warning, critical"),
        ({"since": "yesterday"}, "since", "ISO 8601"),
        ({"until": "2026-13-01T00:00:00Z"}, "until", "ISO 8601"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until", "after since"),
        ({"limit": "0"}, "limit", "from 1 to 500"),
        ({"limit": "501"}, "limit", "from 1 to 500"),
        ({"limit": "ten"}, "limit", "from 1 to 500"),
        ({"cursor": "not-a-cursor"}, "cursor", "pass an answer's `next` unchanged"),
        ({"cursor": "MjAyNi0wMy0wMVQxMjowMDowMHxhYmM"}, "cursor", "Not a cursor"),  # pk "abc"
    ],
)
def test_bad_query_values_are_a_400_naming_the_field(api, cluster, query, field, words):
    response = api.get(url(cluster, **query))
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "field_errors"}
    assert words in " ".join(body["field_errors"][field])


def test_every_bad_field_is_named_at_once(api, cluster):
    response = api.get(url(cluster, kind="x", limit="0", since="never"))
    assert set(response.json()["field_errors"]) == {"kind", "limit", "since"}


def test_a_viewer_reads_events_and_an_unknown_cluster_is_a_json_404(
    client, django_user_model, cluster
):
    add(cluster)
    viewer = api_client(client, make_user(django_user_model, "watcher", "viewer"))
    assert len(viewer.get(url(cluster)).json()["events"]) == 1
    missing = viewer.get("/api/v1/clusters/999999/events/")
    assert missing.status_code == 404 and "error" in missing.json()
    assert client.get(url(cluster)).status_code == 401  # no token


def test_the_limit_may_go_up_to_500(api, cluster):
    ClusterEvent.objects.bulk_create(
        ClusterEvent(cluster=cluster, kind="node_up", at=T0 + timedelta(seconds=i), summary="up")
        for i in range(501)
    )
    body = api.get(url(cluster, limit=500)).json()
    assert len(body["events"]) == 500 and body["next"] is not None
    rest = api.get(url(cluster, limit=500, cursor=body["next"])).json()
    assert len(rest["events"]) == 1 and rest["next"] is None


def test_every_clusters_events_filtered_by_cluster_name_or_id(api, cluster):
    other = Cluster.objects.create(name="pg2")
    third = Cluster.objects.create(name="pg3")
    mine = add(cluster, "failover", minutes=1)
    theirs = add(other, "node_down", minutes=2)
    add(third, "node_down", minutes=3)
    every = api.get("/api/v1/events/").json()["events"]
    assert [e["cluster"] for e in every] == [third.pk, other.pk, cluster.pk]
    chosen = api.get(f"/api/v1/events/?cluster={cluster.name},{other.pk}").json()["events"]
    assert [e["id"] for e in chosen] == [theirs.pk, mine.pk]
    kind = api.get("/api/v1/events/?kind=failover").json()["events"]
    assert [e["id"] for e in kind] == [mine.pk]


def test_every_clusters_events_name_each_unknown_cluster(api, cluster):
    response = api.get("/api/v1/events/?cluster=nope&cluster=999999&severity=loud")
    assert response.status_code == 400
    body = response.json()
    assert body["field_errors"]["cluster"] == ["No cluster 'nope'.", "No cluster '999999'."]
    assert "severity" in body["field_errors"]
