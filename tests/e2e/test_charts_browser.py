"""In Chromium, under the Content Security Policy, with recorded history (no lab needed): the lag
chart draws the alert threshold and a marker at a failover; the job log follows its tail until
the reader scrolls up, filters by host, downloads as text, shows a failed job's bar in the
failure colour, and the job page fits a phone's width with the verdict readable."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from clusters.models import Cluster, ClusterEvent, Credential, Node, StatusSample
from jobs.models import Job, JobStatus, LogLine, Step
from tests.e2e.pages import check_phone_width, log_in, shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MiB = 1024**2
LONG_VERDICT = (
    "node2 refused the connection: PostgreSQL 16 is not installed and the package "
    "repository pgdg could not be reached from node2 (timeout after 30 s)"
)


def cluster_with_history() -> Cluster:
    """pg1: node2 lags up to 40 MiB (above the 16 MiB alert threshold), gives no reading for a
    minute, and a failover happened five minutes ago."""
    cred = Credential.objects.create(name="lab", username="root", password="pw-123456")
    cluster = Cluster.objects.create(name="pg1", state="healthy", database_name="app")
    nodes = [
        Node.objects.create(
            cluster=cluster,
            name=name,
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint="SHA256:x",
        )
        for i, (name, kind) in enumerate(
            (("node1", "database"), ("node2", "database"), ("proxy", "proxy"))
        )
    ]
    now = timezone.now()
    samples = []
    for step in range(60):  # every 10 s over the last 10 minutes
        at = now - timedelta(seconds=600 - 10 * step)
        silent = 30 <= step < 36
        samples += [
            StatusSample(node=nodes[0], at=at, up=True, role="primary", lag_bytes=0),
            StatusSample(
                node=nodes[1],
                at=at,
                up=not silent,
                role="replica",
                lag_bytes=None if silent else step * 40 * MiB // 60,
                lag_seconds=None if silent else step / 10,
            ),
        ]
    StatusSample.objects.bulk_create(samples)
    ClusterEvent.objects.create(
        cluster=cluster,
        kind="failover",
        at=now - timedelta(minutes=5),
        summary="node2 promoted after node1 stopped answering",
    )
    return cluster


def test_lag_chart_draws_the_threshold_line_and_a_failover_marker(
    page: Page, live_server, django_user_model
):
    cluster = cluster_with_history()
    violations = log_in(page, live_server, django_user_model)
    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    chart = page.locator("#lag-chart")
    expect(chart.locator("canvas").first).to_be_visible(timeout=15_000)
    threshold = chart.locator(".chart-threshold")
    expect(threshold).to_have_text("alert threshold 16 MiB")
    expect(threshold).to_have_attribute("data-bytes", str(16 * MiB))
    # On the scale (40 MiB at the top): the line sits inside the plot, 40 % of the way up.
    over = chart.locator(".u-over").bounding_box()
    line = threshold.bounding_box()
    assert over["y"] < line["y"] < over["y"] + over["height"]
    assert abs((over["y"] + over["height"] - line["y"]) / over["height"] - 0.4) < 0.05
    marker = chart.locator(".chart-event-failover")
    expect(marker).to_have_count(1)
    expect(marker).to_have_attribute("title", "node2 promoted after node1 stopped answering")
    box = marker.bounding_box()
    # Five minutes ago in an hour-wide plot: 55/60 of the way across.
    centre = box["x"] + box["width"] / 2
    assert abs((centre - over["x"]) / over["width"] - 55 / 60) < 0.03
    assert violations == []
    shot(page, "lag-chart")


def running_job(cluster: Cluster, lines: int) -> Job:
    job = Job.objects.create(kind="preflight", cluster=cluster, status=JobStatus.RUNNING)
    Step.objects.create(job=job, position=1, name="ssh", title="SSH login", status="succeeded")
    Step.objects.create(
        job=job, position=2, name="pg", title="PostgreSQL", status="failed", summary=LONG_VERDICT
    )
    Step.objects.create(job=job, position=3, name="lint", title="Lint", status="running")
    now = timezone.now()
    LogLine.objects.bulk_create(
        LogLine(
            job=job,
            seq=i + 1,
            ts=now,
            stream="stdout",
            host=("node1", "node2")[i % 2],
            text=f"line {i + 1} from {('node1', 'node2')[i % 2]}",
        )
        for i in range(lines)
    )
    return job


def add_line(job: Job, host: str, text: str) -> None:
    seq = job.log_lines.count() + 1
    LogLine.objects.create(
        job=job, seq=seq, ts=timezone.now(), stream="stdout", host=host, text=text
    )


def test_job_log_follows_the_tail_filters_by_host_downloads_and_shows_failure(
    page: Page, live_server, django_user_model
):
    cluster = cluster_with_history()
    job = running_job(cluster, 300)
    violations = log_in(page, live_server, django_user_model)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    log = page.locator("#log")
    follow = page.get_by_role("button", name="Follow")
    at_bottom = "e => e.scrollHeight - e.scrollTop - e.clientHeight <= 4"
    expect(follow).to_have_attribute("aria-pressed", "true")
    assert log.evaluate(at_bottom)
    expect(log.locator(".line .ts").first).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))

    # Following: a new line arrives and stays in view.
    add_line(job, "node2", "new tail line one")
    expect(log.get_by_text("new tail line one")).to_be_visible(timeout=10_000)
    assert log.evaluate(at_bottom)

    # Scrolling up stops following: the next line does not pull the reader down.
    log.evaluate("e => { e.scrollTop = 0; }")
    expect(follow).to_have_attribute("aria-pressed", "false")
    add_line(job, "node1", "new tail line two")
    expect(log.get_by_text("new tail line two")).to_be_attached(timeout=10_000)
    assert log.evaluate("e => e.scrollTop") == 0
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "true")
    assert log.evaluate(at_bottom)

    # The host filter: only node2's lines, also those that arrive later; a new host is offered.
    page.get_by_label("Show").select_option("node2")
    expect(log.locator('.line[data-host="node1"]').first).to_be_hidden()
    assert log.locator('.line[data-host="node2"]:not([hidden])').count() == 151
    add_line(job, "node1", "hidden node1 line")
    add_line(job, "node3", "a host the page did not know")
    expect(log.get_by_text("hidden node1 line")).to_be_attached(timeout=10_000)
    expect(log.get_by_text("hidden node1 line")).to_be_hidden()
    expect(page.locator('#log-host option[value="node3"]')).to_have_count(1)
    page.get_by_label("Show").select_option("*")
    expect(log.get_by_text("hidden node1 line")).to_be_visible()

    # The download: the whole log as a text file.
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download the whole log")).click()
    assert download.value.suggested_filename == f"hacenter-job-{job.pk}-preflight.log"
    text = download.value.path().read_text()
    assert "node2 stdout: line 300 from node2" in text and "a host the page did not know" in text

    # The job fails at 66 %: the bar turns to the failure colour without a reload.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, finished=timezone.now())
    bar = page.locator(".job-progress progress")
    expect(page.locator(".job-progress")).to_contain_text("stopped at", timeout=10_000)
    expect(bar).to_have_css("accent-color", "rgb(207, 34, 46)")
    assert violations == []
    shot(page, "job-failed")


def test_the_job_page_fits_a_phone_with_the_verdict_readable(
    page: Page, live_server, django_user_model
):
    cluster = cluster_with_history()
    job = running_job(cluster, 20)
    log_in(page, live_server, django_user_model)
    check_phone_width(page, f"{live_server.url}/jobs/{job.pk}/")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    verdict = page.get_by_text(LONG_VERDICT)
    expect(verdict).to_be_visible()
    box = verdict.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "job-phone")
