"""The Backups section's buttons: Configure, Full and Differential backup now, each starting
its job from the page (the API's POST /clusters/{id}/jobs/ twin), disabled with the reason
when the job would refuse; and its Restore drill part (button, confirmation, history)."""

import pytest

from clusters.inventory.backups import backup_policy_set
from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import Cluster, ScannedHostKey
from jobs.models import Job, JobStatus, RestoreDrill
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


def test_the_restore_drill_part_says_why_it_cannot_run_then_links_to_its_confirmation(operator):
    cluster, nodes = three_node_cluster(state=Cluster.State.HEALTHY)
    cluster_tls_ensure(cluster=cluster)
    backup_policy_set(cluster=cluster, data={})
    html = page(operator, cluster)
    assert 'aria-describedby="off-restore-drill">Run restore drill</span>' in html
    assert "set a drill server first" in html and "No restore drill yet." in html
    ScannedHostKey.objects.create(
        address="198.18.0.40", port=22, key_type="ssh-ed25519", base64="AAAA", fingerprint="S:x"
    )
    backup_policy_set(
        cluster=cluster,
        data={
            "drill_address": "198.18.0.40",
            "drill_credential": nodes[0].credential_id,
            "drill_host_key_fingerprint": "S:x",
        },
    )
    assert "no successful backup yet" in page(operator, cluster)
    Job.objects.create(cluster=cluster, kind="backup", status=JobStatus.SUCCEEDED)
    html = page(operator, cluster)
    confirm = f"/clusters/{cluster.pk}/confirm/restore_drill/"
    assert f'href="{confirm}">Run restore drill</a>' in html, html
    assert "Yes, run the drill" in operator.get(confirm).content.decode()
    job = Job.objects.create(cluster=cluster, kind="restore_drill", status=JobStatus.SUCCEEDED)
    RestoreDrill.objects.create(
        cluster=cluster,
        job=job,
        target_address="198.18.0.40",
        backup_label="20261205-071500F",
        results=[{"table": "public.a", "rows": 3, "checksum": "1", "same": True}],
        outcome="passed",
        rto_seconds=7.4,
    )
    html = page(operator, cluster)
    assert 'data-outcome="passed"' in html and '<td data-label="RTO">7 s</td>' in html
    assert "public.a (3 rows)" in html and "20261205-071500F" in html
