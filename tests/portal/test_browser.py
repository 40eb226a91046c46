"""Real-browser flows: Alice signs in to her dashboard; a prospect goes from questionnaire to a paid, signed-in
customer."""

from __future__ import annotations

import re

import pytest

from tests.quotes.conftest import price_book  # noqa: F401

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


@pytest.mark.usefixtures("price_book")
def test_a_prospect_qualifies_gets_a_quote_pays_and_lands_in_the_portal(live_server, monkeypatch, settings):
    """The whole funnel in a browser: Core+ questionnaire, status page with the score, quote, sandbox checkout
    (signed events through the webhook), and the new owner signed in to their portal."""
    from playwright.sync_api import expect, sync_playwright

    settings.STRIPE_PROVIDER = "sandbox"
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/questionnaire-core-plus")
            page.get_by_label("Work email").fill("jo@harbourcafe.test")
            page.get_by_label("Your name").fill("Jo Barista")
            page.get_by_label("Company").fill("Harbour Cafe")
            page.locator('input[name="business_type"][value="small_business"]').check()
            page.locator('input[name="current_it_support"][value="another_msp"]').check()
            page.locator('input[name="tech_comfort_level"][value="4"]').check()
            page.locator('input[name="pain_point"][value="security"]').check()
            page.locator('input[name="timeline"][value="immediately"]').check()
            page.locator("form").get_by_role("button").last.click()

            # 30 + 15 + 25 + 20 + 0 = 90: approved straight away.
            expect(page).to_have_url(re.compile(r"/qualification-status/[0-9a-f-]{36}$"))
            expect(page.locator(".facts")).to_contain_text("90 / 100")
            expect(page.locator(".facts")).to_contain_text("Approved automatically")
            page.get_by_label("People who need support").fill("12")
            page.get_by_label("Computers, servers and phones").fill("15")
            page.get_by_role("button", name="See my price").click()

            # 499 base + 2 extra users x 45 = 589.00 a month.
            expect(page).to_have_url(re.compile(r"/quote/[A-Za-z0-9_-]{43}$"))
            expect(page.locator("tfoot")).to_contain_text("589.00")
            page.get_by_role("button", name="Accept and pay").click()

            expect(page).to_have_url(re.compile(r"/sandbox/stripe/checkout/"))
            expect(page.get_by_text("jo@harbourcafe.test")).to_be_visible()
            page.get_by_role("button", name="Pay and subscribe").click()

            expect(page).to_have_url(f"{live_server.url}/dashboard/")
            expect(page.get_by_role("heading", level=1)).to_have_text("Harbour Cafe")
            expect(page.get_by_text("Welcome aboard")).to_be_visible()
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
            expect(page.locator(".stat", has_text="Plan").locator("dd")).to_have_text("Core+")
            expect(page.locator(".stat", has_text="Status").locator("dd")).to_have_text("Active")
            expect(page.locator(".stat", has_text="Monthly").locator("dd")).to_have_text("AUD 589.00")
        finally:
            browser.close()
