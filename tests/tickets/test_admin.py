"""Staff screens of the service desk: the ticket list with SLA badges, and validated calendars and policies (the
technicians' working screens are tested in test_admin_working.py)."""

from __future__ import annotations

import pytest

from tests.quotes.conftest import staff, staff_client  # noqa: F401
from tickets.models import BusinessCalendar, SlaPolicy
from tickets.services import ticket_create

pytestmark = pytest.mark.django_db


def test_ticket_list_shows_sla_badges(staff_client, acme, globex):  # noqa: F811
    ticket_create(organization=acme, subject="Printer jam", priority="P1")
    ticket_create(organization=globex, subject="VPN down")
    page = staff_client.get("/admin/tickets/ticket/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "T-1001" in body and "Printer jam" in body and "VPN down" in body and "On track" in body
    filtered = staff_client.get("/admin/tickets/ticket/?queue=breached").content.decode()
    assert "Printer jam" not in filtered and "VPN down" not in filtered
    assert "Printer jam" in staff_client.get("/admin/tickets/ticket/?priority__exact=P1").content.decode()
    assert staff_client.get("/admin/tickets/ticket/add/").status_code == 403


def test_calendar_form_refuses_bad_hours(staff_client):  # noqa: F811
    base = {"name": "Night shift", "timezone": "Australia/Perth", "holidays": "[]"}
    response = staff_client.post("/admin/tickets/businesscalendar/add/", {**base, "hours": "[[0, 1000, 900]]"})
    assert response.status_code == 200
    assert "not valid" in response.content.decode()
    assert not BusinessCalendar.objects.filter(name="Night shift").exists()
    response = staff_client.post("/admin/tickets/businesscalendar/add/", {**base, "hours": "[[0, 1320, 1440]]"})
    assert response.status_code == 302
    assert BusinessCalendar.objects.get(name="Night shift").as_calendar().timezone == "Australia/Perth"


def test_policy_form_refuses_bad_targets(staff_client, acme):  # noqa: F811
    base = {"name": "Acme", "organization": acme.pk, "at_risk_ratio": "0.80", "active": "on", "tier": ""}
    bad = staff_client.post("/admin/tickets/slapolicy/add/", {**base, "targets": '{"P1": {"first_response": -5}}'})
    assert bad.status_code == 200
    assert "whole minutes above zero" in bad.content.decode()
    good = '{"P1": {"first_response": 30, "resolution": 120}}'
    assert staff_client.post("/admin/tickets/slapolicy/add/", {**base, "targets": good}).status_code == 302
    assert SlaPolicy.objects.get(organization=acme).target("P1").resolution.total_seconds() == 7200


def test_default_policies_are_seeded_for_every_tier():
    assert sorted(SlaPolicy.objects.filter(organization=None).values_list("tier", flat=True)) == [
        "CORE_PLUS",
        "ENTERPRISE",
        "PREMIUM",
    ]
    enterprise = SlaPolicy.objects.get(tier="ENTERPRISE", organization=None)
    assert enterprise.target("P1").always_on is True
    assert enterprise.target("P1").first_response.total_seconds() == 15 * 60
