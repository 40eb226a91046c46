"""The public qualification API."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from rest_framework.test import APIClient

from qualification.models import Qualification
from tenancy.api_auth import PublicRateThrottle
from tests.helpers import race
from tests.qualification.conftest import CORE_PLUS, ENTERPRISE, PREMIUM

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


@pytest.mark.isolation("api-qualify-core-plus")
def test_core_plus_submission_is_scored_and_reveals_no_personal_data(client, acme, alice):
    response = client.post("/api/qualify/core-plus", CORE_PLUS, format="json")
    assert response.status_code == 201
    body = response.json()
    qualification = Qualification.objects.get()
    assert body == {
        "id": str(qualification.id),
        "tier": "core_plus",
        "auto_score": 90,
        "qualification_status": "AUTO_APPROVED",
        "status_url": f"/qualification-status/{qualification.id}",
    }
    assert qualification.customer_email == "prospect@example.test"
    assert qualification.answers["current_it_support"] == ["another_msp"]
    assert qualification.assigned_to is None  # approved automatically: nobody needs to look


def test_trailing_slash_is_optional(client):
    assert client.post("/api/qualify/core-plus/", CORE_PLUS, format="json").status_code == 201


def test_duplicate_email_for_the_same_tier_is_409_and_changes_nothing(client):
    client.post("/api/qualify/core-plus", CORE_PLUS, format="json")
    before = Qualification.objects.values().get()
    again = {**CORE_PLUS, "customer_email": "PROSPECT@example.test", "business_type": "soho"}
    response = client.post("/api/qualify/core-plus", again, format="json")
    assert response.status_code == 409
    assert "customer_email" in response.json()
    assert Qualification.objects.values().get() == before


def test_same_email_may_qualify_for_another_tier(client):
    client.post("/api/qualify/core-plus", {**CORE_PLUS, "customer_email": "cfo@bigco.test"}, format="json")
    assert client.post("/api/qualify/premium", PREMIUM, format="json").status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [("business_type", "enterprise"), ("current_it_support", ["none", "part_time"]), ("tech_comfort_level", 9),
     ("pain_point", "printers"), ("timeline", "later"), ("customer_email", "not-an-email"), ("phone", "call me")],
)  # fmt: skip
def test_invalid_core_plus_input_is_400_naming_the_field_and_stores_nothing(client, field, value):
    response = client.post("/api/qualify/core-plus", {**CORE_PLUS, field: value}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert Qualification.objects.count() == 0


def test_non_json_body_is_rejected(client):
    response = client.post(
        "/api/qualify/core-plus", "business_type=soho", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert client.post("/api/qualify/core-plus", [1, 2], format="json").status_code == 400


@pytest.mark.isolation("api-qualify-premium")
def test_premium_submission_needing_a_call_is_assigned_to_sales(
    client, sales_reps, acme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/qualify/premium", PREMIUM, format="json")
    assert response.status_code == 201
    body = response.json()
    # 15 + 12 + 10 + 5 + 7 + 0 + 10 = 59
    assert (body["auto_score"], body["qualification_status"]) == (59, "DISCOVERY_CALL")
    qualification = Qualification.objects.get()
    assert qualification.assigned_to in sales_reps
    assert qualification.answers["website"] == "https://bigco.test"
    [message] = mail.outbox
    assert qualification.assigned_to is not None
    assert message.to == [qualification.assigned_to.email]
    assert "BigCo" in message.subject
    assert "acme" not in str(body).lower()


@pytest.mark.parametrize(("field", "value"), [("ein", "123456789"), ("website", "not a site"), ("employee_count", 0)])
def test_invalid_premium_input_is_400_naming_the_field(client, field, value):
    response = client.post("/api/qualify/premium", {**PREMIUM, field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Qualification.objects.count() == 0


@pytest.mark.isolation("api-qualify-enterprise")
def test_enterprise_discovery_has_no_score_and_waits_for_review(client, sales_reps):
    response = client.post("/api/qualify/enterprise", ENTERPRISE, format="json")
    assert response.status_code == 201
    assert response.json()["auto_score"] is None
    assert response.json()["qualification_status"] == "SUBMITTED"
    missing = client.post("/api/qualify/enterprise", {"customer_email": "x@y.test"}, format="json")
    assert missing.status_code == 400
    assert {"company_name", "current_it_setup", "project_scope"} <= set(missing.json())


@pytest.mark.isolation("api-qualify-status")
def test_status_shows_next_step_and_no_personal_data(client):
    created = client.post("/api/qualify/core-plus", CORE_PLUS, format="json").json()
    response = client.get(f"/api/qualify/status/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "tier", "auto_score", "qualification_status", "next_step", "updated_at"}
    assert body["next_step"] == "get_quote"
    assert "prospect" not in str(body).lower()


@pytest.mark.parametrize("ident", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_status_of_unknown_id_is_404(client, ident):
    assert client.get(f"/api/qualify/status/{ident}").status_code == 404


def test_public_endpoints_are_throttled_per_ip(client, monkeypatch):
    monkeypatch.setattr(PublicRateThrottle, "THROTTLE_RATES", {"public": "2/min"})
    codes = [client.get("/api/qualify/status/not-a-uuid").status_code for _ in range(3)]
    assert codes == [404, 404, 429]
    other = APIClient(REMOTE_ADDR="198.51.100.7")
    assert other.get("/api/qualify/status/not-a-uuid").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_submissions_store_one(client):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    codes = race(lambda: APIClient().post("/api/qualify/core-plus", CORE_PLUS, format="json").status_code)
    assert sorted(codes) == [201, 409]
    assert Qualification.objects.count() == 1
