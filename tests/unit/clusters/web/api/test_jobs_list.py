"""GET /api/v1/jobs/ and /api/v1/clusters/{id}/jobs/: newest first, filtered by kind, status,
cluster and time, paged with a cursor, readable by viewers."""

from datetime import UTC, datetime, timedelta

import pytest

from clusters.models import Cluster
from jobs.models import Job, JobStatus
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def cluster():
    return three_node_cluster(state="healthy")[0]


def add(cluster, kind: str, minutes: int, status: str = JobStatus.SUCCEEDED, **fields) -> Job:
    """A finished job created `minutes` after T0 (created is auto_now_add: set it after)."""
    job = Job.objects.create(cluster=cluster, kind=kind, status=status, **fields)
    Job.objects.filter(pk=job.pk).update(created=T0 + timedelta(minutes=minutes))
    job.refresh_from_db()
    return job


def test_a_clusters_jobs_newest_first_with_who_asked_and_no_other_clusters(api, cluster, user):
    setup = add(cluster, "setup", 1, requested_by=user)
    switchover = add(cluster, "switchover", 5, node=cluster.nodes.get(name="node2"))
    add(Cluster.objects.create(name="pg2"), "lint", 9)
    response = api.get(f"/api/v1/clusters/{cluster.pk}/jobs/")
    assert response.status_code == 200
    body = response.json()
    assert [j["id"] for j in body["jobs"]] == [switchover.pk, setup.pk]
    assert body["next"] is None
    first = body["jobs"][0]
    assert first["kind"] == "switchover" and first["node"] == "node2"
    assert first["cluster"] == cluster.pk and first["cluster_name"] == cluster.name
    assert first["url"] == f"/jobs/{switchover.pk}/"
    assert body["jobs"][1]["requested_by"] == user.username


def test_every_job_filtered_by_status_kind_cluster_and_time(api, cluster):
    other = Cluster.objects.create(name="pg2")
    failed = add(cluster, "rebuild", 1, status=JobStatus.FAILED)
    add(cluster, "rebuild", 2)
    late = add(other, "setup", 30, status=JobStatus.FAILED)

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/v1/jobs/?{query}")
        assert response.status_code == 200, response.content
        return [j["id"] for j in response.json()["jobs"]]

    assert ids("status=failed") == [late.pk, failed.pk]
    assert ids("status=failed&kind=rebuild") == [failed.pk]
    assert ids("status=failed&cluster=pg2") == [late.pk]
    assert ids(f"status=failed&cluster={cluster.pk}") == [failed.pk]
    assert ids("status=failed&since=2026-03-01T12:10:00Z") == [late.pk]
    assert ids("status=failed&until=2026-03-01T12:10:00Z") == [failed.pk]


def test_pages_follow_the_cursor_to_the_end(api, cluster):
    made = [add(cluster, "lint", minute) for minute in range(7)]
    seen, cursor = [], ""
    for _ in range(5):
        body = api.get(f"/api/v1/clusters/{cluster.pk}/jobs/?limit=3{cursor}").json()
        seen += [j["id"] for j in body["jobs"]]
        if body["next"] is None:
            break
        cursor = f"&cursor={body['next']}"
    assert seen == [j.pk for j in reversed(made)]


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=done", "status"),
        ("kind=dance", "kind"),
        ("limit=201", "limit"),
        ("cursor=abc", "cursor"),
        ("since=yesterday", "since"),
        ("cluster=nope", "cluster"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_parameter(api, cluster, query, field):
    response = api.get(f"/api/v1/jobs/?{query}")
    assert response.status_code == 400
    assert list(response.json()["field_errors"]) == [field]


def test_viewers_read_the_lists_and_a_missing_cluster_is_a_404(client, cluster, django_user_model):
    viewer = api_client(client, make_user(django_user_model, "watcher", "viewer"))
    add(cluster, "lint", 1)
    assert viewer.get("/api/v1/jobs/").status_code == 200
    assert viewer.get(f"/api/v1/clusters/{cluster.pk}/jobs/").json()["jobs"][0]["kind"] == "lint"
    assert viewer.get("/api/v1/clusters/999999/jobs/").status_code == 404
    # The same path still starts jobs, for operators only.
    refused = viewer.post(f"/api/v1/clusters/{cluster.pk}/jobs/", {"kind": "lint"})
    assert refused.status_code == 403
