"""What the two public messaging endpoints touch besides their own rows: a status callback locks its message's send
job alone (the organization's row and the contact's stay free for the organization's other callbacks and services),
and neither a callback nor a click on a short link reads the organization's logo."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sms.models import Contact, JobState, ShortLink
from sms.services.callbacks import Outcome, status_apply
from tenancy.models import Organization
from tests.sms.test_status_webhook import ACCOUNT, SITE, TOKEN, deliver, make_job, params

LOGO_COLUMN = '."brand_logo"'  # the column itself: brand_logo_type and brand_logo_version are quoted apart
PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture(autouse=True)
def _twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.SITE_URL = SITE


@pytest.mark.django_db(transaction=True)
def test_a_callback_locks_its_job_alone(acme: Organization) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    job = make_job(acme, "+61412345678", "SM" + "b" * 32)
    held, release = threading.Event(), threading.Event()

    def hold_organization_and_contact() -> None:
        try:
            with transaction.atomic():
                Organization.objects.select_for_update().get(pk=acme.pk)
                Contact.objects.select_for_update().get(pk=job.contact_id)
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_organization_and_contact)
    holder.start()
    try:
        assert held.wait(30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Waiting for either row would end in an error here instead of blocking the test.
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            result = status_apply(params(job.provider_sid, "delivered"))
    finally:
        release.set()
        holder.join(30)

    assert result.outcome == Outcome.APPLIED
    job.refresh_from_db()
    assert job.state == JobState.DELIVERED


@pytest.fixture
def acme_logo(acme: Organization) -> None:
    Organization.objects.filter(pk=acme.pk).update(
        brand_logo=b"\x89PNG\r\n\x1a\n" + b"\x01" * 5000, brand_logo_type="image/png", brand_logo_version="v1"
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("acme_logo")
def test_a_status_callback_does_not_read_the_logo(acme: Organization) -> None:
    job = make_job(acme, "+61412345678", "SM" + "c" * 32)

    with CaptureQueriesContext(connection) as captured:
        response = deliver(Client(), params(job.provider_sid, "delivered"))

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.state == JobState.DELIVERED
    assert not any(LOGO_COLUMN in query["sql"] for query in captured.captured_queries)


@pytest.mark.django_db
@pytest.mark.usefixtures("acme_logo")
def test_a_click_does_not_read_the_logo(acme: Organization) -> None:
    job = make_job(acme, "+61412345678", "SM" + "d" * 32)
    ShortLink.objects.create(
        organization=acme, token="Zx81abcdEF", job=job, url="https://shop.acme.test/sale",
        expires_at=datetime.now(UTC) + timedelta(days=30),
    )  # fmt: skip

    with CaptureQueriesContext(connection) as captured:
        response = Client().get("/s/Zx81abcdEF", HTTP_USER_AGENT=PHONE_BROWSER)

    assert response.status_code == 302
    assert response["Location"] == "https://shop.acme.test/sale"
    assert job.link.clicks.filter(is_bot=False).count() == 1
    assert not any(LOGO_COLUMN in query["sql"] for query in captured.captured_queries)
