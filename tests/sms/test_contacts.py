"""Contacts, consent and the do-not-contact list: every change is in the contact's timeline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events.models import Event
from sms.models import ConsentEvent, Contact, DoNotContact
from sms.phones import e164
from sms.services.contacts import consent_record, consent_withdraw, contact_create, contact_update, dnc_add, dnc_remove
from tenancy.errors import ConflictError, ServiceValidationError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("0412 345 678", "AU", "+61412345678"),
        ("+61 (0)412-345-678", "AU", "+61412345678"),
        ("(02) 9876 5432", "AU", "+61298765432"),
        ("212 555 0134", "US", "+12125550134"),
        ("+44 20 7946 0958", "AU", "+442079460958"),
    ],
)
def test_numbers_become_e164(raw, region, expected):
    assert e164(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "12", "not a number", "0412 345"])
def test_a_number_that_is_not_one_says_why(raw):
    with pytest.raises(ValueError, match="phone number"):
        e164(raw)


def test_a_contact_is_one_per_number_per_organization(acme, globex):
    contact = contact_create(
        organization=acme, phone="0412 345 678", data={"first_name": "Ann", "tags": ["VIP", "perth", "vip"]}
    )
    assert (contact.phone_e164, contact.tag_list, contact.tags) == ("+61412345678", ["perth", "vip"], ",perth,vip,")
    with pytest.raises(ConflictError):
        contact_create(organization=acme, phone="+61412345678")
    contact_create(organization=globex, phone="+61412345678")  # another organization's list is its own
    assert Contact.objects.count() == 2


def test_bad_fields_are_named_and_nothing_is_written(acme):
    with pytest.raises(ServiceValidationError) as bad:
        contact_create(organization=acme, phone="0412345678", data={"email": "nope", "timezone": "Moon/Base"})
    assert set(bad.value.message_dict) == {"email", "timezone"}
    with pytest.raises(ServiceValidationError) as bad:
        contact_create(organization=acme, phone="12")
    assert "phone" in bad.value.message_dict
    assert not Contact.objects.exists()


def test_consent_and_its_withdrawal_are_kept_in_the_timeline(acme):
    contact = contact_create(
        organization=acme,
        phone="0412345678",
        consent={"source": "web form", "text": "I agree to receive offers by SMS."},
    )
    assert contact.has_consent and contact.consent_text == "I agree to receive offers by SMS."
    consent_withdraw(contact=contact, source="phone call")
    contact.refresh_from_db()
    assert contact.consent_at is None and contact.consent_source == ""
    assert list(ConsentEvent.objects.order_by("at", "id").values_list("kind", "source")) == [
        ("consent_given", "web form"),
        ("consent_withdrawn", "phone call"),
    ]
    with pytest.raises(ServiceValidationError):
        consent_record(contact=contact, source=" ")
    with pytest.raises(ServiceValidationError):
        consent_record(contact=contact, source="form", at=datetime(2026, 1, 1))  # noqa: DTZ001 - the naive time refused


def test_dnc_once_per_number_with_its_timeline_and_events(acme, django_capture_on_commit_callbacks):
    contact = contact_create(organization=acme, phone="0412345678")
    first = dnc_add(organization=acme, phone_e164=contact.phone_e164, reason="manual", source="alice")
    again = dnc_add(organization=acme, phone_e164=contact.phone_e164, reason="import")
    assert first.pk == again.pk and again.reason == "manual" and DoNotContact.objects.count() == 1
    assert dnc_remove(organization=acme, phone_e164=contact.phone_e164, source="re-consented") is True
    assert dnc_remove(organization=acme, phone_e164=contact.phone_e164, source="again") is False
    assert list(contact.consent_events.order_by("at", "id").values_list("kind", flat=True)) == [
        "dnc_added",
        "dnc_removed",
    ]
    assert list(Event.objects.order_by("created_at").values_list("type", flat=True)) == [
        "contact.opted_out",
        "contact.opted_in",
    ]
    with pytest.raises(ServiceValidationError):
        dnc_add(organization=acme, phone_e164=contact.phone_e164, reason="because")


def test_a_number_without_a_contact_can_be_on_the_list(acme, globex):
    dnc_add(organization=acme, phone_e164="+61499999999", reason="manual")
    assert ConsentEvent.objects.get().contact is None
    assert not DoNotContact.objects.for_org(globex).exists()


def test_updates_change_only_what_is_given(acme):
    contact = contact_create(organization=acme, phone="0412345678", data={"first_name": "Ann", "last_name": "Lee"})
    contact_update(contact=contact, data={"last_name": "Li", "attributes": {"plan": "gold"}})
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name, contact.attributes) == ("Ann", "Li", {"plan": "gold"})
    assert contact.updated_at > datetime(2020, 1, 1, tzinfo=UTC)
