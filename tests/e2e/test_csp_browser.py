"""In Chromium, under the Content Security Policy: every page loads, htmx polls and posts, and
the browser reports no violation (an inline script or style would be refused and logged)."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from clusters.access.roles import assign_role
from clusters.models import Cluster, Credential, Node
from jobs.models import Job, JobStatus, LogLine, Step

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_pages_and_htmx_work_under_the_policy_without_violations(
    page: Page, live_server, django_user_model
):
    admin = django_user_model.objects.create_user("admin", password="browser-test-pw-1")
    assign_role(admin, "admin")
    cred = Credential.objects.create(name="lab", username="root", password="pw-123456")
    cluster = Cluster.objects.create(name="pg1", database_name="app", database_user="app")
    for i, kind in enumerate(("database", "database", "proxy")):
        Node.objects.create(
            cluster=cluster,
            name=f"n{i}",
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint="SHA256:x",
        )
    # A running job: its page polls the log and the steps every second through htmx.
    job = Job.objects.create(kind="preflight", cluster=cluster, status=JobStatus.RUNNING)
    Step.objects.create(job=job, position=1, name="ssh", title="SSH login", status="running")
    LogLine.objects.create(job=job, seq=1, ts=timezone.now(), stream="stdout", text="first line")

    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: violations.append(f"page error: {e}"))

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("browser-test-pw-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()
    for path, heading in (
        ("/credentials/", "Credentials"),
        ("/alerts/", "Alerts"),
        ("/audit/", "Audit"),
        ("/users/", "Users"),
        ("/jobs/", "Jobs"),
        (f"/clusters/{cluster.pk}/", "pg1"),
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        expect(page.get_by_role("heading", name=re.compile(heading)).first).to_be_visible()

    # htmx POST with the CSRF header from <body>: the connection strings are revealed in place.
    page.get_by_role("button", name="Reveal connection strings").click()
    expect(page.locator("#connection-strings")).to_contain_text("no application database yet")

    # htmx polling: a line written now appears without a reload.
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    expect(page.get_by_text("first line")).to_be_visible()
    LogLine.objects.create(job=job, seq=2, ts=timezone.now(), stream="stdout", text="second line")
    expect(page.get_by_text("second line")).to_be_visible(timeout=10_000)
    assert violations == []
