"""The parameters page: the last reading, a change typed as postgresql.conf lines, its preview
with what will happen, the confirmation that starts the job, and the button disabled with the
reason when the cluster cannot run it."""

import pytest
from django.utils import timezone

from clusters.models import AuditEntry, Cluster
from jobs.models import Job
from tests.conftest import make_user
from tests.unit.clusters.web.parameter_snapshot import SNAPSHOT
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster() -> Cluster:
    cluster, _ = three_node_cluster(
        state=Cluster.State.HEALTHY, pg_parameters=SNAPSHOT, pg_parameters_read=timezone.now()
    )
    return cluster


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="root-password-123")
    client.force_login(user)
    return client


def url(cluster: Cluster) -> str:
    return f"/clusters/{cluster.pk}/parameters/"


def test_page_shows_each_nodes_values_and_pending_restarts(admin_client, cluster):
    page = admin_client.get(url(cluster)).content.decode()
    assert 'data-parameter="shared_buffers" class="pending"' in page
    assert "pending restart" in page
    assert "(hidden)" in page  # primary_conninfo: never its value
    assert 'name="kind" value="read_parameters"' in page
    assert (
        f'href="/clusters/{cluster.pk}/parameters/"'
        in admin_client.get(f"/clusters/{cluster.pk}/").content.decode()
    )


def test_preview_says_restart_needed_and_what_happens(admin_client, cluster):
    page = admin_client.post(
        url(cluster), {"changes": "shared_buffers = '256MB'\nwork_mem = 8MB", "action": "preview"}
    ).content.decode()
    assert "restart needed: rolling restart, standbys first, then a switchover" in page
    assert "<strong>restart needed</strong>" in page
    assert 'name="restart" value="yes"' in page
    assert "Yes, change and restart node by node" in page
    assert not Job.objects.exists()


def test_confirm_starts_the_job_and_audits_it(admin_client, cluster):
    response = admin_client.post(
        url(cluster), {"changes": "work_mem = 8MB", "restart": "no", "action": "confirm"}
    )
    job = Job.objects.get(kind="change_parameters")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.params == {"parameters": {"work_mem": "8MB"}, "restart": False}
    assert AuditEntry.objects.get(action="parameters.change").params["work_mem"] == "8MB"


def test_refused_parameters_are_named_on_the_page(admin_client, cluster):
    page = admin_client.post(
        url(cluster), {"changes": "wal_level = logical\nbroken", "action": "preview"}
    ).content.decode()
    assert "line 2" in page
    page = admin_client.post(
        url(cluster), {"changes": "wal_level = logical", "action": "preview"}
    ).content.decode()
    assert "HA Center sets it for replication and failover to work" in page


def test_confirm_button_is_disabled_with_the_reason_on_a_degraded_cluster(admin_client, cluster):
    Cluster.objects.filter(pk=cluster.pk).update(state=Cluster.State.DEGRADED)
    page = admin_client.post(
        url(cluster), {"changes": "shared_buffers = 256MB", "action": "preview"}
    ).content.decode()
    assert "a restart switches over and needs a healthy cluster: pg1 is degraded" in page
    assert 'disabled aria-describedby="why-not"' in page
    # A reload is fine on a degraded cluster.
    page = admin_client.post(
        url(cluster), {"changes": "work_mem = 8MB", "action": "preview"}
    ).content.decode()
    assert 'id="why-not"' not in page


def test_a_change_typed_over_several_lines_survives_the_preview(admin_client, cluster):
    page = admin_client.post(
        url(cluster), {"changes": "work_mem = 8MB\nlog_statement = ddl", "action": "preview"}
    ).content.decode()
    assert '<textarea name="changes" hidden>work_mem = 8MB\nlog_statement = ddl</textarea>' in page


def test_preview_is_disabled_with_the_reason_when_no_change_can_run(admin_client, cluster):
    Cluster.objects.filter(pk=cluster.pk).update(state=Cluster.State.DOWN)
    page = admin_client.get(url(cluster)).content.decode()
    assert "needs a running cluster: pg1 is down" in page
    assert 'value="preview" disabled aria-describedby="why-not"' in page


def test_a_viewer_finds_the_parameters_from_the_cluster_page(client, django_user_model, cluster):
    client.force_login(make_user(django_user_model, "vera", "viewer"))
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert f'<a href="/clusters/{cluster.pk}/parameters/">PostgreSQL parameters</a>' in page
    assert client.get(url(cluster)).status_code == 200
