"""The dashboard, the cluster page and its confirmations: what each role sees, what the
dashboard's refresh returns, sparklines and the lag chart's data. Pages only read the database."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from clusters.models import Cluster, ClusterEvent, Credential, NodeStatus, StatusSample
from clusters.monitoring.lag_history import SPARK_MINUTES, lag_minutes_add, lag_minutes_series
from clusters.templatetags.hacenter_ui import lsn
from clusters.web.sparkline import sparkline_path
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    cluster, nodes = three_node_cluster(state="healthy", last_checked=timezone.now())
    now = timezone.now()
    for i, node in enumerate(nodes):
        if node.kind == "database":
            NodeStatus.objects.create(
                node=node,
                role="primary" if i == 0 else "replica",
                state="running" if i == 0 else "streaming",
                timeline=3,
                wal_position=(0x16 << 32) + 0xB374D848,
                lag_bytes=None if i == 0 else 2048,
                lag_seconds=None if i == 0 else 0.4,
                proxy_status="UP" if i == 0 else "DOWN",
                last_seen=now,
                lag_minutes=[] if i == 0 else history_of(now, {15: 15000, 10: 10000, 1: 1000}),
            )
            for minutes in (15, 10, 5, 1):
                StatusSample.objects.create(
                    node=node,
                    at=now - timedelta(minutes=minutes),
                    up=True,
                    role="primary" if i == 0 else "replica",
                    lag_bytes=0 if i == 0 else minutes * 1000,
                    lag_seconds=0.1 * minutes,
                )
    ClusterEvent.objects.create(
        cluster=cluster, kind="switchover", at=now, summary="switchover from node2 to node1"
    )
    return cluster


def history_of(now, worst_by_minutes_ago: dict[int, int]) -> list[list[int]]:
    """A status row's sparkline minutes, as the monitor would have kept them."""
    history: list[list[int]] = []
    for minutes_ago, worst in sorted(worst_by_minutes_ago.items(), reverse=True):
        history = lag_minutes_add(history, now - timedelta(minutes=minutes_ago), worst)
    return history


def user_with(django_user_model, role: str | None):
    user = django_user_model.objects.create_user(f"u-{role}", password="pw-123456789")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def test_dashboard_card_shows_state_in_words_lag_sparkline_proxy_and_event(
    client, django_user_model, cluster
):
    client.force_login(user_with(django_user_model, "viewer"))
    html = client.get("/").content.decode()
    assert 'data-state="healthy"' in html and "Healthy" in html
    assert "2 KiB · 0.4 s" in html
    assert '<svg class="spark"' in html and "lag of node2, last 20 minutes" in html
    assert "writes → node1" in html
    assert "switchover from node2 to node1" in html
    assert 'hx-trigger="every 3s"' in html


