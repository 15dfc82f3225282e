"""In Chromium, without the lab: the wizard's first steps by keyboard alone, and the pages at
a phone's width. (The lab scenario, test_wizard_browser.py, covers the rest.)"""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.pages import check_phone_width

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_wizard_steps_by_keyboard_and_at_phone_width(page: Page, live_server, django_user_model):
    django_user_model.objects.create_superuser("admin", password="browser-test-pw-1")
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("browser-test-pw-1")
    page.keyboard.press("Enter")
    expect(page.get_by_text("setup wizard")).to_be_visible()  # the empty state says what next
    check_phone_width(page, f"{live_server.url}/")

    page.goto(f"{live_server.url}/wizard/1/")
    check_phone_width(page, f"{live_server.url}/wizard/1/")
    page.get_by_label("Cluster name").focus()
    page.keyboard.type("kb")
    for _ in range(30):  # Tab reaches the Next button through every field, in order
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Next: servers":
            break
    else:
        pytest.fail("Tab never reached the Next button")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/wizard/2/$"))

    check_phone_width(page, f"{live_server.url}/wizard/2/")
    page.get_by_label("Address of server 1").focus()
    page.keyboard.type("bad address!")
    page.keyboard.press("Enter")  # submits "Next", not "Add a standby"
    expect(page.get_by_text("Enter the server's IP address")).to_be_visible()
    expect(page.locator("fieldset.server")).to_have_count(3)
    expect(page.get_by_label("Address of server 1")).to_have_value("bad address!")
