"""Alice signs in through a real browser and sees her organization's dashboard."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def test_alice_signs_in_and_sees_the_dashboard(live_server, alice, bob, acme, password, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM work is done before it starts.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/")
            page.get_by_role("link", name="Sign in to your portal").click()
            page.get_by_label("Email").fill(alice.email)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()

            expect(page).to_have_url(f"{live_server.url}/dashboard/")
            expect(page.get_by_role("heading", level=1)).to_have_text("Acme Pty Ltd")
            expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard")).to_have_attribute(
                "aria-current", "page"
            )
            members = page.locator(".stat", has_text="Members").locator("dd")
            expect(members).to_have_text("2")
            brand = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand-primary')")
            assert brand.strip() == "#1f4e79"

            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{live_server.url}/login/")
            expect(page.get_by_text("You have signed out.")).to_be_visible()
        finally:
            browser.close()
