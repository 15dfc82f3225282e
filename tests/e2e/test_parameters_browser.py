"""In Chromium, on a lab cluster with a writer through the proxy: from the cluster page to its
parameters, refresh the reading, type a parameter that needs a restart, read the preview
("restart needed: rolling restart…"), confirm, and watch the job end. Every node then reports
the new value, writes paused no longer than a switchover, none acknowledged was lost."""

import re

import pytest
from playwright.sync_api import Page, expect

from jobs.models import Job, JobStatus
from tests.conftest import wait_for
from tests.e2e.pages import log_in, shot
from tests.integration.conftest import (
    wait_for_job,
    worker,  # noqa: F401 - the fixture
)
from tests.integration.test_parameters_lab import NODES, SWITCHOVER_BOUND_S, run, shown
from tests.integration.test_setup_lab import define_cluster
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_a_restart_parameter_changed_from_the_page(
    page: Page,
    live_server,
    django_user_model,
    fresh_lab,
    worker,  # noqa: F811
):
    cluster = define_cluster(fresh_lab, "pgweb")
    run(cluster, "setup", timeout=600)
    secret = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@198.18.0.10:5432/postgres")
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) >= 10, 20, "the writer to get going")
        violations = log_in(page, live_server, django_user_model)
        page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
        page.get_by_role("link", name="Parameters").click()
        expect(page.get_by_text("Not read yet")).to_be_visible()
        page.get_by_role("button", name="Refresh").click()
        read = wait_for_job(Job.objects.get(cluster=cluster, kind="read_parameters"), 120)
        assert read.status == JobStatus.SUCCEEDED, read.error
        page.goto(f"{live_server.url}/clusters/{cluster.pk}/parameters/")
        expect(page.locator('tr[data-parameter="shared_buffers"]')).to_be_visible()

        page.get_by_label(re.compile("one name = value per line")).fill("shared_buffers = 192MB")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("p.consequence")).to_contain_text(
            "restart needed: rolling restart, standbys first, then a switchover, then the old "
            "primary"
        )
        expect(page.locator('tr[data-parameter="shared_buffers"] .effect')).to_have_text(
            "restart needed"
        )
        shot(page, "parameters-preview")
        page.get_by_role("button", name="Yes, change and restart node by node").click()
        expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
        job = Job.objects.get(cluster=cluster, kind="change_parameters")
        job = wait_for_job(job, 300)
        assert job.status == JobStatus.SUCCEEDED, (
            job.error,
            [(s.title, s.summary) for s in job.steps.all()],
        )
        expect(page.locator("[data-status]")).to_have_attribute(
            "data-status", "succeeded", timeout=15_000
        )
        for step in job.steps.all():
            print(f"  {step.name}: {step.summary}")
        for node in NODES:
            assert shown(fresh_lab, node, "shared_buffers") == {
                "shared_buffers": "192MB",
                "pending_restart": 0,
            }, node
        assert violations == []
    finally:
        writer.stop()
    gap = max((b.at - a.at for a, b in zip(writer.acks, writer.acks[1:], strict=False)), default=0)
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    print(
        f"from the page: {len(writer.acks)} writes acknowledged, longest gap {gap:.2f} s, "
        f"{len(missing)} missing; the job's probe: {job.params['write_gaps']}"
    )
    assert gap < SWITCHOVER_BOUND_S
    assert not missing
