"""Claim, cancel, retry and lost: the job state machine, with steps that need no network."""

import pytest
from django.utils import timezone

from clusters.models import Cluster
from jobs import reaper, runner, services
from jobs.errors import JobConflict, JobRefused
from jobs.models import Job, JobStatus, Step, StepStatus
from jobs.playbooks.base import Playbook, StepFailed, StepSpec, Verdict

pytestmark = pytest.mark.django_db
calls: list[str] = []


def _plan(cluster, node, params):
    return [StepSpec("first", "First"), StepSpec("second", "Second"), StepSpec("third", "Third")]


def _second(ctx):
    calls.append("second")
    if ctx.job.params.get("fail_second") and ctx.job.attempt == 1:
        raise StepFailed("second refused on the first attempt")
    return Verdict.warn("second passed with a warning")


def _make_playbook(**extra) -> Playbook:
    return Playbook(
        kind="fake",
        plan=_plan,
        steps={
            "first": lambda ctx: calls.append("first") or "first done",
            "second": _second,
            "third": lambda ctx: calls.append("third") or "third done",
        },
        **extra,
    )


@pytest.fixture(autouse=True)
def fake_playbook(monkeypatch):
    calls.clear()
    playbook = _make_playbook()
    monkeypatch.setattr(services, "get_playbook", lambda kind: playbook)
    monkeypatch.setattr(runner, "get_playbook", lambda kind: playbook)
    return playbook


@pytest.fixture
def cluster():
    return Cluster.objects.create(name="c1")


def test_job_start_plans_steps_and_enqueues_after_commit(
    cluster, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr("jobs.tasks.run_job.delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_start(cluster=cluster, kind="fake")
    assert [s.title for s in job.steps.all()] == ["First", "Second", "Third"]
    assert queued == [job.pk]


def test_second_mutating_job_is_refused_with_the_active_one_named(cluster):
    first = services.job_start(cluster=cluster, kind="fake")
    with pytest.raises(JobConflict, match=f"fake #{first.pk} \\(pending\\)"):
        services.job_start(cluster=cluster, kind="fake")


def test_database_constraint_refuses_a_racing_second_job(cluster, monkeypatch):
    services.job_start(cluster=cluster, kind="fake")
    monkeypatch.setattr(services, "_active_conflict", lambda c: None)  # lose the pre-check race
    with pytest.raises(JobConflict):
        services.job_start(cluster=cluster, kind="fake")


def test_read_only_jobs_may_run_side_by_side(cluster, fake_playbook):
    fake_playbook.mutating = False
    services.job_start(cluster=cluster, kind="fake")
    services.job_start(cluster=cluster, kind="fake")
    assert Job.objects.filter(cluster=cluster).count() == 2


def test_claim_is_won_by_exactly_one_worker(cluster):
    job = services.job_start(cluster=cluster, kind="fake")
    assert runner.claim(job.pk, "worker-a") is True
    assert runner.claim(job.pk, "worker-b") is False  # a redelivered message
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempt) == ("running", "worker-a", 1)


def test_redelivered_message_does_not_run_the_steps_twice(cluster):
    job = services.job_start(cluster=cluster, kind="fake")
    runner.JobRunner(job.pk).run()
    runner.JobRunner(job.pk).run()
    assert calls == ["first", "second", "third"]
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.steps.get(position=2).status == StepStatus.WARNING


def test_failed_step_stops_the_job_and_retry_resumes_there(cluster):
    job = services.job_start(cluster=cluster, kind="fake", params={"fail_second": True})
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "second refused" in job.error
    assert job.steps.get(position=3).status == StepStatus.PENDING
    services.job_retry(job=job)
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert calls == ["first", "second", "second", "third"]  # first did not run again


def test_keep_going_playbook_runs_every_step_and_fails_at_the_end(cluster, fake_playbook):
    fake_playbook.keep_going = True
    job = services.job_start(cluster=cluster, kind="fake", params={"fail_second": True})
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    assert calls == ["first", "second", "third"]
    assert job.status == JobStatus.FAILED


def test_exception_in_a_step_marks_the_job_errored(cluster, fake_playbook):
    fake_playbook.steps["first"] = lambda ctx: 1 / 0
    job = services.job_start(cluster=cluster, kind="fake")
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    assert job.status == JobStatus.ERRORED
    assert "ZeroDivisionError" in job.error
    assert job.log_lines.filter(text__contains="Traceback").exists()


def test_cancel_of_a_pending_job_ends_it_at_once(cluster):
    job = services.job_start(cluster=cluster, kind="fake")
    services.job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert set(job.steps.values_list("status", flat=True)) == {StepStatus.CANCELED}
    runner.JobRunner(job.pk).run()  # the queued message arrives later: nothing runs
    assert calls == []


def test_cancel_flag_stops_a_running_job_between_steps(cluster, fake_playbook):
    job = services.job_start(cluster=cluster, kind="fake")

    def first(ctx):
        calls.append("first")
        Job.objects.filter(pk=ctx.job.pk).update(cancel_requested=True)
        return "done"

    fake_playbook.steps["first"] = first
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    assert calls == ["first"]
    assert job.steps.get(position=3).status == StepStatus.CANCELED


def test_cancel_of_an_ended_job_is_refused(cluster):
    job = services.job_start(cluster=cluster, kind="fake")
    runner.JobRunner(job.pk).run()
    with pytest.raises(JobRefused, match="already ended"):
        services.job_cancel(job=services.Job.objects.get(pk=job.pk))


def test_job_without_heartbeat_is_reaped_as_lost_and_retry_finishes_it(cluster, settings):
    job = services.job_start(cluster=cluster, kind="fake")
    runner.claim(job.pk, "dead-worker")
    Step.objects.filter(job=job, position=1).update(status=StepStatus.RUNNING)
    stale = timezone.now() - timezone.timedelta(seconds=settings.JOB_LOST_AFTER_S + 1)
    Job.objects.filter(pk=job.pk).update(heartbeat=stale)
    assert reaper.jobs_reap_lost() == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.LOST
    assert "stopped sending heartbeats" in job.error
    assert job.log_lines.filter(text__startswith="job lost").exists()
    services.job_retry(job=job)
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt == 2


def test_job_with_a_fresh_heartbeat_is_not_reaped(cluster):
    job = services.job_start(cluster=cluster, kind="fake")
    runner.claim(job.pk, "live-worker")
    assert reaper.jobs_reap_lost() == []


def test_worker_that_lost_its_claim_stops_and_keeps_the_reapers_verdict(cluster, fake_playbook):
    def first(ctx):
        calls.append("first")
        # Meanwhile the reaper declared this (slow) worker lost.
        Job.objects.filter(pk=ctx.job.pk).update(status=JobStatus.LOST)
        return "done"

    fake_playbook.steps["first"] = first
    job = services.job_start(cluster=cluster, kind="fake")
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    assert job.status == JobStatus.LOST
    assert calls == ["first"]


def test_retry_of_a_succeeded_job_is_refused(cluster):
    job = services.job_start(cluster=cluster, kind="fake")
    runner.JobRunner(job.pk).run()
    job.refresh_from_db()
    with pytest.raises(JobConflict, match="only a job that ended without success"):
        services.job_retry(job=job)


def test_unknown_kind_is_refused_with_the_known_ones(cluster, monkeypatch):
    from jobs import playbooks

    monkeypatch.setattr(services, "get_playbook", playbooks.get_playbook)
    with pytest.raises(JobRefused, match=r"unknown job kind 'explode'.*preflight"):
        services.job_start(cluster=cluster, kind="explode")
