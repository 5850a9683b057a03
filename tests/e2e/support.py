"""Helpers of the browser tests."""

from __future__ import annotations

from pathlib import Path

from .conftest import ARTIFACTS, DEMO_PASSWORD, LiveServer


def shot(page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def login(page, server: LiveServer, username: str, password: str = DEMO_PASSWORD, next_path: str | None = None):
    """Log in through the login page; the token lands in sessionStorage."""
    from playwright.sync_api import Error as PlaywrightError  # here: without playwright the tests are skipped

    url = server("/login") + (f"?next={next_path}" if next_path else "")
    for attempt in range(3):
        try:
            page.goto(url)
            break
        except PlaywrightError as exc:
            # the open page's own navigation cut ours: a page whose token has just expired (the clock moved by
            # time-machine) sends itself to the login page at the same moment (net::ERR_ABORTED)
            if "ERR_ABORTED" not in str(exc) or attempt == 2:
                raise
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => !!sessionStorage.getItem('motcua.token')")
