"""Driving Debian's Chromium with Playwright in the page tests (never `playwright install`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def need_chromium() -> None:
    """Skip (fail in CI) without /usr/bin/chromium."""
    if CHROMIUM.is_file():
        return
    reason = f"{CHROMIUM} not found; install it with `apt-get install -y chromium`"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def sign_in(page, key: str, who: str) -> None:
    """Sign the page in with ``key`` and check the session cookie is out of scripts' reach."""
    from playwright.sync_api import expect

    expect(page.locator("#signin")).to_be_visible(timeout=30_000)
    page.fill("#api-key", key)
    page.click("#sign-in")
    expect(page.locator("#who")).to_have_text(who, timeout=30_000)
    assert page.evaluate("() => document.cookie") == ""  # HttpOnly: out of the script's reach
