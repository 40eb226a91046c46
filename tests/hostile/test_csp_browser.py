"""In a real browser, the Content-Security-Policy blocks nothing Keel's own pages need: no violation is reported
while a customer signs in and walks the portal, and the API docs (Swagger UI from Keel's static files) render."""

from __future__ import annotations

import pytest

from tests.portal.test_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = ["/dashboard/", "/billing/", "/support/", "/messaging/", "/settings/team/", "/settings/two-factor/"]


def test_the_portal_and_the_api_docs_run_under_the_policy(live_server, alice, acme, password, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
            )
            page.goto(f"{live_server.url}/login/")
            page.get_by_label("Email").fill(alice.email)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{live_server.url}/dashboard/")
            # htmx loaded from the static files and ran: it defines its global.
            assert page.evaluate("typeof window.htmx") == "object"
            for path in PAGES:
                response = page.goto(f"{live_server.url}{path}")
                assert response is not None and response.status < 400, path

            page.goto(f"{live_server.url}/api/docs/")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Keel API", timeout=15000)
        finally:
            browser.close()
    assert violations == []


def test_a_data_confirm_form_asks_first(live_server, alice, password, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/login/")
            page.set_content(
                '<form id="f" data-confirm="Really?" action="/nowhere/"><button>Go</button></form>'
                '<script src="/static/js/keel.js"></script>'
            )
            asked: list[str] = []

            def dismiss(dialog):
                asked.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            page.get_by_role("button", name="Go").click()
            page.wait_for_timeout(300)
            assert asked == ["Really?"]
            assert "/nowhere/" not in page.url
        finally:
            browser.close()
