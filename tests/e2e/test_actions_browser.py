"""In Chromium, under the Content Security Policy, with recorded status (no lab needed): on a
degraded cluster whose standby has been down for minutes, the actions that cannot succeed are
drawn disabled with their reason visible beside them and named as their accessible description;
clicking one goes nowhere; the recommended rebuild still leads to a confirmation that names
what it replaces; and the page still fits a phone's width."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from clusters.models import Cluster, NodeStatus
from tests.e2e.pages import check_phone_width, log_in, shot
from tests.unit.conftest import three_node_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def degraded_cluster() -> Cluster:
    """pg1: node1 primary, node2 stopped for five minutes; read just now."""
    now = timezone.now()
    cluster, (node1, node2, _proxy) = three_node_cluster(
        state="degraded", last_leader="node1", last_checked=now
    )
    NodeStatus.objects.create(
        node=node1,
        role="primary",
        state="running",
        timeline=3,
        writable=True,
        proxy_status="UP",
        last_seen=now,
    )
    NodeStatus.objects.create(
        node=node2,
        role="unknown",
        state="stopped",
        timeline=3,
        writable=False,
        proxy_status="DOWN",
        last_seen=now - timedelta(minutes=5),
    )
    return cluster


def test_a_disabled_action_shows_why_beside_it(page: Page, live_server, django_user_model):
    cluster = degraded_cluster()
    violations = log_in(page, live_server, django_user_model)
    url = f"{live_server.url}/clusters/{cluster.pk}/"
    page.goto(url)

    switchover = page.locator('.heading [aria-disabled="true"]', has_text="Switch over")
    expect(switchover).to_be_visible()
    reason = "needs a healthy cluster: pg1 is degraded"
    expect(page.locator("#off-switchover")).to_be_visible()
    expect(page.locator("#off-switchover")).to_have_text(reason)
    expect(switchover).to_have_accessible_description(reason)
    expect(switchover).to_be_disabled()  # aria-disabled: what assistive technology is told
    switchover.click(force=True)  # and a click (forced past Playwright's check) goes nowhere
    expect(page).to_have_url(url)

    row = page.locator('tr[data-node="node2"]')
    failover = row.locator('[aria-disabled="true"]', has_text="Fail over to node2")
    expect(failover).to_be_visible()
    expect(row.locator("#off-node2-failover")).to_have_text(
        "node2 is stopped (last answered 5 min ago): only a running standby can take over"
    )
    expect(row.locator("#off-node2-remove")).to_contain_text(
        "a cluster keeps at least two database nodes"
    )
    shot(page, "disabled-actions")

    # The action that can succeed is a link to its confirmation, which names what it replaces.
    row.get_by_role("link", name="Rebuild as standby").click()
    expect(page.get_by_text("What is replaced:")).to_be_visible()
    expect(page.locator("p.replaced")).to_contain_text("kept, not deleted")
    expect(page.locator('tr.target[data-node="node2"]')).to_contain_text("stopped")
    shot(page, "rebuild-confirmation")

    check_phone_width(page, url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    expect(page.locator("#off-node2-failover")).to_be_visible()
    assert violations == []
