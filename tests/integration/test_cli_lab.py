"""The `hacenter` command line against a live console (pytest-django's live_server), a real
Celery worker and the lab's hosts: it is run as a user runs it, as its own process, and talks
to the console only through the public API with an API token."""

import json

import pytest

from clusters.models import Cluster
from jobs import services
from jobs.models import Job, JobStatus
from tests.integration.cli_runner import Cli, Followed, admin_cli
from tests.integration.conftest import job_story, port_squatted

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cli(live_server, django_user_model, tmp_path) -> Cli:
    return admin_cli(live_server, django_user_model, tmp_path)


def followed_job(cli: Cli, job: Job, timeout: float) -> tuple[Followed, Job]:
    followed = cli.follow(job.pk, timeout)
    job.refresh_from_db()
    assert job.is_terminal, job_story(job)
    return followed, job


def assert_streamed(followed: Followed, job: Job) -> None:
    """Every stored line printed once, in order, and the first one before the job ended: the
    command showed the log as it happened, not at the end."""
    stored = list(job.log_lines.order_by("seq").values_list("text", flat=True))
    assert len(followed.lines) == len(stored), (followed.texts[-5:], stored[-5:])
    for printed, text in zip(followed.texts, stored, strict=True):
        assert printed.rstrip().endswith(text.rstrip()), (printed, text)
    first_seen = followed.lines[0][0]
    assert first_seen < job.finished.timestamp() - 0.5, (
        f"first line printed {job.finished.timestamp() - first_seen:.1f} s before the job ended"
    )


def test_logs_follow_streams_a_preflight_and_status_shows_the_cluster(lab_cluster, worker, cli):
    job = services.job_start(cluster=lab_cluster, kind="preflight")
    followed, job = followed_job(cli, job, timeout=180)
    assert job.status == JobStatus.SUCCEEDED, job_story(job)
    assert followed.code == 0, followed.stderr
    assert followed.stderr.endswith(f"job {job.pk} succeeded\n")
    assert_streamed(followed, job)

    shown = cli.run("status", lab_cluster.name)
    assert shown.returncode == 0, shown.stderr
    rows = {
        cells[0]: cells
        for line in shown.stdout.splitlines()
        if line.startswith("| ")
        for cells in [[c.strip() for c in line.split("|")[1:-1]]]
    }
    assert rows["node1"][1] == "198.18.0.11" and rows["node2"][1] == "198.18.0.12"
    assert rows["proxy"][2] == "proxy"
    as_json = json.loads(cli.run("status", str(lab_cluster.pk), "--json").stdout)
    assert as_json["name"] == lab_cluster.name
    assert {n["name"] for n in as_json["nodes"]} == {"node1", "node2", "proxy"}

    missing = cli.run("status", "no-such-cluster")
    assert missing.returncode == 3 and "no cluster 'no-such-cluster'" in missing.stderr


def test_a_failed_preflight_exits_1_and_is_an_event(lab_cluster, lab_clean, worker, cli):
    with port_squatted(lab_clean, "node2", "198.18.0.12", 8008):
        job = services.job_start(cluster=lab_cluster, kind="preflight")
        followed, job = followed_job(cli, job, timeout=180)
    assert job.status == JobStatus.FAILED, job_story(job)
    assert followed.code == 1
    assert f"job {job.pk} failed: " in followed.stderr and "8008 by perl" in followed.stderr
    assert_streamed(followed, job)

    events = cli.run("events", lab_cluster.name, "--kind", "job_failed")
    assert events.returncode == 0, events.stderr
    assert f"preflight job #{job.pk} failed" in events.stdout
    page = json.loads(cli.run("events", lab_cluster.name, "--json", "--limit", "5").stdout)
    assert [e["kind"] for e in page["events"]] == ["job_failed"]
    assert page["events"][0]["details"] == {"job": job.pk, "kind": "preflight"}
    refused = cli.run("events", lab_cluster.name, "--kind", "no_such_kind")
    assert refused.returncode == 4 and "kind" in refused.stderr


def test_logs_follow_streams_a_setup_and_switchover_waits_for_its_job(lab_cluster, worker, cli):
    """The issue's acceptance: a setup's lines as they happen, the exit code its status."""
    job = services.job_start(cluster=lab_cluster, kind="setup")
    followed, job = followed_job(cli, job, timeout=600)
    assert job.status == JobStatus.SUCCEEDED, job_story(job)
    assert followed.code == 0, followed.stderr
    assert_streamed(followed, job)
    lab_cluster.refresh_from_db()
    assert lab_cluster.state == Cluster.State.HEALTHY

    listed = cli.run("clusters")
    assert listed.stdout.splitlines()[1].split() == [lab_cluster.name, "healthy", "node1"]
    shown = cli.run("status", lab_cluster.name).stdout
    assert "| node1  | 198.18.0.11 | primary |" in shown
    assert "| node2  | 198.18.0.12 | replica |" in shown

    moved = cli.run("switchover", lab_cluster.name, "--to", "node2", "--wait", timeout=300)
    assert moved.returncode == 0, moved.stderr
    assert "started: switchover on" in moved.stderr and "succeeded" in moved.stderr
    assert moved.stdout.strip(), "the switchover's log was printed"
    events = cli.run("events", lab_cluster.name, "--kind", "switchover")
    assert events.returncode == 0, events.stderr
    assert "switchover from node1 to node2" in events.stdout
