"""In Chromium: log in, add a credential, define a cluster on the lab, run preflight and watch
its log arrive live until the job ends."""

import re

import pytest
from playwright.sync_api import Page, expect

from clusters.access.roles import assign_role
from tests.e2e.pages import shot
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


# --- Phone width (issue 19, observation 8) ---------------------------------------------------

PHONE = {"width": 390, "height": 844}
NAV_MAX_PX = 56


def _phone_world(django_user_model):
    """An admin, and a degraded cluster whose standby stopped: its card offers the rebuild."""
    from django.utils import timezone

    from clusters.models import AlertChannel, ApiToken, Cluster, Credential, Node, NodeStatus

    admin = django_user_model.objects.create_user("admin", password="browser-test-pw-1")
    assign_role(admin, "admin")
    ApiToken.issue(admin, name="grafana")
    cred = Credential.objects.create(name="lab", username="root", password="pw-123456")
    cluster = Cluster.objects.create(
        name="orders-eu-west", state="degraded", database_name="app", database_user="app"
    )
    AlertChannel.objects.create(kind="email", target="oncall@example.com", cluster=cluster)
    now = timezone.now()
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
            # a real fingerprint's length: it must wrap inside the card, not widen the page
            host_key_fingerprint="SHA256:" + "Kq3vZ9xYw8Lm2Np4Rt6Uv1Ab5Cd7Ef0Gh2Ij4Kl6Mn8O",
        )
        if kind == "database":
            NodeStatus.objects.create(
                node=node,
                role="primary" if i == 0 else "replica",
                state="running" if i == 0 else "stopped",
                timeline=3,
                wal_position=0x16B374D848,
                lag_bytes=None if i == 0 else 48_234_112,
                lag_seconds=None if i == 0 else 12.5,
                last_seen=now,
            )
    return cluster


def _fits(page: Page) -> None:
    """Nothing makes the page scroll sideways, and the bar stays one line high."""
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"{page.url}: {width} px wide in a {inner} px window"
    nav = page.locator("header.top").bounding_box()
    assert nav["height"] <= NAV_MAX_PX, f"{page.url}: the bar is {nav['height']} px high"


def test_at_phone_width_the_rebuild_is_visible_without_sideways_scrolling(
    page: Page, live_server, django_user_model
):
    cluster = _phone_world(django_user_model)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("browser-test-pw-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()

    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    _fits(page)
    shot(page, "phone-cluster")
    card = page.locator("table.nodes tr[data-node=node2]")
    rebuild = card.get_by_role("link", name="Rebuild as standby")
    rebuild.scroll_into_view_if_needed()
    expect(rebuild).to_be_visible()
    box = rebuild.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    lag = card.locator("td[data-label=Lag]")
    expect(lag).to_be_visible()
    expect(lag).to_contain_text("MiB")
    lag_box = lag.bounding_box()
    assert lag_box["x"] + lag_box["width"] <= PHONE["width"]
    # The recommended action is not drawn as a danger.
    assert "danger" not in (rebuild.get_attribute("class") or "")

    # The menu folds under one button and opens below the bar.
    jobs = page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs")
    expect(jobs).to_be_hidden()
    page.locator("label.menu-button").click()
    expect(jobs).to_be_visible()
    jobs.click()
    expect(page).to_have_url(re.compile(r"/jobs/$"))

    for path in (
        "/",
        "/jobs/",
        "/credentials/",
        "/alerts/",
        f"/alerts/{cluster.alert_channels.get().pk}/delete/",
        "/users/",
        "/users/tokens/",
        "/audit/",
        "/wizard/1/",
        "/wizard/2/",
        f"/clusters/{cluster.pk}/confirm/rebuild/?node=node2",
    ):
        assert page.goto(f"{live_server.url}{path}").ok, path
        _fits(page)

    # Wide again: the menu is one row and no Menu button shows.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    expect(page.locator("label.menu-button")).to_be_hidden()
    expect(jobs).to_be_visible()
