"""Real-browser flow of the Messaging area: Alice imports contacts from a CSV file (upload, preview, confirm) and
finds them in her contact list."""

from __future__ import annotations

from typing import Any

import pytest

from sms.models import Contact
from sms.services.contacts import contact_create
from tenancy.models import Organization

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

CSV = (
    "phone,first_name,last_name,tags,consent\n"
    "0412 000 001,Ann,Lee,vip,yes\n"
    "0412000002,Bo,Chan,staff,no\n"
    "0412000003,Cy,Old,,\n"
    "12,Bad,Row,,\n"
)


def test_alice_previews_and_imports_a_csv_file(live_server, alice, acme, password, monkeypatch, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    existing: Any = contact_create(organization=acme, phone="0412000003", data={"first_name": "Cyrus"})
    organization: Organization = acme
    upload = tmp_path / "people.csv"
    upload.write_text(CSV, encoding="utf-8")
    # Playwright's sync API runs an event loop in this thread; the ORM work is done before it starts.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{live_server.url}/login/")
            page.get_by_label("Email").fill(alice.email)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{live_server.url}/dashboard/")

            page.get_by_role("navigation", name="Main").get_by_role("link", name="Messaging").click()
            page.get_by_role("navigation", name="Messaging").get_by_role("link", name="Import").click()
            page.get_by_label("CSV file").set_input_files(str(upload))
            expect(page.get_by_label("Default region")).to_have_value("AU")
            page.get_by_role("button", name="Preview the import").click()

            expect(page.get_by_role("heading", level=1)).to_have_text("Import preview")
            counts = page.locator(".import-counts")
            expect(counts.locator('[data-count="total_rows"]')).to_have_text("4")
            expect(counts.locator('[data-count="created"]')).to_have_text("2")
            expect(counts.locator('[data-count="updated"]')).to_have_text("1")
            expect(counts.locator('[data-count="invalid_rows"]')).to_have_text("1")
            expect(page.locator(".import-errors tbody tr")).to_have_count(1)
            expect(page.locator(".import-errors")).to_contain_text("'12' is not a valid phone number")
            # Nothing is saved before the confirmation (asked through the portal: the ORM is not used while the
            # browser runs, since Playwright's greenlet would open a database connection of its own).
            listing = context.new_page()
            listing.goto(f"{live_server.url}/messaging/contacts/")
            expect(listing.locator("table.contacts tbody tr")).to_have_count(1)
            listing.close()

            page.get_by_role("button", name="Import 3 contacts").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Import done")
            expect(page.get_by_text("Imported: 2 new contacts, 1 updated.")).to_be_visible()
            expect(page.locator('.import-counts [data-count="created"]')).to_have_text("2")

            page.get_by_role("link", name="See the contacts").click()
            rows = page.locator("table.contacts tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.nth(0)).to_contain_text("Bo Chan")
            expect(rows.nth(1)).to_contain_text("Ann Lee")
            expect(rows.nth(1)).to_contain_text("Given")
            expect(rows.nth(2)).to_contain_text("Cy Old")
        finally:
            browser.close()
    existing.refresh_from_db()
    assert (existing.first_name, existing.last_name) == ("Cy", "Old")
    assert Contact.objects.for_org(organization).count() == 3
