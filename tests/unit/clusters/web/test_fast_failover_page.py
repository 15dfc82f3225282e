"""The fast-failover page (issue 21): which nodes the witness may fence and why the others keep
the lease path, the agent's decisions, and the setting (admins; a change runs setup)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import AuditEntry, Cluster, ClusterEvent, FenceDevice
from jobs.models import Job
from tests.conftest import make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def pg() -> Cluster:
    cluster, nodes = three_node_cluster(state=Cluster.State.HEALTHY)
    FenceDevice.objects.create(
        node=nodes[0],
        method="redfish",
        options={"ip": "198.18.0.1"},
        secret="s3cret-bmc",
        last_test_at=timezone.now(),
        last_test_ok=True,
        last_test_result="Status: ON",
    )
    FenceDevice.objects.create(
        node=nodes[1],
        method="redfish",
        options={"ip": "198.18.0.1"},
        last_test_ok=False,
        last_test_result="Unable to connect",
    )
    return cluster


def page(cluster: Cluster) -> str:
    return f"/clusters/{cluster.pk}/fast-failover/"


def test_the_page_says_which_node_is_armed_and_why_the_other_is_not(client, django_user_model, pg):
    client.force_login(make_user(django_user_model, "vic", "viewer"))
    shown = client.get(page(pg)).content.decode()
    assert "Off: an unplanned failover waits" in shown
    Cluster.objects.filter(pk=pg.pk).update(fast_failover=True)
    shown = client.get(page(pg)).content.decode()
    assert "On: the witness may fence node1" in shown and "node2 keeps the lease path" in shown
    assert "last test failed (Unable to connect)" in shown
    assert "s3cret-bmc" not in shown
    assert "Setting" not in shown  # a viewer does not get the form
    assert "Fast failover</a>: on" in client.get(f"/clusters/{pg.pk}/").content.decode()


def test_decisions_are_listed_newest_first(client, django_user_model, pg):
    now = timezone.now()
    for minutes, outcome in ((10, "declined"), (1, "acted")):
        ClusterEvent.objects.create(
            cluster=pg,
            kind="fast_failover",
            at=now - timedelta(minutes=minutes),
            summary="Fast failover",
            details={
                "outcome": outcome,
                "sentence": f"{outcome} because",
                "timings_ms": {"total": 2},
            },
        )
    client.force_login(make_user(django_user_model, "vic", "viewer"))
    shown = client.get(page(pg)).content.decode()
    assert shown.index("acted because") < shown.index("declined because")
    assert "total 2 ms" in shown


def test_an_admin_turns_it_on_and_setup_runs_to_apply_it(client, django_user_model, pg):
    client.force_login(make_user(django_user_model, "ada", "admin"))
    response = client.post(page(pg), {"fast_failover": "on", "window_minutes": "30"})
    job = Job.objects.get(cluster=pg, kind="setup")
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    pg.refresh_from_db()
    assert pg.fast_failover and pg.fast_failover_window_s == 1800
    assert AuditEntry.objects.filter(action="fast_failover.set", result="ok").exists()
    # Saving the same again changes nothing and runs nothing.
    client.post(page(pg), {"fast_failover": "on", "window_minutes": "30"})
    assert Job.objects.filter(cluster=pg, kind="setup").count() == 1


@pytest.mark.parametrize("window", ["", "0", "-5", "ten", "20000"])
def test_a_bad_window_is_refused_and_nothing_changes(client, django_user_model, pg, window):
    client.force_login(make_user(django_user_model, "ada", "admin"))
    response = client.post(page(pg), {"fast_failover": "on", "window_minutes": window})
    assert response.status_code == 200 and "whole number of minutes" in response.content.decode()
    pg.refresh_from_db()
    assert not pg.fast_failover and not Job.objects.exists()


def test_a_refused_setup_saves_nothing(client, django_user_model, pg):
    Job.objects.create(cluster=pg, kind="switchover", status="running")
    client.force_login(make_user(django_user_model, "ada", "admin"))
    response = client.post(page(pg), {"fast_failover": "on", "window_minutes": "60"})
    assert response.status_code == 200 and "Not saved" in response.content.decode()
    pg.refresh_from_db()
    assert not pg.fast_failover


def test_an_operator_may_not_change_it(client, django_user_model, pg):
    client.force_login(make_user(django_user_model, "opal", "operator"))
    response = client.post(page(pg), {"fast_failover": "on", "window_minutes": "60"})
    assert response.status_code == 403
    pg.refresh_from_db()
    assert not pg.fast_failover
