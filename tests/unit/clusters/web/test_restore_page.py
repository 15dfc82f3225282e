"""The restore page: a point-in-time copy of the cluster onto a new server, or "clone as of
time T", started from the console like adding a node (scan, compare, type the address again);
the restore job checks everything again and refuses a member of any cluster."""

import pytest

from clusters.inventory.backups import backup_policy_set
from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import AuditEntry, Cluster, ScannedHostKey
from jobs.models import Job
from tests.conftest import make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db
SPARE = "198.18.0.40"


@pytest.fixture
def admin(client, django_user_model):
    client.force_login(make_user(django_user_model, "ada", "admin"))
    return client


@pytest.fixture
def cluster() -> Cluster:
    cluster, _ = three_node_cluster(state=Cluster.State.HEALTHY)
    cluster_tls_ensure(cluster=cluster)
    return cluster


def _scanned() -> str:
    ScannedHostKey.objects.create(
        address=SPARE, port=22, key_type="ssh-ed25519", base64="AAAA", fingerprint="SHA256:spare"
    )
    return "SHA256:spare"


def _confirm(admin, cluster, **fields):
    data = {
        "action": "confirm",
        "target_type": "time",
        "target": "2026-12-05 07:30:00+00",
        "address": SPARE,
        "ssh_port": "22",
        "credential": str(cluster.nodes.first().credential_id),
        "fingerprint": _scanned(),
        "compared": "1",
        "confirm_address": SPARE,
        **fields,
    }
    return admin.post(f"/clusters/{cluster.pk}/restore/", data)


def test_only_admins_and_only_with_backups(client, django_user_model, admin, cluster):
    operator = client.__class__()
    operator.force_login(make_user(django_user_model, "olga", "operator"))
    assert operator.get(f"/clusters/{cluster.pk}/restore/").status_code == 403
    page = admin.get(f"/clusters/{cluster.pk}/restore/").content.decode()
    assert "A restore cannot run now: backups are not turned on for pg1." in page
    backup_policy_set(cluster=cluster, data={})
    page = admin.get(f"/clusters/{cluster.pk}/restore/").content.decode()
    assert "cannot run now" not in page and "clone as of time T" in page


def test_a_scan_asks_a_worker_and_says_what_it_answered(admin, cluster, worker_calls):
    backup_policy_set(cluster=cluster, data={})
    page = admin.post(
        f"/clusters/{cluster.pk}/restore/",
        {"action": "scan", "address": SPARE, "ssh_port": "22", "target_type": "latest"},
    ).content.decode()
    assert worker_calls == [SPARE]
    assert "Could not read the host key: no worker in this test" in page
    bad = admin.post(
        f"/clusters/{cluster.pk}/restore/", {"action": "scan", "address": "not an address"}
    ).content.decode()
    assert worker_calls == [SPARE] and "field-error" in bad


def test_a_confirmed_restore_starts_the_job_with_the_apis_parameters(admin, cluster):
    backup_policy_set(cluster=cluster, data={})
    answer = _confirm(admin, cluster)
    job = Job.objects.get(cluster=cluster, kind="restore")
    assert answer.status_code == 302 and answer["Location"] == f"/jobs/{job.pk}/"
    assert job.params == {
        "address": SPARE,
        "ssh_port": 22,
        "credential": cluster.nodes.first().credential_id,
        "host_key_fingerprint": "SHA256:spare",
        "target_type": "time",
        "target": "2026-12-05 07:30:00+00",
        "confirm": SPARE,
    }
    entry = AuditEntry.objects.get(action="cluster.restore")
    assert entry.params["job"] == job.pk and entry.params["address"] == SPARE


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"confirm_address": "198.18.0.41"}, "type the target&#x27;s address to confirm"),
        ({"address": "198.18.0.11", "confirm_address": "198.18.0.11"}, "never goes onto a member"),
        ({"target": "yesterday"}, "a time is like 2026-12-05 07:30:00+00"),
        ({"compared": ""}, "Compare the fingerprint with the server"),
    ],
)
def test_a_wrong_restore_is_refused_and_nothing_runs(admin, cluster, fields, said):
    backup_policy_set(cluster=cluster, data={})
    page = _confirm(admin, cluster, **fields).content.decode()
    assert said in page, page
    assert not Job.objects.filter(kind="restore").exists()
