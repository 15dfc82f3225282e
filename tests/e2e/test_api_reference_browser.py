"""The API reference page in Chromium, under the Content Security Policy: Swagger UI loads
from the console's own static files, renders the document's operations, and the browser
reports no policy violation and no request to another host."""

import pytest
from playwright.sync_api import Page, expect

from clusters.access.roles import assign_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_reference_page_renders_the_api_from_local_files(
    page: Page, live_server, django_user_model
):
    viewer = django_user_model.objects.create_user("watcher", password="browser-test-pw-1")
    assign_role(viewer, "viewer")
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: elsewhere.append(r.url) if not r.url.startswith(live_server.url) else None,
    )

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill("watcher")
    page.get_by_label("Password").fill("browser-test-pw-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()
    page.get_by_role("link", name="reference").click()
    expect(page.get_by_text("HA Center API").first).to_be_visible(timeout=15_000)
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/clusters/").first
    ).to_be_visible()
    assert problems == [], problems
    assert [u for u in elsewhere if not u.startswith(("data:", "blob:"))] == [], elsewhere
