"""`hacenter` against a live console without the lab: the real API answers (refusals, field
errors, a job whose log grows while the command follows it). The lab's version, with a real
worker running real jobs, is test_cli_lab.py."""

import json
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from clusters.models import ApiToken, ClusterEvent
from jobs.models import Job, JobStatus, LogLine
from tests.conftest import wait_for
from tests.integration.cli_runner import Cli, admin_cli
from tests.unit.conftest import three_node_cluster

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _workers_idle_before_flush():
    """No Celery worker runs for these tests, so there is nothing to wait for before the flush
    (the conftest's version would wait on other test runs' busy workers sharing the broker)."""
    yield


@pytest.fixture
def cli(live_server, django_user_model, tmp_path) -> Cli:
    return admin_cli(live_server, django_user_model, tmp_path)


def write_log(job_id: int, texts: list[str], outcome: str, written: list[float]) -> None:
    """Play a worker: once the command is polling (its token was used), a line every 0.8 s,
    then the job's end (after its last line, as the runner flushes the log before it marks
    the job)."""
    try:
        wait_for(
            lambda: ApiToken.objects.filter(last_used__isnull=False).exists(),
            30,
            "the command to ask the console",
        )
        for seq, text in enumerate(texts, 1):
            time.sleep(0.8)
            LogLine.objects.create(
                job_id=job_id, seq=seq, ts=timezone.now(), stream="stdout", host="node1", text=text
            )
            written.append(time.time())
        Job.objects.filter(pk=job_id).update(
            status=outcome, finished=timezone.now(), error="" if outcome == "succeeded" else "no"
        )
    finally:
        connection.close()  # this thread's own connection


@pytest.mark.parametrize(("outcome", "code"), [("succeeded", 0), ("failed", 1), ("lost", 1)])
def test_logs_follow_prints_each_line_as_it_is_written_and_exits_by_outcome(cli, outcome, code):
    cluster, _ = three_node_cluster()
    job = Job.objects.create(
        kind="preflight", cluster=cluster, status=JobStatus.RUNNING, started=timezone.now()
    )
    texts = ["checking ssh", "sudo works", "Debian 12", "ports free"]
    written: list[float] = []
    worker = threading.Thread(target=write_log, args=(job.pk, texts, outcome, written))
    worker.start()
    followed = cli.follow(job.pk, timeout=60)
    worker.join(10)
    assert followed.code == code, followed.stderr
    assert [line.split(None, 2)[2] for line in followed.texts] == texts
    # Each line was on screen before the next one was even written.
    for (seen, _), next_written in zip(followed.lines, written[1:], strict=False):
        assert seen < next_written
    assert followed.stderr.startswith(f"job {job.pk} {outcome}")


def test_status_events_and_refusals_through_the_real_api(cli):
    cluster, _ = three_node_cluster()
    ClusterEvent.objects.create(
        cluster=cluster,
        kind="job_failed",
        severity="warning",
        summary="preflight job #9 failed",
        at=timezone.now(),
    )
    Job.objects.create(kind="setup", cluster=cluster, status=JobStatus.FAILED)
    listed = cli.run("clusters")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["NAME  STATE  PRIMARY", "pg1   new    -"]
    shown = cli.run("status", "pg1")
    assert "| node2  | 198.18.0.12 | unknown | unknown | -  |" in shown.stdout
    assert "Proxy 198.18.0.13: read-write 198.18.0.13:5432" in shown.stdout
    events = cli.run("events", "pg1", "--severity", "warning")
    assert events.returncode == 0
    assert "warning   job_failed  -     preflight job #9 failed" in events.stdout
    assert json.loads(cli.run("events", "pg1", "--json").stdout)["events"][0]["kind"] == (
        "job_failed"
    )

    # The console's refusals: its message (and field errors) on stderr, exit 4; a 404 exits 3.
    switch = cli.run("switchover", "pg1")
    assert switch.returncode == 4
    assert "a switchover needs a healthy cluster" in switch.stderr
    rebuild = cli.run("rebuild", "pg1", "node9")
    assert rebuild.returncode == 4
    assert rebuild.stderr.splitlines() == [
        "hacenter: No such node.",
        "  node: pg1 has no node 'node9'.",
    ]
    assert cli.run("job", "999999").returncode == 3
    bad_filter = cli.run("events", "pg1", "--kind", "nope")
    assert bad_filter.returncode == 4 and "kind" in bad_filter.stderr
    jobs = cli.run("jobs", "pg1", "--status", "failed")
    assert jobs.returncode == 0, jobs.stderr
    assert jobs.stdout.splitlines()[1].split()[1:3] == ["pg1", "setup"]

    # A revoked token: refused, exit 4, with the console's reason; the token never shown.
    ApiToken.objects.update(revoked=timezone.now())
    refused = cli.run("clusters")
    assert refused.returncode == 4 and "revoked" in refused.stderr
