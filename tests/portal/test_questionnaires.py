"""Public questionnaire pages and the status page: same rules as the API, errors beside the fields."""

from __future__ import annotations

import pytest
from django.test import Client

from qualification.models import Qualification

pytestmark = pytest.mark.django_db

CORE_FORM = {
    "customer_email": "owner@newshop.test",
    "name": "Nina New",
    "company_name": "New Shop",
    "business_type": "small_business",
    "current_it_support": ["part_time", "another_msp"],
    "tech_comfort_level": "4",
    "pain_point": "backups",
    "timeline": "within_3_months",
}


@pytest.mark.isolation("portal:questionnaire_core_plus")
def test_core_plus_form_scores_and_redirects_to_the_status_page(client: Client, acme, carol):
    page = client.get("/questionnaire-core-plus")
    assert page.status_code == 200
    assert "Acme" not in page.content.decode() and "Globex" not in page.content.decode()
    response = client.post("/questionnaire-core-plus", CORE_FORM)
    qualification = Qualification.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/qualification-status/{qualification.id}"
    assert (qualification.auto_score, qualification.status) == (90, "AUTO_APPROVED")
    assert qualification.answers["current_it_support"] == ["part_time", "another_msp"]


def test_core_plus_form_shows_errors_beside_fields_and_stores_nothing(client: Client):
    bad = {**CORE_FORM, "current_it_support": ["none", "part_time"], "tech_comfort_level": "9", "customer_email": "x"}
    response = client.post("/questionnaire-core-plus", bad)
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"current_it_support", "tech_comfort_level", "customer_email"}
    assert "cannot be combined" in response.content.decode()
    assert Qualification.objects.count() == 0


def test_duplicate_submission_is_shown_on_the_email_field(client: Client):
    client.post("/questionnaire-core-plus", CORE_FORM)
    response = client.post("/questionnaire-core-plus", CORE_FORM)
    assert response.status_code == 409
    assert "already submitted" in str(response.context["form"].errors["customer_email"])
    assert Qualification.objects.count() == 1


@pytest.mark.isolation("portal:questionnaire_premium")
def test_premium_form_uses_the_premium_table(client: Client, acme):
    data = {"customer_email": "cto@fin.test", "company_name": "Fin", "ein": "98-7654321", "employee_count": "25",
            "locations": "1", "years_in_business": "5", "it_infrastructure": ["servers", "laptops", "network",
            "firewall", "cloud"], "security_posture": "4", "compliance_needs": ["pci_dss"],
            "budget_range": "2500_4999", "decision_maker": "on", "timeline": "immediately"}  # fmt: skip
    response = client.post("/questionnaire-premium", data)
    assert response.status_code == 302
    qualification = Qualification.objects.get()
    assert (qualification.auto_score, qualification.status) == (100, "APPROVED")
    assert "Acme" not in client.get(response["Location"]).content.decode()


@pytest.mark.isolation("portal:enterprise_discovery")
def test_enterprise_form_requires_scope(client: Client, acme):
    response = client.post("/enterprise-discovery", {"customer_email": "cio@big.test", "company_name": "Big"})
    assert response.status_code == 400
    assert {"current_it_setup", "project_scope"} <= set(response.context["form"].errors)
    assert "Acme" not in response.content.decode()


@pytest.mark.isolation("portal:qualification_status")
def test_status_page_shows_score_status_and_next_step_without_personal_data(client: Client, acme, alice):
    client.post("/questionnaire-core-plus", CORE_FORM)
    qualification = Qualification.objects.get()
    page = client.get(f"/qualification-status/{qualification.id}")
    body = page.content.decode()
    assert page.status_code == 200
    assert "90 / 100" in body and "Approved automatically" in body and "get your quote" in body
    assert "owner@newshop.test" not in body and "Nina" not in body and "Acme" not in body
    assert 'hx-trigger="every 5s"' not in body  # final: no more polling
    assert client.get("/qualification-status/00000000-0000-0000-0000-000000000000").status_code == 404


def test_status_page_polls_until_final(client: Client):
    client.post("/questionnaire-core-plus", {**CORE_FORM, "business_type": "soho", "current_it_support": ["none"]})
    qualification = Qualification.objects.get()
    assert qualification.status == "MANUAL_REVIEW"
    page = client.get(f"/qualification-status/{qualification.id}").content.decode()
    assert 'hx-trigger="every 5s"' in page
    assert 'http-equiv="refresh"' in page
    fragment = client.get(f"/qualification-status/{qualification.id}", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.strip().startswith('<div id="qualification-status"')
