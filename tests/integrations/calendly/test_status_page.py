"""The public status page: the booking link while a call is to book, the call's time once booked."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from integrations.calendly import sandbox
from integrations.calendly.models import Booking, WebhookEvent
from tests.factories import UserFactory
from tests.helpers import admin_client
from tests.integrations.calendly.conftest import deliver, invitee, make

pytestmark = pytest.mark.django_db


def page(client: Client, qualification) -> str:
    response = client.get(f"/qualification-status/{qualification.id}")
    assert response.status_code == 200
    return response.content.decode()


def test_the_booked_call_is_shown_in_the_invitees_time_zone(client):
    qualification = make(name="Pat Prospect", company_name="Prospect Pty")
    deliver(client, invitee(qualification.customer_email))
    body = page(client, qualification)
    assert "Discovery call scheduled" in body
    assert "Monday 2 December 2030, 10:00 AEDT" in body and "Australia/Sydney" in body
    assert 'datetime="2030-12-02T10:00:00+11:00"' in body
    assert "Book your discovery call" not in body
    assert "pat@prospect.test" not in body and "Pat Prospect" not in body and "Prospect Pty" not in body
    # The htmx refresh shows the same.
    fragment = client.get(f"/qualification-status/{qualification.id}", HTTP_HX_REQUEST="true").content.decode()
    assert "Monday 2 December 2030, 10:00 AEDT" in fragment


@pytest.mark.parametrize("zone", [None, "", "Mars/Olympus_Mons"])
def test_without_a_usable_time_zone_the_sites_is_used(client, settings, zone):
    settings.TIME_ZONE = "UTC"
    qualification = make()
    deliver(client, invitee(qualification.customer_email, zone=zone))
    assert "Sunday 1 December 2030, 23:00 UTC" in page(client, qualification)


def test_a_rescheduled_call_shows_the_new_time(client):
    qualification = make()
    deliver(client, invitee(qualification.customer_email, name="OLD"))
    deliver(client, invitee(qualification.customer_email, name="OLD", event="invitee.canceled", rescheduled=True))
    deliver(client, invitee(qualification.customer_email, name="NEW", start="2030-12-03T01:00:00Z",
                            end="2030-12-03T01:30:00Z"))  # fmt: skip
    body = page(client, qualification)
    assert "Tuesday 3 December 2030, 12:00 AEDT" in body
    assert "Monday 2 December 2030" not in body


def test_the_booking_link_names_the_qualification_and_no_person(client, settings):
    settings.CALENDLY_BOOKING_URL = "https://calendly.com/keel-msp/discovery?hide_gdpr_banner=1&utm_source=old"
    qualification = make(email="pat+msp@prospect.test", name="Pat O'Prospect & Co")
    body = page(client, qualification)
    assert "Book your discovery call" in body and "Pick a time that suits you" in body
    href = body.split('class="button" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    url = urlsplit(href)
    assert (url.scheme, url.netloc, url.path) == ("https", "calendly.com", "/keel-msp/discovery")
    assert parse_qs(url.query) == {"hide_gdpr_banner": ["1"], "utm_source": ["keel"], "utm_medium": ["status_page"],
                                   "utm_content": [str(qualification.id)]}  # fmt: skip
    assert "prospect.test" not in body and "Prospect" not in body
    # A booking made through the link comes back with the id, and moves this qualification.
    deliver(client, invitee("typed-another@example.test", utm_content=str(qualification.id)))
    body = page(client, qualification)
    assert "Monday 2 December 2030, 10:00 AEDT" in body and "Book your discovery call" not in body


def test_without_a_booking_page_we_promise_to_call(client):
    qualification = make()
    body = page(client, qualification)
    assert "we will contact you to book a time" in body
    assert "Book your discovery call" not in body


def test_a_canceled_call_offers_the_link_again(client, settings):
    settings.CALENDLY_BOOKING_URL = "https://calendly.com/keel-msp/discovery"
    qualification = make()
    deliver(client, invitee(qualification.customer_email))
    deliver(client, invitee(qualification.customer_email, event="invitee.canceled", created_at="2030-11-21T00:00:00Z"))
    body = page(client, qualification)
    assert "Book your discovery call" in body and "AEDT" not in body


@pytest.mark.parametrize("status", ["MANUAL_REVIEW", "AUTO_APPROVED", "NOT_QUALIFIED"])
def test_no_link_when_the_next_step_is_not_a_call(client, settings, status):
    settings.CALENDLY_BOOKING_URL = "https://calendly.com/keel-msp/discovery"
    assert "calendly.com" not in page(client, make(status=status, tier="core_plus"))


def test_the_sandbox_books_and_cancels_through_the_real_webhook(client, capsys):
    qualification = make()
    call_command("calendly_simulate", str(qualification.id), "--at", "2030-12-02T10:00", "--zone", "Australia/Sydney")
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL_SCHEDULED"
    assert "Monday 2 December 2030, 10:00 AEDT" in page(client, qualification)
    uri = Booking.objects.get().invitee_uri
    call_command("calendly_simulate", qualification.customer_email, "--reschedule", uri, "--at", "2030-12-04T09:00")
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL_SCHEDULED"
    new_uri = Booking.objects.get(status="scheduled").invitee_uri
    call_command("calendly_simulate", str(qualification.id), "--cancel", new_uri)
    qualification.refresh_from_db()
    assert qualification.status == "DISCOVERY_CALL"
    assert WebhookEvent.objects.count() == 4  # book, cancel-for-reschedule, book again, cancel
    assert "is DISCOVERY_CALL" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No qualification"):
        call_command("calendly_simulate", "nobody@nowhere.test")


def test_the_sandbox_does_not_run_in_production(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.PRODUCTION = True
    qualification = make()
    with pytest.raises(ImproperlyConfigured):
        sandbox.deliver(sandbox.invitee_event(qualification, start=sandbox.timezone.now()))
    assert not Booking.objects.exists()


def test_staff_see_bookings_and_deliveries_read_only(client):
    qualification = make()
    deliver(client, invitee(qualification.customer_email))
    staff = admin_client(UserFactory(email="root@keel.test", is_staff=True, is_superuser=True))
    bookings = staff.get("/admin/calendly/booking/")
    assert bookings.status_code == 200
    assert f"/admin/qualification/qualification/{qualification.pk}/change/" in bookings.content.decode()
    booking = Booking.objects.get()
    detail = staff.get(f"/admin/calendly/booking/{booking.pk}/change/")
    assert detail.status_code == 200 and "Save" not in detail.content.decode()
    events = staff.get("/admin/calendly/webhookevent/")
    assert events.status_code == 200 and "scheduled" in events.content.decode()
    assert staff.get("/admin/calendly/booking/add/").status_code == 403
