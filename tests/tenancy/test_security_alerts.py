"""Security alerts: an API key created, two-factor sign-in turned off, an account locked after repeated failed
sign-ins and new invoice addresses are told to the organization's people on the channels they chose (by default
owners and admins in the portal and by email, managers in the portal, members not at all), saying who did what and
where to undo it; a person's change is told in every organization they belong to."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from notifications.models import Notification
from tenancy.models import AuditEvent, Role
from tenancy.services import api_key_create, invoice_emails_update, mfa_disable
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(acme, alice, bob):
    """Alice owns Acme, Dana administers it, Mike manages it, Bob is a member."""
    dana = UserFactory(email="dana@acme.test", full_name="Dana Admin")
    MembershipFactory(user=dana, organization=acme, role=Role.ADMIN)
    mike = UserFactory(email="mike@acme.test", full_name="Mike Manager")
    MembershipFactory(user=mike, organization=acme, role=Role.MANAGER)
    return {"alice": alice, "dana": dana, "mike": mike, "bob": bob}


def told(event_type: str) -> dict[str, tuple[str, str]]:
    return {
        note.user.email: (note.title, note.body)
        for note in Notification.objects.filter(event_type=event_type).select_related("user")
    }


def test_an_api_key_created_is_told_to_owners_admins_and_managers(
    acme, people, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        api_key_create(name="Accounting sync", scopes=["billing:read"], organization=acme, created_by=people["dana"])
    notes = told("security.api_key_created")
    assert set(notes) == {"alice@acme.test", "dana@acme.test", "mike@acme.test"}  # not Bob, a member
    title, body = notes["alice@acme.test"]
    assert title == "API key Accounting sync created"
    assert re.match(r"Dana Admin created the API key Accounting sync \(keel_[A-Za-z0-9]{8}\.\.\.\)", body)
    assert "with the scopes billing:read. If you did not expect it, revoke it on the API keys page." in body
    emailed = sorted(to for mail in mailoutbox for to in mail.to if "API key" in mail.subject)
    assert emailed == ["alice@acme.test", "dana@acme.test"]  # managers are told in the portal only


def test_two_factor_turned_off_is_told_in_every_organization_of_the_person(acme, initech, people):
    MembershipFactory(user=people["bob"], organization=initech, role=Role.MEMBER)
    ian = UserFactory(email="ian@initech.test", full_name="Ian Owner")
    MembershipFactory(user=ian, organization=initech, role=Role.OWNER)
    mfa_disable(user=people["bob"])
    notes = told("security.mfa_disabled")
    assert set(notes) == {"alice@acme.test", "dana@acme.test", "mike@acme.test", "ian@initech.test"}
    assert notes["ian@initech.test"][0] == "Two-factor sign-in turned off for bob@acme.test"
    assert notes["ian@initech.test"][1].startswith("Bob Technician turned off two-factor sign-in for bob@acme.test")


def test_a_lockout_is_audited_and_told(client, acme, people):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"email": "bob@acme.test", "password": "wrong-password"}, REMOTE_ADDR="203.0.113.9")
    notes = told("security.login_locked")
    assert set(notes) == {"alice@acme.test", "dana@acme.test", "mike@acme.test"}
    assert notes["alice@acme.test"] == (
        "Sign-in locked for bob@acme.test",
        "5 failed sign-ins to bob@acme.test from 203.0.113.9 locked it for 15 minutes. If that was not them, someone "
        "may be guessing the password.",
    )
    assert AuditEvent.objects.for_org(acme).filter(action="auth.locked_out").count() == 1


def test_a_lockout_of_an_unknown_address_tells_no_one(client, acme, people):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"email": "nobody@acme.test", "password": "wrong-password"})
    assert not Notification.objects.exists()


def test_new_invoice_addresses_are_told(acme, people):
    invoice_emails_update(organization=acme, actor=people["alice"], emails=["ap@acme.test"])
    notes = told("security.invoice_emails_changed")
    assert set(notes) == {"alice@acme.test", "dana@acme.test", "mike@acme.test"}
    assert notes["dana@acme.test"][1] == (
        "Alice Owner changed where Acme Pty Ltd's invoices, reminders and contract notices are emailed: now to "
        "ap@acme.test. If you did not expect it, change it back on the Billing page."
    )
