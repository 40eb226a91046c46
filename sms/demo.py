"""Messaging demo data for ``manage.py seed_demo``, for each demo customer in Australia (Acme, Initech): its messaging
settings, three sending numbers at different points of their warm-up (started today, 2 days ago and 30 days ago),
forty contacts (most consenting, some tagged, some never asked, four on the do-not-contact list), two templates, a
campaign that ran 20 days ago and a draft ready to launch.

Idempotent: numbers and contacts are found by their phone, settings by their organization, templates and campaigns by
their name, so a second run creates nothing. The numbers' warm-up starts are set again relative to today, so the demo
always shows a number on its 1st, 3rd and 31st sending day.

The finished campaign is written as the dispatcher would have left it (the dispatcher is not part of the demo): its
send jobs in one ``bulk_create``, each message that went out composed with ``sms.messages.compose`` and priced from its
segments (``sms.segments``) at the ``SmsPrice`` of its destination, with a short link that people and link-preview
bots clicked. While it ran, two contacts asked to be put on the do-not-contact list and two withdrew their consent:
their jobs were skipped (``dnc``, ``no_consent``), and ``CampaignGateCount`` has a row per reason. Afterwards one
recipient replied STOP (do-not-contact, consent withdrawn), one replied to ask for a call, and the number that failed
as unknown went on the list as bounced. The draft goes to the ``newsletter`` tag; nobody on the list is in it.

Every phone number is in the Australian mobile block set aside for fiction (0491 57x xxx), so none reaches a person.
"""

from __future__ import annotations

import secrets
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sms.gates import sending_day
from sms.messages import compose
from sms.models import (
    Campaign,
    CampaignGateCount,
    CampaignStatus,
    Click,
    ConsentEvent,
    ConsentKind,
    Contact,
    DncReason,
    DoNotContact,
    InboundKind,
    InboundMessage,
    JobState,
    SendingNumber,
    SendJob,
    ShortLink,
    SmsSettings,
    Template,
)
from sms.models.campaigns import WARMUP_DEFAULT
from sms.segments import count
from sms.services.campaigns import audience, campaign_create, template_create
from sms.services.contacts import consent_withdraw, contact_create, dnc_add
from sms.services.controls import settings_update
from sms.services.dispatch import Prices
from sms.services.lookups import starting_prices
from tenancy.models import Organization, Role, User


@dataclass(frozen=True)
class DemoOrg:
    business_name: str
    numbers: int  # the first of its three sending numbers, as digits after +61
    contacts: int  # the first of its forty contacts
    city: str


ORGS = {
    "acme": DemoOrg("Acme", 491570100, 491571000, "sydney"),
    "initech": DemoOrg("Initech", 491570200, 491571100, "perth"),
}
# Days since each number's warm-up started, its curve and its messages per second.
NUMBERS = [(0, "20/50/100/200", 1), (2, WARMUP_DEFAULT, 1), (30, WARMUP_DEFAULT, 2)]
PEOPLE = [
    ("Olivia", "Nguyen"), ("Jack", "Smith"), ("Charlotte", "Brown"), ("William", "Wilson"), ("Amelia", "Taylor"),
    ("Noah", "Johnson"), ("Isla", "White"), ("Oliver", "Martin"), ("Mia", "Anderson"), ("Leo", "Thompson"),
    ("Zoë", "Kelly"), ("Henry", "Walker"), ("Grace", "Harris"), ("Lucas", "Lee"), ("Ava", "Ryan"),
    ("Thomas", "King"), ("Chloe", "Robinson"), ("James", "Wright"), ("Sophie", "Mitchell"), ("Ethan", "Campbell"),
    ("Siobhán", "Murphy"), ("Liam", "Clarke"), ("Harper", "Scott"), ("Samuel", "Young"), ("Ella", "Green"),
    ("Max", "Baker"), ("Ruby", "Adams"), ("Archie", "Hill"), ("Evie", "Turner"), ("Hugo", "Phillips"),
    ("Matilda", "Evans"), ("Oscar", "Collins"), ("Willow", "Stewart"), ("Harrison", "Morris"), ("Ivy", "Cook"),
    ("Angus", "Rogers"), ("Lily", "Reed"), ("Xavier", "Bell"), ("Zara", "Cooper"), ("Finn", "Ward"),
]  # fmt: skip
NEVER_ASKED = range(30, 36)  # no consent on record: never in an audience
WITHDRAWN = (28, 29)  # withdrew consent while the campaign ran: skipped, no_consent
DNC_WHILE_RUNNING = {37: DncReason.MANUAL, 39: DncReason.IMPORT}  # skipped, dnc
STOPPED, REPLIED, BOUNCED = 36, 2, 38
FAILED = {5: "30003", BOUNCED: "30005"}  # unreachable handset; unknown handset (then on the list as bounced)
CONSENT_SOURCES = ("website sign-up form", "in-store tablet", "event registration")
TEMPLATES = [
    ("Health check (short)", "Hi {first_name}, book a free IT health check with our engineers this month: {link}"),
    ("Health check (detailed)",
     "Hi {first_name}, is your business ready for the new financial year? Our engineers will check your backups, "
     "security updates and Microsoft 365 set-up in a free 30-minute visit. Book a time: {link}"),
]  # fmt: skip
FINISHED = "Free IT health check"
DRAFT = "Health check reminder"
HUMAN_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
PREVIEW_AGENT = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"


