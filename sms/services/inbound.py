"""Messages contacts send to an organization's numbers: opt-out, opt-in and help keywords, and replies.

The organization is the one owning the sending number the message was sent to. The whole message, trimmed and in
any case, is compared with the organization's keyword lists (``SmsSettings``; defaults created when missing), in
this order, so a word on two lists counts as the safer one:

- **opt-out** (STOP, UNSUBSCRIBE, ...): the number goes on the do-not-contact list (by phone, so a number the
  organization has no contact for is blocked too) and the contact's consent is withdrawn; the answer confirms it.
- **opt-in** (START, UNSTOP, YES): the number comes off the list and the contact's consent is recorded again (source
  "sms reply", the keyword as its text); the answer confirms it.
- **help** (HELP, INFO): the answer names the sender and how to reach them.
- anything else, "stop please" included, is a **reply**: kept in the contact's timeline and on the replies page, and
  told to the organization's people as they chose (``sms.reply_received``: by default owners, admins and managers, by
  email and in the portal), the first of each quarter of an hour at once and the others together
  (``sms.services.reply_notices``). It gets no answer.

Every message is stored once as an ``InboundMessage`` (unique ``provider_sid``), linked to the campaign whose message
the contact last received. Twilio redelivers a webhook it got no answer to: the repeat gets the same answer and
changes nothing.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from events.services import publish
from sms.counters import sms_settings
from sms.models import (
    Campaign,
    Contact,
    DncReason,
    InboundKind,
    InboundMessage,
    JobState,
    SendingNumber,
    SendJob,
    SmsSettings,
)
from sms.phones import e164
from sms.services.contacts import consent_record, consent_withdraw, dnc_add, dnc_remove
from sms.services.reply_notices import reply_tell
from tenancy.errors import ServiceValidationError
from tenancy.models import Organization

logger = logging.getLogger(__name__)

SOURCE = "sms reply"
RECEIVED_STATES = (JobState.SENT, JobState.DELIVERED, JobState.FAILED)


def inbound_receive(*, sid: str, from_: str, to: str, body: str) -> str | None:
    """Handle one incoming message (Twilio's ``MessageSid``, ``From``, ``To`` and ``Body``) in one transaction;
    the text to answer with, or None for no answer. A message to a number no organization owns is logged and gets
    no answer. ServiceValidationError names Twilio's parameter when one is missing or unusable."""
    sid, to, body = (sid or "").strip(), (to or "").strip(), body or ""
    errors: dict[str, list[str]] = {}
    if not sid:
        errors["MessageSid"] = ["Required."]
    elif len(sid) > 64:
        errors["MessageSid"] = ["At most 64 characters."]
    if not to:
        errors["To"] = ["Required."]
    if not (from_ or "").strip():
        errors["From"] = ["Required."]
    if errors:
        raise ServiceValidationError(errors)
    number = SendingNumber.objects.select_related("organization").filter(phone_e164=to).first()
    if number is None:
        logger.warning("inbound sms %s to %s: no organization owns that number", sid, to)
        return None
    organization = number.organization
    phone = _phone(from_, organization)
    with transaction.atomic():
        settings = sms_settings(organization)
        kind, keyword = classify(body, settings)
        contact = Contact.objects.for_org(organization).filter(phone_e164=phone).first()
        campaign = _last_campaign(organization, contact, number)
        try:
            with transaction.atomic():
                message = InboundMessage.objects.create(
                    organization=organization,
                    contact=contact,
                    campaign=campaign,
                    provider_sid=sid,
                    from_e164=phone,
                    to_e164=to,
                    body=body,
                    kind=kind,
                )
        except IntegrityError:
            return _repeat(organization, settings, sid)
        if kind == InboundKind.OPT_OUT:
            dnc_add(organization=organization, phone_e164=phone, reason=DncReason.STOP_KEYWORD, source=SOURCE)
            if contact is not None and contact.has_consent:
                consent_withdraw(contact=contact, source=SOURCE)
        elif kind == InboundKind.OPT_IN:
            dnc_remove(organization=organization, phone_e164=phone, source=SOURCE)
            if contact is not None:
                consent_record(contact=contact, source=SOURCE, text=keyword)
        elif kind == InboundKind.REPLY:
            publish(
                organization,
                "contact.replied",
                {
                    "id": message.pk,
                    "phone": phone,
                    "to": to,
                    "body": body,
                    "contact": str(contact.pk) if contact is not None else None,
                    "campaign": str(campaign.pk) if campaign is not None else None,
                    "received_at": message.received_at,
                },
            )
            reply_tell(organization, message=message)
    return answer(kind, settings, organization)


def classify(body: str, settings: SmsSettings) -> tuple[str, str]:
    """The kind of message ``body`` is under the organization's keyword lists, and the keyword it matched."""
    text = body.strip().upper()
    for kind, words in (
        (InboundKind.OPT_OUT, settings.opt_out_keywords),
        (InboundKind.OPT_IN, settings.opt_in_keywords),
        (InboundKind.HELP, settings.help_keywords),
    ):
        if text and text in SmsSettings.keywords(words):
            return kind, text
    return InboundKind.REPLY, ""


def sender_name(settings: SmsSettings, organization: Organization) -> str:
    return settings.business_name.strip() or organization.name


def answer(kind: str, settings: SmsSettings, organization: Organization) -> str | None:
    """What a message of ``kind`` is answered with: every answer names the sender."""
    sender = sender_name(settings, organization)
    if kind == InboundKind.OPT_OUT:
        return f"{sender}: you will get no more messages. Reply START to opt back in."
    if kind == InboundKind.OPT_IN:
        return f"{sender}: you will get our messages again. Reply STOP to opt out."
    if kind == InboundKind.HELP:
        reach = settings.reply_contact.strip() or organization.brand_support_email
        how = f"contact us at {reach}" if reach else "reply to this number to reach us"
        return f"{sender}: {how}. Reply STOP to opt out."
    return None


def _phone(raw: str, organization: Organization) -> str:
    """The sender's number as E.164 (Twilio sends it so; a number without country code is read in the
    organization's country). A sender that is no phone number (a short code, a name) is kept as sent."""
    raw = raw.strip()
    try:
        return e164(raw, organization.country)
    except ValueError:
        if len(raw) > 16:
            raise ServiceValidationError({"From": ["At most 16 characters."]}) from None
        return raw


def _last_campaign(organization: Organization, contact: Contact | None, number: SendingNumber) -> Campaign | None:
    """The campaign of the last message sent to the contact: from the number the reply came to if any did, else
    from any number."""
    if contact is None:
        return None
    jobs = (
        SendJob.objects.for_org(organization)
        .filter(contact=contact, state__in=RECEIVED_STATES, sent_at__isnull=False)
        .select_related("campaign")
        .order_by("-sent_at", "-id")
    )
    job = jobs.filter(number=number).first() or jobs.first()
    return job.campaign if job is not None else None


def _repeat(organization: Organization, settings: SmsSettings, sid: str) -> str | None:
    """The answer to a webhook Twilio delivers again: the one the first delivery got."""
    first = InboundMessage.objects.for_org(organization).filter(provider_sid=sid).first()
    if first is None:  # the sid belongs to another organization's message: Twilio never reuses one
        logger.warning("inbound sms %s repeated for another organization", sid)
        return None
    return answer(first.kind, settings, organization)