def test_dashboard_refresh_returns_the_cards_alone_and_follows_the_database(
    client, django_user_model, cluster
):
    client.force_login(user_with(django_user_model, "viewer"))
    NodeStatus.objects.filter(node__name="node2").update(role="unknown", state="down")
    Cluster.objects.filter(pk=cluster.pk).update(state="degraded")
    response = client.get("/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="triage">') and "<html" not in html
    assert 'data-state="degraded"' in html and "✖ down" in html
    assert "HX-Request" in response["Vary"]


def test_empty_dashboard_says_what_to_do_next(client, django_user_model):
    admin = django_user_model.objects.create_superuser("a", password="pw-123456789")
    client.force_login(admin)
    assert "setup wizard" in client.get("/").content.decode()


def test_cluster_page_topology_lsn_and_role_gated_actions(client, django_user_model, cluster):
    client.force_login(user_with(django_user_model, "viewer"))
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "16/B374D848" in html and "streams from node1" in html
    assert "Switch over" not in html and "Rebuild as standby" not in html
    assert "Remove the cluster" not in html and "Reveal connection" not in html
    assert client.get(f"/clusters/{cluster.pk}/confirm/switchover/").status_code == 403

    client.force_login(user_with(django_user_model, "operator"))
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "Switch over" in html and "Rebuild as standby" in html and "Safe restart" in html
    assert "Remove the cluster" not in html and "Run setup again" not in html


def test_a_node_that_needs_it_gets_a_prominent_rebuild(client, django_user_model, cluster):
    NodeStatus.objects.filter(node__name="node2").update(role="unknown", state="stopped")
    client.force_login(user_with(django_user_model, "operator"))
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    # Recommended, so the main button style: danger is kept for removals.
    rebuild = f'href="/clusters/{cluster.pk}/confirm/rebuild/?node=node2"'
    assert f'class="button rebuild recommended" {rebuild}' in html
    assert f'class="button danger" href="/clusters/{cluster.pk}/confirm/rebuild/' not in html
    assert "needs a rebuild" in html and "not streaming" in html


def test_confirmation_names_the_consequence_and_posts_the_job(client, django_user_model, cluster):
    client.force_login(user_with(django_user_model, "operator"))
    html = client.get(f"/clusters/{cluster.pk}/confirm/switchover/?node=node2").content.decode()
    assert "node1 hands the primary role to node2" in html and "Writes stop" in html
    assert 'name="kind" value="switchover"' in html and 'name="node" value="node2"' in html
    html = client.get(f"/clusters/{cluster.pk}/confirm/failover/?node=node2").content.decode()
    assert "are lost" in html and 'name="confirm"' in html


def test_lag_series_for_the_chart(client, django_user_model, cluster):
    client.force_login(user_with(django_user_model, "viewer"))
    data = client.get(f"/clusters/{cluster.pk}/lag/?range=1h").json()
    # Samples 15, 10, 5 and 1 minutes ago: minutes apart, so a null row between each two (the
    # chart breaks its lines there rather than drawing across time without a reading).
    assert data["nodes"] == ["node1", "node2"] and len(data["t"]) == 7
    assert data["bytes"][1] == [15000, None, 10000, None, 5000, None, 1000]
    assert [e["kind"] for e in data["events"]] == ["switchover"]
    assert data["threshold_label"] == "alert threshold 16 MiB"
    assert data["y"]["labels"][-1].endswith("KiB") and data["x"]["ticks"]
    day = client.get(f"/clusters/{cluster.pk}/lag/?range=1d").json()
    assert day["range"] == "1d" and len(day["t"]) == 7


def test_sparkline_breaks_at_gaps_and_lsn_prints_as_postgres_does():
    # The shared log scale: 1 KiB and less on the baseline (y 26), 1 GiB at the top (y 2),
    # 32 MiB (2^15 KiB) three quarters of the way up.
    path = sparkline_path([0, 1024**3, None, 32 * 1024**2])
    assert path.count("M") == 2 and path.startswith("M0.0 26.0 L40.0 2.0")
    assert path.endswith("M120.0 8.0 h-4")  # a lone point is a short dash, not invisible
    assert sparkline_path([None, None]) == ""
    assert lsn(0x16_B374D848) == "16/B374D848" and lsn(None) == "—"


def test_node_changes_show_for_admins_and_remove_asks_for_the_node_name(
    client, django_user_model, cluster
):
    client.force_login(user_with(django_user_model, "operator"))
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "Add a node" not in html and "/replace/" not in html
    assert client.get(f"/clusters/{cluster.pk}/nodes/new/").status_code == 403

    client.force_login(user_with(django_user_model, "admin"))
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "Add a node" in html and f"/clusters/{cluster.pk}/nodes/node2/replace/" in html
    confirm = client.get(f"/clusters/{cluster.pk}/confirm/remove_node/?node=node2")
    assert "Type <code>node2</code> to confirm (the node's name)" in confirm.content.decode()


def test_add_node_needs_the_fingerprint_ticked_then_starts_the_job(
    client, django_user_model, cluster, django_capture_on_commit_callbacks
):
    from clusters.models import ScannedHostKey

    fingerprint = "SHA256:" + "d" * 43
    ScannedHostKey.objects.create(
        address="198.18.0.20",
        port=22,
        key_type="ssh-ed25519",
        base64="AAAA",
        fingerprint=fingerprint,
    )
    client.force_login(user_with(django_user_model, "admin"))
    typed = {
        "name": "node3",
        "address": "198.18.0.20",
        "ssh_port": "22",
        "credential": str(Credential.objects.get().pk),
        "fingerprint": fingerprint,
        "action": "confirm",
    }
    html = client.post(f"/clusters/{cluster.pk}/nodes/new/", typed).content.decode()
    assert "then tick" in html and 'value="198.18.0.20"' in html
    assert not cluster.nodes.filter(name="node3").exists()
    bad = dict(typed, confirm="1", name="Node 3")
    html = client.post(f"/clusters/{cluster.pk}/nodes/new/", bad).content.decode()
    assert "lower-case letters" in html and not cluster.nodes.filter(address="198.18.0.20")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/clusters/{cluster.pk}/nodes/new/", dict(typed, confirm="1"))
    job = cluster.jobs.get(kind="add_node")
    assert response.url == f"/jobs/{job.pk}/" and job.node.name == "node3"
    assert job.node.host_key_fingerprint == fingerprint


def test_job_page_shows_overall_progress_and_the_base_backup_percentage(
    client, django_user_model, cluster
):
    from jobs.models import Job, Step

    job = Job.objects.create(kind="rebuild", cluster=cluster, status="running")
    for position, (status, progress) in enumerate(
        [("succeeded", None), ("running", 40), ("pending", None), ("pending", None)], start=1
    ):
        Step.objects.create(
            job=job,
            position=position,
            name=f"s{position}",
            title="Copy the primary" if progress else f"step {position}",
            status=status,
            progress=progress,
        )
    client.force_login(user_with(django_user_model, "viewer"))
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'aria-label="Copy the primary: 40 percent"' in html
    assert 'max="100" value="35"' in html  # (1 + 0.4) of 4 steps
    partial = client.get(f"/jobs/{job.pk}/steps/", HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<section id="job-steps"') and "every 1s" in partial


def test_job_actions_follow_the_status_and_the_role(client, django_user_model, cluster):
    from jobs.models import Job

    job = Job.objects.create(kind="switchover", cluster=cluster, status="running")
    client.force_login(user_with(django_user_model, "operator"))
    steps = f"/jobs/{job.pk}/steps/"
    assert "Cancel job" in client.get(steps, HTTP_HX_REQUEST="true").content.decode()
    Job.objects.filter(pk=job.pk).update(status="failed")
    html = client.get(steps, HTTP_HX_REQUEST="true").content.decode()
    assert "Cancel job" not in html and "Retry from the failed step" in html
    client.force_login(user_with(django_user_model, "viewer"))
    assert "Retry" not in client.get(f"/jobs/{job.pk}/").content.decode()


def test_sparkline_minutes_keep_each_minutes_worst_and_gaps_and_drop_old_ones():
    now = timezone.now().replace(second=30, microsecond=0)
    history = lag_minutes_add([], now - timedelta(minutes=30), 999)  # outside the window
    history = lag_minutes_add(history, now - timedelta(minutes=2), 500)
    history = lag_minutes_add(history, now, 300)
    history = lag_minutes_add(history, now + timedelta(seconds=10), 700)  # same minute: worst
    history = lag_minutes_add(history, now + timedelta(seconds=20), 100)
    assert [worst for _minute, worst in history] == [500, 700]
    assert lag_minutes_add(history, now, None) == history  # not answering: nothing to add
    series = lag_minutes_series(history, now)
    assert len(series) == SPARK_MINUTES
    assert series[-3:] == [500, None, 700]  # the silent minute is a gap, not zero
    later = now + timedelta(minutes=SPARK_MINUTES)
    assert lag_minutes_add(history, later, 5) == [[int(later.timestamp()) // 60 * 60, 5]]


def test_the_dashboard_refresh_draws_sparklines_without_reading_samples(
    client, django_user_model, cluster
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(user_with(django_user_model, "viewer"))
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/", HTTP_HX_REQUEST="true").content.decode()
    assert "lag of node2, last 20 minutes" in html and 'class="spark"' in html
    assert not [q for q in queries if "statussample" in q["sql"]]


def test_relative_times_read_naturally():
    from clusters.templatetags.hacenter_ui import relative

    assert relative(2) == "just now" and relative(42) == "42 s ago"
    assert relative(3 * 60 + 5) == "3 min ago" and relative(5 * 3600) == "5 h ago"
    assert relative(2 * 86400) == "2 days ago" and relative(-120) == "in 2 min"


def test_dashboard_cards_escape_what_they_show(client, django_user_model, cluster):
    """The cards are drawn in Python (clusters/web/dashboard_cards.py): every value is escaped."""
    ClusterEvent.objects.create(
        cluster=cluster,
        kind="alarm",
        at=timezone.now() + timedelta(seconds=1),
        summary='<img src=x onerror="alert(1)"> & more',
    )
    NodeStatus.objects.filter(node__name="node2").update(state="<b>streaming</b>")
    client.force_login(user_with(django_user_model, "viewer"))
    html = client.get("/", HTTP_HX_REQUEST="true").content.decode()
    assert "<img" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more" in html
    assert "&lt;b&gt;streaming&lt;/b&gt;" in html
