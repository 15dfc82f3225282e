"""Helpers of the browser tests: logging in while watching for CSP violations, README
screenshots and the phone-width check."""

import os
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from clusters.access.roles import assign_role

PASSWORD = "browser-test-pw-1"


def log_in(page: Page, live_server, django_user_model, username="admin", role="admin") -> list[str]:
    """Log in as a new user with `role`; the list that comes back fills with every Content
    Security Policy violation and script error the pages report from then on."""
    user = django_user_model.objects.create_user(username, password=PASSWORD)
    assign_role(user, role)
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Clusters")).to_be_visible()
    return problems


def shot(page: Page | Locator, name: str) -> None:
    """Save a PNG for the README when screenshots were asked for: the full page, or just the
    element a locator names."""
    folder = os.environ.get("HACENTER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = str(Path(folder) / f"{name}.png")
        if isinstance(page, Locator):
            page.screenshot(path=path)
        else:
            page.screenshot(path=path, full_page=True)


# The elements that stick out on the right, to name the culprit when the check fails.
WIDEST = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > 391)
  .slice(0, 5)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def check_phone_width(page: Page, url: str) -> None:
    """At a phone's width the page fits: nothing makes the whole page scroll sideways."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(WIDEST)
    page.set_viewport_size({"width": 1280, "height": 800})
    assert width <= 390, f"{url} is {width} px wide at a 390 px viewport: {wide}"
    page.goto(url)
