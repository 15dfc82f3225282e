"""The Backups section's buttons: Configure, Full and Differential backup now, each starting
its job from the page (the API's POST /clusters/{id}/jobs/ twin), disabled with the reason
when the job would refuse."""

import pytest

from clusters.inventory.backups import backup_policy_set
from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import Cluster
from jobs.models import Job
from tests.conftest import make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    client.force_login(make_user(django_user_model, "olga", "operator"))
    return client


def page(client, cluster: Cluster) -> str:
    return client.get(f"/clusters/{cluster.pk}/").content.decode()


def test_no_buttons_until_backups_are_turned_on(operator):
    cluster, _ = three_node_cluster(state=Cluster.State.HEALTHY)
    assert "Full backup now" not in page(operator, cluster)


def test_a_full_backup_starts_from_the_page_with_its_type(operator):
    cluster, _ = three_node_cluster(state=Cluster.State.HEALTHY)
    cluster_tls_ensure(cluster=cluster)
    backup_policy_set(cluster=cluster, data={})
    html = page(operator, cluster)
    assert 'name="backup_type" value="diff"' in html and "Configure backups" in html
    answer = operator.post(
        f"/clusters/{cluster.pk}/jobs/",
        {"kind": "backup", "backup_type": "diff", "ignored": "x"},
    )
    assert answer.status_code == 302
    job = Job.objects.get(cluster=cluster, kind="backup")
    assert job.params == {"backup_type": "diff"}


def test_on_a_cluster_that_is_down_the_buttons_say_why(operator):
    cluster, _ = three_node_cluster(state=Cluster.State.DOWN)
    cluster_tls_ensure(cluster=cluster)
    backup_policy_set(cluster=cluster, data={})
    html = page(operator, cluster)
    assert 'aria-describedby="off-backup-full">Full backup now</span>' in html
    assert "needs a running cluster: pg1 is down" in html
