"""In Chromium against the lab: the whole setup wizard to a healthy cluster, then the day-2
console on that cluster: the dashboard follows a node going down without a reload, Rebuild on
the failed-over old master brings it back as a standby, and a switchover from the cluster page.

One test, one cluster: a setup costs ~30 s and transactional tests empty the database between
tests. With HACENTER_SCREENSHOTS=<dir> (``make screenshots``) it also saves the README's PNGs.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from clusters.models import Cluster, NodeStatus
from tests.conftest import wait_for
from tests.e2e.pages import check_phone_width, shot
from tests.integration.conftest import worker  # noqa: F401 - the fixture
from tests.workers import start_beat

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.lab,
    pytest.mark.django_db(transaction=True),
    # Setup, a switchover, a failover and a rebuild take ~2 min; the lab fixture may first wait
    # minutes for another session's lab (its lock wait counts against the test's timeout).
    pytest.mark.timeout(1500),
]
SETUP_TIMEOUT_MS = 600_000


def log_in(page: Page, live_server, django_user_model) -> None:
    django_user_model.objects.create_superuser("admin", password="browser-test-pw-1")
    page.goto(f"{live_server.url}/")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("browser-test-pw-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()


def run_wizard(page: Page, lab) -> None:
    """Steps 1-5 as an admin types them, with a mistake on the way; ends on the job page."""
    page.get_by_role("link", name="New cluster").click()
    page.get_by_label("Cluster name").fill("Web Console")  # invalid: upper case and a space
    page.get_by_label("Client networks").fill("10.20.0.0/16")
    page.get_by_role("button", name="Next: servers").click()
    expect(page.locator("#f-name-err")).to_contain_text("lower-case letters")
    expect(page.get_by_label("Client networks")).to_have_value("10.20.0.0/16")
    page.get_by_label("Cluster name").fill("webc")
    page.get_by_role("button", name="Next: servers").click()

    for i, host in enumerate(("node1", "node2", "proxy")):
        page.get_by_label(f"Address of server {i + 1}").fill(lab.host(host).address)
    expect(page.locator("details.inline-credential")).to_have_attribute("open", "")  # none yet
    page.get_by_label("Credential name").fill("lab-root")
    page.get_by_label("SSH user").fill("root")
    page.get_by_label("Private key (paste)").fill(lab.private_key_text)
    page.get_by_role("button", name="Save credential").click()
    expect(page.get_by_text("Credential lab-root saved")).to_be_visible()
    assert "PRIVATE KEY" not in page.content()
    expect(page.get_by_label("Address of server 2")).to_have_value(lab.host("node2").address)
    # Picked once for every server; no server has one of its own.
    expect(page.get_by_label("SSH credential for every server")).to_have_value(re.compile(r"\d+"))
    expect(page.get_by_label("Credential of server 3")).to_have_value("")
    shot(page, "wizard-servers")
    page.get_by_role("button", name="Next: scan host keys").click()

    for host in ("node1", "node2", "proxy"):
        expect(page.get_by_text(lab.host_key_fingerprint(host))).to_be_visible()
    page.get_by_role("button", name="Back").click()  # going back keeps everything
    expect(page.get_by_label("Address of server 1")).to_have_value(lab.host("node1").address)
    page.get_by_role("button", name="Next: scan host keys").click()
    page.get_by_label("I checked the fingerprint of node1").check()
    page.get_by_label("I checked the fingerprint of node2").check()
    page.get_by_role("button", name="Trust these keys and run preflight").click()
    expect(page.get_by_text("tick the box")).to_be_visible()  # proxy not confirmed
    assert not Cluster.objects.exists()
    for host in ("node1", "node2", "proxy"):
        page.get_by_label(f"I checked the fingerprint of {host}").check()
    shot(page, "wizard-host-keys")
    page.get_by_role("button", name="Trust these keys and run preflight").click()

    page.evaluate("window.noReload = true")  # preflight results arrive without a reload
    results = page.locator("#wizard-preflight")
    expect(results.locator(".check-succeeded").first).to_be_visible(timeout=60_000)
    expect(results).to_have_attribute(
        "data-verdict", re.compile("passed|warnings"), timeout=120_000
    )
    assert page.evaluate("window.noReload") is True
    shot(page, "wizard-preflight")
    if results.get_attribute("data-verdict") == "warnings":
        page.get_by_role("button", name="Next: application").click()
        expect(page.get_by_text("tick the box to go on")).to_be_visible()
        page.get_by_label("I read the warnings and want to go on").check()
    page.get_by_role("button", name="Next: application").click()

    # The application step: optional; a wrong unit name is refused next to its field, and
    # leaving it empty goes on (the netns lab has no systemd to run a unit).
    expect(page.get_by_role("heading", name="The application")).to_be_visible()
    page.get_by_label("The application's systemd unit").fill("my app")
    page.get_by_role("button", name="Next: review").click()
    expect(page.get_by_text("ending in .service")).to_be_visible()
    shot(page, "wizard-application")
    page.get_by_label("The application's systemd unit").fill("")
    page.get_by_role("button", name="Next: review").click()

    expect(page.get_by_role("heading", name="Review and launch")).to_be_visible()
    expect(page.get_by_text("asynchronous", exact=True)).to_be_visible()
    shot(page, "wizard-review")
    page.get_by_role("button", name="Launch").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))


def test_wizard_to_a_healthy_cluster_then_dashboard_rebuild_and_switchover(
    page: Page,
    live_server,
    django_user_model,
    fresh_lab,
    worker,  # noqa: F811
):
    page.set_viewport_size({"width": 1280, "height": 800})
    # The whole scenario runs under the console's Content Security Policy: the lag chart, the
    # polls and every form must work without one refusal or script error.
    violations: list[str] = []

    def watch(tab: Page) -> None:
        tab.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        tab.on("pageerror", lambda e: violations.append(f"page error: {e}"))

    watch(page)
    page.context.on("page", watch)  # the second tab of day two too
    log_in(page, live_server, django_user_model)
    run_wizard(page, fresh_lab)

    # The setup job page: live steps with a progress bar, then the summary.
    expect(page.locator(".job-progress progress")).to_be_visible()
    expect(page.locator("#log .line").first).to_be_visible(timeout=60_000)
    shot(page, "job-setup-running")
    expect(page.locator("[data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=SETUP_TIMEOUT_MS
    )
    summary = page.locator("#setup-summary")
    expect(summary).to_contain_text("webc is set up")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)  # the job ended
    shot(page, "job-setup-done")  # before the reveal: no password in a committed picture
    summary.get_by_role("button", name="Reveal connection strings").click()
    expect(
        page.get_by_text(re.compile(r"postgresql://app:[^@]+@198\.18\.0\.10:5432/app"))
    ).to_be_visible()
    summary.get_by_role("link", name="Open the cluster").click()
    expect(page.locator(".state-healthy").first).to_contain_text("Healthy")

    # The monitor (a real beat + the worker) observes the cluster from here on.
    beat = start_beat()
    try:
        day_two(page, live_server, fresh_lab)
    finally:
        beat.stop()
    assert violations == []


def role_of(node: str) -> tuple[str, str] | None:
    status = NodeStatus.objects.filter(node__cluster__name="webc", node__name=node).first()
    return (status.role, status.state) if status else None


def day_two(page: Page, live_server, lab) -> None:
    cluster = Cluster.objects.get(name="webc")
    wait_for(
        lambda: role_of("node2") == ("replica", "streaming"), 60, "the monitor to see node2 stream"
    )

    # Dashboard: the card, then a switchover from the cluster page.
    page.goto(f"{live_server.url}/")
    card = page.locator('[data-cluster="webc"]')
    expect(card.locator("[data-state]")).to_have_attribute("data-state", "healthy")
    expect(card.locator(".primary")).to_contain_text("node1")
    expect(card.locator('li[data-node="node2"] .lag')).to_contain_text(re.compile(r"\d"))
    expect(card.locator('li[data-node="node2"] svg.spark')).to_be_visible(timeout=90_000)
    shot(page, "dashboard")
    check_phone_width(page, f"{live_server.url}/")

    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    expect(page.locator(".topo-primary")).to_contain_text("node1")
    expect(page.locator("#lag-chart canvas").first).to_be_visible(timeout=30_000)
    shot(page, "cluster")
    check_phone_width(page, f"{live_server.url}/clusters/{cluster.pk}/")
    page.get_by_role("link", name="Switch over", exact=True).click()
    expect(page.get_by_text("Writes stop for a few seconds")).to_be_visible()
    page.get_by_label("New primary").select_option("node2")
    page.get_by_role("button", name="Yes, switch over").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("[data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=180_000
    )
    wait_for(lambda: role_of("node2") == ("primary", "running"), 60, "node2 observed as primary")
    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    expect(page.locator(".topo-primary")).to_contain_text("node2")
    expect(page.get_by_text("switchover", exact=False).first).to_be_visible()

    # The dashboard follows a power-off of the primary without a reload, and the cluster page,
    # open in a second tab, tells the failover as one incident whose timeline fills in.
    wait_for(lambda: role_of("node1") == ("replica", "streaming"), 90, "node1 to stream again")
    cluster_url = f"{live_server.url}/clusters/{cluster.pk}/"
    story = page.context.new_page()
    story.set_viewport_size({"width": 1280, "height": 800})
    story.goto(cluster_url)
    story.evaluate("window.noReload = true")
    page.goto(f"{live_server.url}/")
    page.evaluate("window.noReload = true")
    card = page.locator('[data-cluster="webc"]')
    expect(card.locator("[data-state]")).to_have_attribute("data-state", "healthy", timeout=30_000)
    lab.power_off("node2")
    expect(card.locator("[data-state]")).not_to_have_attribute(
        "data-state", "healthy", timeout=60_000
    )
    expect(card.locator(".primary")).to_contain_text("node1", timeout=120_000)
    expect(card.locator('li[data-node="node2"]')).to_contain_text("✖", timeout=30_000)
    shot(page, "dashboard-failover")
    assert page.evaluate("window.noReload") is True

    incident = story.locator("#incident")
    expect(incident.locator("h2")).to_contain_text("failover", timeout=60_000)
    for key in ("last_healthy", "detected", "promoted", "routed"):
        expect(incident.locator(f'[data-milestone="{key}"]')).to_have_class(
            re.compile("milestone-done"), timeout=60_000
        )
    expect(incident.locator('[data-milestone="old_back"]')).to_have_class(
        re.compile("milestone-not_yet")
    )
    expect(incident.locator(".incident-next")).to_have_attribute(
        "data-recommendation", "bring_back"
    )
    expect(incident.locator(".incident-figures")).to_contain_text(re.compile(r"\d+\.\d s"))
    assert story.evaluate("window.noReload") is True  # the incident section polled itself
    story.reload()  # the Why box is drawn with the page: the reason for the state, in words
    expect(story.locator("section.why")).to_contain_text("node2")
    shot(story, "cluster-why-incident")

    # node2's server comes back without its services (the netns lab starts nothing at power-on,
    # as a server whose Patroni will not start): once it has answered a boot's grace with
    # PostgreSQL silent, the incident recommends a rebuild, and its button does it.
    lab.power_on("node2")
    wait_for(
        lambda: NodeStatus.objects.filter(
            node__cluster=cluster, node__name="node2", host_up_since__isnull=False
        ).exists(),
        60,
        "the monitor to see node2's server answer with its PostgreSQL silent",
    )
    story.goto(cluster_url)
    expect(story.locator('tr[data-node="node2"]')).to_contain_text("PostgreSQL silent")
    next_step = story.locator("#incident .incident-next")
    expect(next_step).to_have_attribute("data-recommendation", "rebuild", timeout=150_000)
    next_step.get_by_role("link", name="Rebuild node2 as standby").click()
    expect(story.get_by_text("moved aside (kept, not deleted)")).to_be_visible()
    story.get_by_role("button", name="Yes, rebuild").click()
    page.close()
    page = story
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    shot(page, "job-rebuild")
    expect(page.locator("[data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=SETUP_TIMEOUT_MS
    )
    wait_for(lambda: role_of("node2") == ("replica", "streaming"), 90, "node2 as a standby")
    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    expect(page.locator(".topo-standby")).to_contain_text("node2")
    expect(page.locator(".topo-standby")).to_contain_text("streams from node1")
    events = page.locator("table tr.event-critical, table tr.event-warning, table tr.event-info")
    expect(events.filter(has_text="switchover").first).to_be_visible()
    expect(page.locator("#lag-chart canvas").first).to_be_visible(timeout=30_000)
    shot(page, "cluster-after-failover")
    # The incident's story ends with the rebuild it recommended; nothing more to do.
    incident = page.locator("#incident")
    expect(incident.locator('[data-milestone="rebuilt"]')).to_have_class(
        re.compile("milestone-done"), timeout=30_000
    )
    expect(incident.locator(".incident-next")).to_have_attribute(
        "data-recommendation", re.compile("wait|none"), timeout=60_000
    )
    shot(incident, "incident-timeline")
