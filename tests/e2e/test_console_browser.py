"""In Chromium: log in, add a credential, define a cluster on the lab, run preflight and watch
its log arrive live until the job ends."""

import re

import pytest
from playwright.sync_api import Page, expect

from clusters.access.roles import assign_role
from tests.integration.conftest import worker  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_login_create_cluster_run_preflight_and_watch_the_log(
    page: Page,
    live_server,
    django_user_model,
    fresh_lab,
    worker,  # noqa: F811
):
    admin = django_user_model.objects.create_user("admin", password="browser-test-pw-1")
    assign_role(admin, "admin")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("browser-test-pw-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()

    page.get_by_role("link", name="Credentials").click()
    page.get_by_label("Name").fill("lab-root")
    page.get_by_label("SSH user").fill("root")
    page.get_by_label("Private key (paste)").fill(fresh_lab.private_key_text)
    page.get_by_role("button", name="Save credential").click()
    expect(page.get_by_text("Credential lab-root saved")).to_be_visible()
    assert "PRIVATE KEY" not in page.content()

    page.goto(f"{live_server.url}/clusters/new/")
    page.get_by_label("Cluster name").fill("browser")
    for i, host in enumerate(("node1", "node2", "proxy")):
        page.get_by_label(f"Address of server {i + 1}").fill(fresh_lab.host(host).address)
    page.get_by_role("button", name="Scan host keys").click()
    for host in ("node1", "node2", "proxy"):
        expect(page.get_by_text(fresh_lab.host_key_fingerprint(host))).to_be_visible()
    page.get_by_label(re.compile("I compared each fingerprint")).check()
    page.get_by_role("button", name="Create cluster").click()
    expect(page.get_by_text("Cluster browser created")).to_be_visible()

    page.get_by_role("button", name="Run preflight").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    page.evaluate("window.noReload = true")  # survives only if the page never reloads
    log = page.locator("#log")
    expect(log.locator(".line.stdout").first).to_be_visible(timeout=60_000)
    expect(page.locator("#log-end")).to_be_visible(timeout=120_000)
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "succeeded")
    assert page.evaluate("window.noReload") is True
    assert log.get_by_text("logged in as root on node1").count() >= 1
    expect(page.locator("#log-poller")).to_have_count(0)
    # ten checks on each of the three nodes, two across them (PostgreSQL major, the lint)
    expect(page.locator("tr.step-succeeded, tr.step-warning")).to_have_count(3 * 10 + 2)
