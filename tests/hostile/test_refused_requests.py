"""Requests Django refuses before any view: each answer says why, with the status that fits, and nothing is written.

- A body past ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413, on the API, the webhooks and the portal alike.
- Too many form fields, or a host the site does not serve, is 400 with the reason.
- The API and the webhooks answer ``{"detail": ...}``; pages answer a short HTML page.
"""

from __future__ import annotations

import json

import pytest

from qualification.models import Qualification
from sms.models import StatusCallback

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def small_limits(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20


def _big_json() -> str:
    return json.dumps({"customer_email": "sam@example.com", "name": "x" * (3 * 1024 * 1024)})


def test_a_questionnaire_past_the_size_limit_is_413_in_json_and_writes_nothing(client, small_limits):
    response = client.post("/api/qualify/core-plus", data=_big_json(), content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The request body is larger than the 2 MB this server accepts."}
    assert not Qualification.objects.exists()


def test_a_twilio_callback_past_the_size_limit_is_413_and_records_nothing(client, small_limits):
    body = "MessageSid=SM1&MessageStatus=delivered&Body=" + "x" * (3 * 1024 * 1024)

    response = client.post("/webhooks/twilio/status/", data=body, content_type=FORM)

    assert response.status_code == 413
    assert "larger than the 2 MB" in response.json()["detail"]
    assert not StatusCallback.objects.exists()


def test_a_sign_in_form_past_the_size_limit_is_a_413_page(client, small_limits):
    response = client.post("/login/", data="email=" + "x" * (3 * 1024 * 1024), content_type=FORM)

    assert response.status_code == 413
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert "<h1>Request too large</h1>" in page
    assert "larger than the 2 MB this server accepts" in page
    assert "no-cache" in response["Cache-Control"]


def test_too_many_form_fields_is_400_naming_the_limit(client, small_limits):
    body = "&".join(f"f{n}=v" for n in range(25))

    response = client.post("/login/", data=body, content_type=FORM)

    assert response.status_code == 400
    assert "more than the 20 form fields this server accepts" in response.content.decode()


def test_a_host_the_site_does_not_serve_is_400_saying_so(client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]

    response = client.get("/api/tickets/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json() == {"detail": "This server does not answer for the host the request names."}


def test_a_body_within_the_limit_is_still_processed(client, small_limits):
    answers = {
        "customer_email": "sam@example.com", "name": "Sam", "company_name": "Prospect Pty Ltd",
        "phone": "+61 2 9000 0000", "business_type": "small_business", "current_it_support": ["another_msp"],
        "tech_comfort_level": 3, "pain_point": "security", "timeline": "immediately",
    }  # fmt: skip

    response = client.post("/api/qualify/core-plus", data=json.dumps(answers), content_type="application/json")

    assert response.status_code == 201
    assert Qualification.objects.count() == 1
