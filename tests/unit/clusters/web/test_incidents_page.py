"""An incident told on the cluster page and the dashboard: its timeline, measures and the one
recommended next action, from what the monitor recorded (fed by hand-built readings)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import ClusterEvent, Incident, NodeStatus
from clusters.web.incident_selectors import (
    HOST_UP_GRACE,
    REJOIN_GRACE,
    REPLACE_AFTER,
    incident_rebuild,
    incident_recommendation,
    incident_story,
)
from jobs.models import Job, JobStatus
from tests.conftest import make_user
from tests.unit.clusters.alerts.test_incidents import (
    age_healthy_stretch,
    node1_back_reading,
    primary_silent_reading,
    promoted_reading,
)
from tests.unit.clusters.monitoring.test_monitor_rounds import (
    failed_over_reading,
    healthy_reading,
    make_cluster,
    one_wave,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_over():
    """A cluster whose primary node1 was powered off: node2 promoted and routed, node1 gone."""
    cluster = make_cluster()
    one_wave([cluster], healthy_reading(position=1000))
    one_wave([cluster], primary_silent_reading())
    one_wave([cluster], failed_over_reading())
    one_wave([cluster], promoted_reading(timezone.now().isoformat()))
    return cluster


def keys_and_states(story: dict) -> list[tuple[str, str]]:
    return [(m.key, m.state) for m in story["timeline"]]


def test_the_timeline_fills_in_as_the_failover_happens(failed_over):
    story = incident_story(Incident.objects.get(cluster=failed_over))
    assert keys_and_states(story) == [
        ("last_healthy", "done"),
        ("detected", "done"),
        ("promoted", "done"),
        ("routed", "done"),
        ("old_back", "not_yet"),
        ("rebuilt", "not_yet"),
    ]
    times = [m.after_s for m in story["timeline"] if m.at]
    assert times[0] == 0.0 and all(t >= 0 for t in times)
    assert story["timeline"][2].label == "leader key expired, node2 promoted"
    one_wave([failed_over], node1_back_reading())
    story = incident_story(Incident.objects.get(cluster=failed_over))
    assert keys_and_states(story)[4:] == [("old_back", "done"), ("rebuilt", "not_needed")]
    assert story["timeline"][5].note == "it rejoined by itself"


def test_a_successful_rebuild_of_the_old_primary_is_the_last_milestone(failed_over):
    incident = Incident.objects.get(cluster=failed_over)
    node1 = failed_over.nodes.get(name="node1")
    job = Job.objects.create(
        kind="rebuild",
        cluster=failed_over,
        node=node1,
        status=JobStatus.SUCCEEDED,
        finished=timezone.now(),
    )
    assert incident_rebuild(incident) == job
    story = incident_story(incident)
    rebuilt = story["timeline"][-1]
    assert (rebuilt.state, rebuilt.note) == ("done", f"job #{job.pk}")
    # The monitor has not read it streaming yet: no second rebuild is recommended.
    old = NodeStatus(role="replica", state="running", last_seen=timezone.now())
    found = incident_recommendation(incident, old, story["timeline"])
    assert found.code == "wait" and "was rebuilt" in found.text


def test_a_closed_incident_says_what_was_never_recorded(failed_over):
    incident = Incident.objects.get(cluster=failed_over)
    Incident.objects.filter(pk=incident.pk).update(closed=timezone.now())
    story = incident_story(Incident.objects.get(pk=incident.pk))
    assert ("old_back", "not_recorded") in keys_and_states(story)
    assert story["recommendation"].code == "none"


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        ({"state": "down", "last_seen_ago": timedelta(minutes=2)}, "bring_back", "Bring node1"),
        ({"state": "down", "last_seen_ago": REPLACE_AFTER}, "replace", "Replace node1"),
        ({"state": "running", "fenced": True}, "rebuild", "it is fenced"),
        ({"state": "running", "back_ago": REJOIN_GRACE}, "rebuild", "does not stream"),
        ({"state": "running", "back_ago": timedelta(seconds=10)}, "wait", "rejoining"),
        ({"state": "streaming"}, "wait", "streams again"),
        # The server answers (SSH) while its PostgreSQL does not: a boot's grace, then rebuild.
        ({"state": "down", "host_up_ago": timedelta(seconds=5)}, "wait", "waiting for its Patroni"),
        ({"state": "down", "host_up_ago": HOST_UP_GRACE}, "rebuild", "have not started for 60 s"),
    ],
)
def test_the_recommendation_follows_the_old_primarys_facts(failed_over, status, code, words):
    now = timezone.now()
    incident = Incident.objects.get(cluster=failed_over)
    old = NodeStatus(
        role="replica" if status["state"] != "down" else "unknown",
        state=status["state"],
        fenced=status.get("fenced", False),
        fence_reason="accepts writes but node2 holds the leader key",
        last_seen=now - status.get("last_seen_ago", timedelta(0)),
        host_up_since=now - status["host_up_ago"] if "host_up_ago" in status else None,
    )
    timeline = incident_story(incident)["timeline"]
    if "back_ago" in status:
        timeline = [
            m if m.key != "old_back" else type(m)(**{**m.__dict__, "at": now - status["back_ago"]})
            for m in timeline
        ]
    found = incident_recommendation(incident, old, timeline, now)
    assert found.code == code and words in found.text
    if code == "rebuild":
        assert found.url == f"/clusters/{failed_over.pk}/confirm/rebuild/?node=node1"
        assert found.job_kind == "rebuild" and found.node == "node1"


def test_the_cluster_page_tells_the_open_incident_and_folds_its_events(
    client, django_user_model, failed_over
):
    client.force_login(make_user(django_user_model, "op", "operator"))
    NodeStatus.objects.filter(node__cluster=failed_over, node__name="node1").update(
        state="running", role="replica", fenced=True, fence_reason="kept out"
    )
    html = client.get(f"/clusters/{failed_over.pk}/").content.decode()
    assert 'id="incident"' in html and "Incident: failover from node1 to node2" in html
    assert 'hx-trigger="every 3s"' in html  # open: the timeline fills in as it happens
    assert "<details class" not in html  # open: drawn unfolded, so a redraw folds nothing
    assert "leader key expired, node2 promoted" in html and "not yet" in html
    assert f'href="/clusters/{failed_over.pk}/confirm/rebuild/?node=node1"' in html
    assert "Rebuild node1 as standby" in html
    # The events list: the incident is one row, its events folded under it.
    assert html.count('class="incident-row') == 1
    events = ClusterEvent.objects.filter(cluster=failed_over).count()
    assert f"({events} events)" in html
    assert "<details>" in html and "node1 stopped answering" in html


def test_a_viewer_reads_the_recommendation_without_its_button(
    client, django_user_model, failed_over
):
    client.force_login(make_user(django_user_model, "watcher", "viewer"))
    html = client.get(f"/clusters/{failed_over.pk}/").content.decode()
    assert "Bring node1 back (power, network); it will rejoin by itself." in html
    assert "/confirm/rebuild/" not in html


def test_the_incident_section_refreshes_alone_and_slows_once_resolved(
    client, django_user_model, failed_over
):
    client.force_login(make_user(django_user_model, "watcher", "viewer"))
    url = f"/clusters/{failed_over.pk}/incident/"
    part = client.get(url, HTTP_HX_REQUEST="true")
    html = part.content.decode()
    assert html.lstrip().startswith("<section") and "<html" not in html
    assert 'hx-trigger="every 3s"' in html and "HX-Request" in part["Vary"]
    one_wave([failed_over], node1_back_reading())
    incident = Incident.objects.get(cluster=failed_over)
    age_healthy_stretch(incident, timedelta(minutes=3))
    one_wave([failed_over], node1_back_reading())
    html = client.get(url, data={"shown": f"{incident.pk}-open"}, HTTP_HX_REQUEST="true")
    html = html.content.decode()
    assert "Last incident: failover from node1 to node2" in html and "resolved" in html
    assert 'hx-trigger="every 10s"' in html and "<details class" in html and " open>" not in html
    assert f"?shown={incident.pk}-closed" in html
    # Nothing new: no swap, so a reader's unfolding of the resolved incident stays.
    same = client.get(url, data={"shown": f"{incident.pk}-closed"}, HTTP_HX_REQUEST="true")
    assert same.status_code == 204
    plain = client.get(url)
    assert plain.status_code == 302 and plain["Location"].endswith("#incident")


def test_a_cluster_without_incidents_has_an_empty_polling_section(client, django_user_model):
    cluster = make_cluster()
    client.force_login(make_user(django_user_model, "watcher", "viewer"))
    url = f"/clusters/{cluster.pk}/incident/"
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 10s"' in html and "?shown=none" in html
    assert "incident-box" not in html
    assert client.get(url, data={"shown": "none"}, HTTP_HX_REQUEST="true").status_code == 204
    one_wave([cluster], healthy_reading())
    one_wave([cluster], failed_over_reading())  # a failover: the next poll draws it
    html = client.get(url, data={"shown": "none"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Incident: failover from node1 to node2" in html


def test_the_dashboard_card_shows_the_open_incident_in_constant_queries(
    client, django_user_model, failed_over, django_assert_max_num_queries
):
    client.force_login(make_user(django_user_model, "watcher", "viewer"))
    for _ in range(3):  # more clusters, no more queries
        make_cluster()
    with django_assert_max_num_queries(7):
        html = client.get("/").content.decode()
    assert "Incident: failover from node1 to node2" in html


def test_an_outage_without_a_hand_over_is_told_with_its_own_milestones(client, django_user_model):
    cluster = make_cluster()
    one_wave([cluster], healthy_reading())
    nowhere = healthy_reading()
    nowhere.proxy = {"primary": {"node1": "DOWN", "node2": "DOWN"}, "be_replicas": {"node2": "UP"}}
    one_wave([cluster], nowhere)
    story = incident_story(Incident.objects.get(cluster=cluster))
    assert keys_and_states(story) == [
        ("last_healthy", "done"),
        ("detected", "done"),
        ("routed", "not_yet"),
    ]
    assert story["recommendation"].code == "investigate"
    client.force_login(make_user(django_user_model, "watcher", "viewer"))
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "Incident: outage: HAProxy routes writes to no server: clients cannot write." in html
    assert "writes reach a primary again" in html and "none: no hand-over" in html