def _tags(index: int, city: str) -> list[str]:
    if index % 5 == 4:
        return []
    tags = ["newsletter"] if index % 2 == 0 else []
    tags += ["vip"] if index % 3 == 0 else []
    tags += [city] if index < 20 else ["trade"]
    return tags


@transaction.atomic
def seed() -> list[str]:
    lines = []
    starting_prices()  # the demo's costs assume them
    for org in Organization.objects.filter(slug__in=ORGS).order_by("slug"):
        plan = ORGS[org.slug]
        zone = ZoneInfo(org.timezone)
        today = timezone.now().astimezone(zone).date()
        sms_settings = settings_update(
            organization=org, business_name=plan.business_name, reply_contact=f"hello@{org.slug}.test",
            daily_budget=Decimal("25.00"), monthly_budget=Decimal("300.00"), messages_per_minute=60,
            suppression_days=14,  # so the finished campaign's recipients may get the draft when it is launched
        )  # fmt: skip
        numbers = [
            SendingNumber.objects.update_or_create(
                phone_e164=f"+61{plan.numbers + offset}",
                defaults={"organization": org, "warmup_start": today - timedelta(days=days), "warmup_curve": curve,
                          "per_second": per_second, "active": True},
            )[0]
            for offset, (days, curve, per_second) in enumerate(NUMBERS)
        ]  # fmt: skip
        launch = datetime.combine(today - timedelta(days=20), time(10), tzinfo=zone)
        contacts = _contacts(org, plan, launch)
        templates = [
            Template.objects.for_org(org).filter(name=name).first()
            or template_create(organization=org, name=name, body=body)
            for name, body in TEMPLATES
        ]
        owner = User.objects.filter(memberships__organization=org, memberships__role=Role.OWNER).first()
        finished = Campaign.objects.for_org(org).filter(name=FINISHED).first()
        if finished is None:
            finished = _finished(org, sms_settings, numbers[2], templates, contacts, launch, owner)
        draft = Campaign.objects.for_org(org).filter(name=DRAFT).first() or campaign_create(
            organization=org, name=DRAFT, template_ids=[templates[0].pk], number_ids=[n.pk for n in numbers],
            audience_tags=["newsletter"], link_url=f"https://{org.slug}.test/health-check", actor=owner,
        )  # fmt: skip
        states = Counter(SendJob.objects.for_org(org).filter(campaign=finished).values_list("state", flat=True))
        consenting = Contact.objects.for_org(org).filter(consent_at__isnull=False).count()
        lines.append(
            f"{org.name:20} {len(contacts)} contacts ({consenting} consenting, "
            f"{DoNotContact.objects.for_org(org).count()} on do-not-contact), numbers on warm-up days "
            f"{', '.join(str(sending_day(n.warmup_start, today)) for n in numbers)}; '{finished.name}' "
            f"{states[JobState.DELIVERED]} delivered, {states[JobState.FAILED]} failed, "
            f"{states[JobState.SKIPPED]} skipped; draft '{draft.name}' to {audience(draft).count()} contacts"
        )
    return lines


