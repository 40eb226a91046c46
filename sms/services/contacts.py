"""Contacts, consent and the do-not-contact list. Every consent or DNC change is written to the contact's timeline
(``ConsentEvent``) in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import available_timezones

from django.db import IntegrityError, transaction
from django.utils import timezone

from events.services import publish
from sms.models import ConsentEvent, ConsentKind, Contact, DncReason, DoNotContact
from sms.phones import DEFAULT_REGION, e164
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization

ZONES = frozenset(available_timezones())
EDITABLE = ("first_name", "last_name", "email", "timezone", "tags", "attributes")


def phone_field(raw: Any, field: str = "phone", region: str = DEFAULT_REGION) -> str:
    try:
        return e164(str(raw or ""), region)
    except ValueError as bad:
        raise ServiceValidationError({field: [str(bad)]}) from None


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name in ("first_name", "last_name"):
        if name in data:
            clean[name] = str(data[name] or "").strip()[:100]
    if "email" in data:
        email = str(data["email"] or "").strip()
        if email and ("@" not in email or len(email) > 254 or " " in email):
            errors["email"] = ["Enter a valid email address."]
        clean["email"] = email
    if "timezone" in data:
        zone = str(data["timezone"] or "").strip()
        if zone and zone not in ZONES:
            errors["timezone"] = [f"{zone!r} is not a time zone (use a name like Australia/Sydney)."]
        clean["timezone"] = zone
    if "tags" in data:
        tags = data["tags"]
        if isinstance(tags, str):
            tags = [tag for part in tags.split(";") for tag in part.split(",")]
        if not isinstance(tags, list | tuple | set) or not all(isinstance(tag, str) for tag in tags):
            errors["tags"] = ["Tags are a list of words."]
        else:
            clean["tags"] = Contact.tags_text(list(tags))
            if len(clean["tags"]) > 500:
                errors["tags"] = ["Too many tags (500 characters at most)."]
    if "attributes" in data:
        if not isinstance(data["attributes"], dict):
            errors["attributes"] = ["Attributes are an object of names and values."]
        else:
            clean["attributes"] = data["attributes"]
    if errors:
        raise ServiceValidationError(errors)
    return clean


def contact_create(
    *,
    organization: Organization,
    phone: str,
    data: dict[str, Any] | None = None,
    consent: dict[str, Any] | None = None,
    region: str = DEFAULT_REGION,
) -> Contact:
    """A new contact; ``consent`` ({"source", "text", "at"}) records that the contact agreed to receive messages."""
    phone_e164 = phone_field(phone, region=region)
    fields = _clean(data or {})
    with transaction.atomic():
        if Contact.objects.for_org(organization).filter(phone_e164=phone_e164).exists():
            raise ConflictError("A contact with this phone number exists.", field="phone")
        try:
            with transaction.atomic():
                contact = Contact.objects.create(organization=organization, phone_e164=phone_e164, **fields)
        except IntegrityError:  # created at the same moment by another request
            raise ConflictError("A contact with this phone number exists.", field="phone") from None
        if consent:
            consent_record(contact=contact, **consent)
    return contact


def contact_update(*, contact: Contact, data: dict[str, Any]) -> Contact:
    fields = _clean(data)
    for name, value in fields.items():
        setattr(contact, name, value)
    if fields:
        contact.save(update_fields=[*fields, "updated_at"])
    return contact


def consent_record(*, contact: Contact, source: str, text: str = "", at: datetime | None = None) -> Contact:
    """The contact agreed to receive messages: when, where (a web form, an import, a reply) and to what wording."""
    source = (source or "").strip()[:120]
    if not source:
        raise ServiceValidationError({"consent_source": ["Say where the consent was given."]})
    at = at or timezone.now()
    if timezone.is_naive(at):
        raise ServiceValidationError({"consented_at": ["Give the time with its offset or zone."]})
    with transaction.atomic():
        contact.consent_at, contact.consent_source, contact.consent_text = at, source, text
        contact.save(update_fields=["consent_at", "consent_source", "consent_text", "updated_at"])
        ConsentEvent.objects.create(
            organization_id=contact.organization_id,
            contact=contact,
            phone_e164=contact.phone_e164,
            kind=ConsentKind.GIVEN,
            source=source,
            text=text,
            at=at,
        )
    return contact


def consent_withdraw(*, contact: Contact, source: str) -> Contact:
    with transaction.atomic():
        contact.consent_at, contact.consent_source, contact.consent_text = None, "", ""
        contact.save(update_fields=["consent_at", "consent_source", "consent_text", "updated_at"])
        ConsentEvent.objects.create(
            organization_id=contact.organization_id,
            contact=contact,
            phone_e164=contact.phone_e164,
            kind=ConsentKind.WITHDRAWN,
            source=source[:120],
        )
    return contact


def dnc_add(*, organization: Organization, phone_e164: str, reason: str, source: str = "") -> DoNotContact:
    """Put a number on the do-not-contact list (once; adding it again keeps the first entry) and note it in the
    contact's timeline. Nothing is sent to it from then on."""
    if reason not in DncReason.values:
        raise ServiceValidationError({"reason": [f"Must be one of {', '.join(DncReason.values)}."]})
    with transaction.atomic():
        entry, created = DoNotContact.objects.for_org(organization).get_or_create(
            organization=organization, phone_e164=phone_e164, defaults={"reason": reason, "source": source[:120]}
        )
        if created:
            contact = Contact.objects.for_org(organization).filter(phone_e164=phone_e164).first()
            ConsentEvent.objects.create(
                organization=organization,
                contact=contact,
                phone_e164=phone_e164,
                kind=ConsentKind.DNC_ADDED,
                source=source[:120] or reason,
            )
            publish(organization, "contact.opted_out", {"phone": phone_e164, "reason": reason})
    return entry


def dnc_remove(*, organization: Organization, phone_e164: str, source: str) -> bool:
    """Take a number off the do-not-contact list; False when it was not on it."""
    with transaction.atomic():
        deleted, _ = DoNotContact.objects.for_org(organization).filter(phone_e164=phone_e164).delete()
        if not deleted:
            return False
        contact = Contact.objects.for_org(organization).filter(phone_e164=phone_e164).first()
        ConsentEvent.objects.create(
            organization=organization,
            contact=contact,
            phone_e164=phone_e164,
            kind=ConsentKind.DNC_REMOVED,
            source=source[:120],
        )
        publish(organization, "contact.opted_in", {"phone": phone_e164})
    return True
