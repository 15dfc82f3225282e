"""Helpers of the browser tests: README screenshots and the phone-width check."""

import os
from pathlib import Path

from playwright.sync_api import Page


def shot(page: Page, name: str) -> None:
    """Save a full-page PNG for the README when screenshots were asked for."""
    folder = os.environ.get("HACENTER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


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