def _contacts(org: Organization, plan: DemoOrg, launch: datetime) -> list[Contact]:
    """The forty contacts, in order; those created now are dated before the campaign, with their consent."""
    phones = [f"+61{plan.contacts + index}" for index in range(len(PEOPLE))]
    existing = {contact.phone_e164: contact for contact in Contact.objects.for_org(org).filter(phone_e164__in=phones)}
    created = []
    for index, ((first, last), phone) in enumerate(zip(PEOPLE, phones, strict=True)):
        if phone in existing:
            continue
        joined = launch - timedelta(days=40 + 5 * index, hours=index)
        consent = None
        if index not in NEVER_ASKED:
            source = CONSENT_SOURCES[index % len(CONSENT_SOURCES)]
            text = f"Yes, {plan.business_name} may send me news and offers by SMS. I can reply STOP at any time."
            consent = {"source": source, "text": text, "at": joined}
        email = unicodedata.normalize("NFKD", f"{first}.{last}@example.com".lower()).encode("ascii", "ignore")
        data = {"first_name": first, "last_name": last, "email": email.decode(), "tags": _tags(index, plan.city)}
        contact = contact_create(organization=org, phone=phone, data=data, consent=consent)
        contact.created_at = joined
        existing[phone] = contact
        created.append(contact)
    Contact.objects.bulk_update(created, ["created_at"])
    return [existing[phone] for phone in phones]


def _finished(org: Organization, sms_settings: SmsSettings, number: SendingNumber, templates: list[Template],
              contacts: list[Contact], launch: datetime, owner: User | None) -> Campaign:  # fmt: skip
    """The completed campaign, its jobs, links, clicks and replies, and the opt-outs that happened around it."""
    campaign = campaign_create(
        organization=org, name=FINISHED, template_ids=[t.pk for t in templates], number_ids=[number.pk],
        link_url=f"https://{org.slug}.test/health-check", actor=owner,
    )  # fmt: skip
    meanwhile = launch + timedelta(minutes=1)
    for index, reason in DNC_WHILE_RUNNING.items():
        _opt_out(org, contacts[index], reason, "asked by phone" if reason == DncReason.MANUAL else "imported list",
                 meanwhile)  # fmt: skip
    for index in WITHDRAWN:
        _withdraw(contacts[index], "preference centre", meanwhile)

    prices = Prices()
    sender = sms_settings.business_name or org.display_name
    at_launch = [(index, contact) for index, contact in enumerate(contacts) if index not in NEVER_ASKED]
    jobs, links, sent_at = [], {}, launch
    for position, (index, contact) in enumerate(at_launch):
        sent_at = launch + timedelta(minutes=2, seconds=20 * position)
        job = SendJob(organization=org, campaign=campaign, contact=contact, position=position, created_at=launch)
        if index in DNC_WHILE_RUNNING or index in WITHDRAWN:
            job.state, job.reason = JobState.SKIPPED, "dnc" if index in DNC_WHILE_RUNNING else "no_consent"
        else:
            token = secrets.token_urlsafe(7)  # 10 characters, as the dispatcher's
            link = f"https://{settings.SMS_SHORT_DOMAIN}/s/{token}"
            values = {"first_name": contact.first_name, "last_name": contact.last_name, "link": link}
            job.body = compose(templates[position % len(templates)].body, values, sender)
            job.segments = count(job.body).parts
            job.cost = (prices.of(contact.phone_e164) or Decimal("0")) * job.segments
            job.number, job.attempts, job.sent_at = number, 1, sent_at
            job.provider_sid = f"SM{uuid.uuid4().hex}"
            if index in FAILED:
                job.state, job.error_code = JobState.FAILED, FAILED[index]
            else:
                job.state, job.delivered_at = JobState.DELIVERED, sent_at + timedelta(seconds=4)
            links[contact.pk] = token
        jobs.append(job)
    SendJob.objects.bulk_create(jobs)
    completed = sent_at + timedelta(minutes=5)
    Campaign.objects.for_org(org).filter(pk=campaign.pk).update(
        status=CampaignStatus.COMPLETED, created_at=launch - timedelta(days=1), launched_at=launch,
        completed_at=completed,
    )  # fmt: skip
    skipped = Counter(job.reason for job in jobs if job.state == JobState.SKIPPED)
    CampaignGateCount.objects.bulk_create(CampaignGateCount(campaign=campaign, gate=gate, count=n)
                                          for gate, n in sorted(skipped.items()))  # fmt: skip
    _links(org, campaign, links)

    replies = [(contacts[STOPPED], "STOP", InboundKind.OPT_OUT, timedelta(hours=2)),
               (contacts[REPLIED], "Yes please, could someone call me on Tuesday morning?", InboundKind.REPLY,
                timedelta(minutes=40))]  # fmt: skip
    for contact, body, kind, after in replies:
        InboundMessage.objects.create(
            organization=org, contact=contact, campaign=campaign, provider_sid=f"SM{uuid.uuid4().hex}",
            from_e164=contact.phone_e164, to_e164=number.phone_e164, body=body, kind=kind, received_at=launch + after,
        )  # fmt: skip
    _opt_out(org, contacts[STOPPED], DncReason.STOP_KEYWORD, "replied STOP", launch + timedelta(hours=2))
    _opt_out(org, contacts[BOUNCED], DncReason.BOUNCED, "unknown handset (30005)", completed + timedelta(hours=1))
    campaign.refresh_from_db()
    return campaign


