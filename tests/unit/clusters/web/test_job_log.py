"""The job page's log an SRE can work with: each line with its time, a host filter that knows
the cluster's servers, the whole log as a downloadable text file (for viewers, never cached,
redacted as stored), and a progress bar that shows a failure as a failure."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group

from jobs.logwriter import MASK, LogWriter, Redactor
from jobs.models import Job, JobStatus, LogLine, Step
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 5, 3, 50, 36, 123000, tzinfo=UTC)


@pytest.fixture
def job():
    cluster, _nodes = three_node_cluster()
    job = Job.objects.create(kind="preflight", cluster=cluster, status=JobStatus.FAILED)
    for position, status in ((1, "succeeded"), (2, "failed")):
        Step.objects.create(job=job, position=position, name=f"s{position}", status=status)
    LogLine.objects.create(job=job, seq=1, ts=AT, stream="console", host="", text="starting")
    LogLine.objects.create(job=job, seq=2, ts=AT, stream="stdout", host="node1", text="ok")
    LogLine.objects.create(job=job, seq=3, ts=AT, stream="stderr", host="node2", text="refused")
    return job


def login(client, django_user_model, role: str | None) -> None:
    user = django_user_model.objects.create_user(f"u-{role}", password="pw-123456789")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)


def test_each_line_shows_its_time_with_the_full_timestamp_on_hover(client, django_user_model, job):
    login(client, django_user_model, "viewer")
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<time class="ts" datetime="2026-12-05T03:50:36.123000+00:00"' in html
    assert 'title="2026-12-05 03:50:36.123000 UTC">03:50:36</time>' in html
    assert 'data-host="node2"' in html
    # The filter offers every server of the cluster, and the console's own lines.
    for host in ("node1", "node2", "proxy"):
        assert f'<option value="{host}">{host}</option>' in html
    assert '<option value="">console (no host)</option>' in html
    assert '<script src="/static/joblog.js" defer></script>' in html
    assert f'href="/jobs/{job.pk}/log.txt" download' in html


def test_download_serves_the_whole_log_as_an_uncached_text_attachment(
    client, django_user_model, job
):
    login(client, django_user_model, "viewer")
    response = client.get(f"/jobs/{job.pk}/log.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    name = f"hacenter-job-{job.pk}-preflight.log"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    lines = response.content.decode().splitlines()
    assert lines[0] == f"# HA Center job #{job.pk}: preflight on cluster pg1, status failed"
    assert lines[1:] == [
        "2026-12-05T03:50:36.123Z - console: starting",
        "2026-12-05T03:50:36.123Z node1 stdout: ok",
        "2026-12-05T03:50:36.123Z node2 stderr: refused",
    ]


def test_download_is_for_viewers_and_answers_404_for_an_unknown_job(client, django_user_model, job):
    anonymous = client.get(f"/jobs/{job.pk}/log.txt")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    login(client, django_user_model, None)
    assert client.get(f"/jobs/{job.pk}/log.txt").status_code == 403
    login(client, django_user_model, "viewer")
    assert client.get("/jobs/999999/log.txt").status_code == 404


def test_the_download_holds_no_secret_because_lines_are_redacted_before_storage(
    client, django_user_model, job
):
    writer = LogWriter.for_job(job.pk, Redactor(["s3cret-password"]))
    writer.write("PGPASSWORD=s3cret-password psql -c 'select 1'", host="node1")
    writer.flush()
    login(client, django_user_model, "viewer")
    text = client.get(f"/jobs/{job.pk}/log.txt").content.decode()
    assert "s3cret-password" not in text and f"PGPASSWORD={MASK} psql" in text


@pytest.mark.parametrize("status", ["failed", "errored", "canceled", "lost"])
def test_a_job_that_ended_badly_shows_its_bar_stopped_in_the_failure_colour(
    client, django_user_model, job, status
):
    Job.objects.filter(pk=job.pk).update(status=status)
    login(client, django_user_model, "viewer")
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'class="job-progress job-progress-{status} job-progress-stopped"' in html
    assert f"stopped at 50 % ({status})" in html


@pytest.mark.parametrize("status", ["running", "succeeded"])
def test_a_running_or_succeeded_job_keeps_the_normal_bar(client, django_user_model, job, status):
    Job.objects.filter(pk=job.pk).update(status=status)
    login(client, django_user_model, "viewer")
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "job-progress-stopped" not in html and f"job-progress-{status}" in html
