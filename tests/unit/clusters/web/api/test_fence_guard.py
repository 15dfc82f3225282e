"""Who may fence (issue 17): operators could start `fence` on any node, several at once, through
the API and the pages. Only the split-brain sentinel fences on its own; a person gets a guarded
admin action: typed confirmation, one at a time, never the leader or the only writable node."""

import pytest

from clusters.models import Cluster, Credential, Node, NodeStatus
from jobs import services
from jobs.models import Job, JobStatus
from tests.conftest import api_client, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def pg(db) -> Cluster:
    cred = Credential.objects.create(name="lab", username="root", password="pw-123456")
    cluster = Cluster.objects.create(name="pg1", last_leader="node1", state="healthy")
    for i, (name, kind) in enumerate(
        (("node1", "database"), ("node2", "database"), ("proxy", "proxy"))
    ):
        node = Node.objects.create(
            cluster=cluster,
            name=name,
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint="SHA256:" + "B" * 43,
        )
        if kind == "database":
            NodeStatus.objects.create(
                node=node, role="primary" if i == 0 else "replica", writable=i == 0
            )
    return cluster


def _fence(api, cluster: Cluster, node: str, **extra):
    return api.post(
        f"/api/v1/clusters/{cluster.pk}/jobs/", {"kind": "fence", "node": node, **extra}
    )


def test_an_operator_cannot_fence_through_the_api(client, django_user_model, pg):
    operator = api_client(client, make_user(django_user_model, "olga", "operator"))
    response = _fence(operator, pg, "node2", confirm="node2")
    assert response.status_code == 403 and "admin" in response.json()["error"]
    assert not Job.objects.exists()


def test_an_operator_cannot_fence_through_the_pages(client, django_user_model, pg):
    client.force_login(make_user(django_user_model, "olga", "operator"))
    response = client.post(
        f"/clusters/{pg.pk}/jobs/", {"kind": "fence", "node": "node2", "confirm": "node2"}
    )
    assert response.status_code == 403 and not Job.objects.exists()
    assert client.get(f"/clusters/{pg.pk}/confirm/fence/?node=node2").status_code == 403


def test_an_admin_must_type_the_nodes_name(api, pg):
    response = _fence(api, pg, "node2")
    assert response.status_code == 400
    assert "repeat the node's name in 'confirm'" in response.json()["error"]
    assert _fence(api, pg, "node2", confirm="node1").status_code == 400
    assert not Job.objects.exists()


def test_an_admin_cannot_fence_the_node_holding_the_leader_key(api, pg):
    response = _fence(api, pg, "node1", confirm="node1")
    assert response.status_code == 400 and "holds the leader key" in response.json()["error"]
    assert not Job.objects.exists()


def test_an_admin_cannot_fence_the_only_writable_node(api, pg):
    # The monitor last saw node2 as the leader's name but only node1 accepts writes.
    Cluster.objects.filter(pk=pg.pk).update(last_leader="node2")
    NodeStatus.objects.filter(node__name="node1").update(role="replica")
    response = _fence(api, pg, "node1", confirm="node1")
    assert response.status_code == 400
    assert "only node that accepts writes" in response.json()["error"]


def test_an_admin_cannot_fence_while_the_leader_is_unknown(api, pg):
    Cluster.objects.filter(pk=pg.pk).update(last_leader="")
    response = _fence(api, pg, "node2", confirm="node2")
    assert response.status_code == 400 and "has not read" in response.json()["error"]


def test_an_admin_fences_one_node_at_a_time(api, pg, django_user_model):
    # A third database node, so two standbys could be fenced.
    node3 = Node.objects.create(
        cluster=pg,
        name="node3",
        address="198.18.0.14",
        credential=Credential.objects.get(),
        kind="database",
        host_key_type="ssh-ed25519",
        host_key_base64="AAAA",
        host_key_fingerprint="SHA256:" + "B" * 43,
    )
    NodeStatus.objects.create(node=node3, role="replica", writable=False)
    first = _fence(api, pg, "node2", confirm="node2")
    assert first.status_code == 202
    job = Job.objects.get()
    assert job.kind == "fence" and job.params["reason"] == "fenced by ops by hand"
    second = _fence(api, pg, "node3", confirm="node3")
    assert second.status_code == 409 and f"fence job #{job.pk}" in second.json()["error"]
    assert Job.objects.count() == 1


def test_an_admin_cannot_fence_beside_a_job_that_changes_the_cluster(api, pg):
    Job.objects.create(cluster=pg, kind="switchover", mutating=True, status=JobStatus.RUNNING)
    assert _fence(api, pg, "node2", confirm="node2").status_code == 409


def test_the_sentinel_still_fences_without_confirmation_and_several_at_once(pg):
    # Its own judgement (every node agreed on the leader) is the guard: no person, no typing.
    Job.objects.create(cluster=pg, kind="switchover", mutating=True, status=JobStatus.RUNNING)
    node2 = pg.nodes.get(name="node2")
    job = services.job_start(cluster=pg, kind="fence", node=node2, params={"reason": "x"})
    again = services.job_start(cluster=pg, kind="fence", node=node2, params={"reason": "x"})
    assert job.requested_by is None and again.pk != job.pk


def test_a_person_cannot_retry_a_fence_onto_the_primary(pg):
    node2 = pg.nodes.get(name="node2")
    job = services.job_start(cluster=pg, kind="fence", node=node2, params={"reason": "x"})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    Cluster.objects.filter(pk=pg.pk).update(last_leader="node2")  # node2 became the leader
    job.refresh_from_db()
    with pytest.raises(services.JobRefused, match="holds the leader key"):
        services.job_retry(job=job)


def test_an_admin_sees_the_guarded_fence_confirmation(client, user, pg):
    client.force_login(user)
    html = client.get(f"/clusters/{pg.pk}/confirm/fence/?node=node2").content.decode()
    assert "stays out until it is rebuilt" in html and 'name="confirm"' in html


def test_the_cluster_page_offers_fence_to_admins_on_standbys_only(client, user, pg):
    client.force_login(user)
    html = client.get(f"/clusters/{pg.pk}/").content.decode()
    assert "/confirm/fence/?node=node2" in html
    assert "/confirm/fence/?node=node1" not in html  # the leader