def _links(org: Organization, campaign: Campaign, tokens: dict[uuid.UUID, str]) -> None:
    """A short link per message sent; about a third were opened by their recipient, a quarter previewed by a bot."""
    days = timedelta(days=settings.SMS_SHORT_LINK_DAYS)
    sent = SendJob.objects.for_org(org).filter(campaign=campaign, contact_id__in=tokens).order_by("position")
    links = [ShortLink(organization=org, token=tokens[job.contact_id], job=job, url=campaign.link_url,
                       created_at=job.sent_at, expires_at=job.sent_at + days) for job in sent]  # fmt: skip
    ShortLink.objects.bulk_create(links)
    clicks = []
    for job, link in zip(sent, links, strict=True):
        if job.state != JobState.DELIVERED:
            continue
        if job.position % 4 == 1:
            clicks.append(Click(organization=org, link=link, at=job.sent_at + timedelta(seconds=6),
                                user_agent=PREVIEW_AGENT, is_bot=True))  # fmt: skip
        if job.position % 3 == 0:
            clicks.append(Click(organization=org, link=link, at=job.sent_at + timedelta(minutes=7 + job.position),
                                user_agent=HUMAN_AGENT))  # fmt: skip
    Click.objects.bulk_create(clicks)


def _withdraw(contact: Contact, source: str, at: datetime) -> None:
    if contact.consent_at is not None:
        consent_withdraw(contact=contact, source=source)
        _backdate(contact, [ConsentKind.WITHDRAWN], at)


def _opt_out(org: Organization, contact: Contact, reason: str, source: str, at: datetime) -> None:
    """Consent withdrawn and the number on the do-not-contact list, both dated ``at``."""
    _withdraw(contact, source, at)
    dnc_add(organization=org, phone_e164=contact.phone_e164, reason=reason, source=source)
    _backdate(contact, [ConsentKind.DNC_ADDED], at)
    DoNotContact.objects.for_org(org).filter(phone_e164=contact.phone_e164).update(created_at=at)


def _backdate(contact: Contact, kinds: list[str], at: datetime) -> None:
    ConsentEvent.objects.for_org(contact.organization_id).filter(contact=contact, kind__in=kinds).update(at=at)
