"""The messaging demo (``sms.demo``, part of ``manage.py seed_demo``): settings, numbers on their 1st, 3rd and 31st
warm-up day, forty contacts, a finished campaign with its jobs, links, clicks, replies and opt-outs, and a draft whose
audience leaves out everyone on the do-not-contact list; running it again creates nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.validators import validate_email
from django.db.models import Model, Sum

from sms import demo
from sms.gates import parse_curve, sending_day, warmup_cap
from sms.messages import OPT_OUT_LINE
from sms.models import (
    Campaign,
    CampaignGateCount,
    CampaignNumber,
    CampaignStatus,
    CampaignTemplate,
    Click,
    ConsentEvent,
    ConsentKind,
    Contact,
    DoNotContact,
    InboundMessage,
    JobState,
    SendingNumber,
    SendJob,
    ShortLink,
    SmsSettings,
    Template,
)
from sms.segments import Encoding, count
from sms.services.campaigns import audience, campaign_launch
from tenancy.models import Organization

pytestmark = pytest.mark.django_db

# Tuesday 21:00 in Sydney: the finished campaign ran 20 days earlier, on 2026-10-28 at 10:00 (AEDT, +11:00).
NOW = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)
COUNTED: list[type[Model]] = [SmsSettings, SendingNumber, Contact, ConsentEvent, DoNotContact, Template, Campaign,
                              CampaignTemplate, CampaignNumber, SendJob, CampaignGateCount, ShortLink, Click,
                              InboundMessage]  # fmt: skip


def counts() -> dict[str, int]:
    return {model.__name__: model._default_manager.count() for model in COUNTED}


@pytest.fixture
def seeded(acme: Organization, initech: Organization, globex: Organization, settings: Any) -> list[str]:
    settings.SMS_SHORT_DOMAIN = "s.keel.test"
    with time_machine.travel(NOW, tick=False):
        return demo.seed()


def test_seeding_twice_creates_nothing_new(seeded, acme):
    first = counts()
    with time_machine.travel(NOW, tick=False):
        again = demo.seed()
    assert counts() == first
    assert again == seeded
    assert first == {
        "SmsSettings": 2, "SendingNumber": 6, "Contact": 80,
        # per organization: 34 consents given, 2 withdrawn while the campaign ran, and 4 withdrawn with a DNC entry
        "ConsentEvent": 2 * (34 + 2 + 4 + 4), "DoNotContact": 8, "Template": 4, "Campaign": 4, "CampaignTemplate": 6,
        "CampaignNumber": 8, "SendJob": 68, "CampaignGateCount": 4, "ShortLink": 60, "Click": 2 * (11 + 6),
        "InboundMessage": 4,
    }  # fmt: skip
    assert seeded[0] == (
        "Acme Pty Ltd         40 contacts (28 consenting, 4 on do-not-contact), numbers on warm-up days 1, 3, 31; "
        "'Free IT health check' 28 delivered, 2 failed, 4 skipped; draft 'Health check reminder' to 11 contacts"
    )


def test_only_the_australian_demo_customers_get_messaging(seeded, acme, globex):
    assert set(SmsSettings.objects.values_list("organization__slug", flat=True)) == {"acme", "initech"}
    assert not Contact.objects.for_org(globex).exists()
    acme_settings = SmsSettings.objects.get(organization__slug="acme")
    assert (acme_settings.business_name, acme_settings.reply_contact, acme_settings.kill_switch) == (
        "Acme",
        "hello@acme.test",
        False,
    )
    assert (acme_settings.daily_budget, acme_settings.monthly_budget) == (Decimal("25.00"), Decimal("300.00"))
    emails = list(Contact.objects.for_org(acme).values_list("email", flat=True))
    for email in emails:
        validate_email(email)  # so staff can save a contact in the admin without touching its email
    assert "zoe.kelly@example.com" in emails and "siobhan.murphy@example.com" in emails


def test_numbers_are_fictional_and_at_three_points_of_their_warm_up(seeded, acme):
    today = date(2026, 11, 17)  # in Sydney
    numbers = list(SendingNumber.objects.filter(organization=acme).order_by("phone_e164"))
    assert [n.phone_e164 for n in numbers] == ["+61491570100", "+61491570101", "+61491570102"]
    days = [sending_day(n.warmup_start, today) for n in numbers]
    assert days == [1, 3, 31]
    assert [warmup_cap(day, parse_curve(n.warmup_curve)) for n, day in zip(numbers, days, strict=True)] == [
        20,
        200,
        300,
    ]
    phones = [*SendingNumber.objects.values_list("phone_e164", flat=True),
              *Contact.objects.values_list("phone_e164", flat=True)]  # fmt: skip
    assert all("+61491570006" <= phone <= "+61491579999" for phone in phones)


def test_the_finished_campaign_is_what_the_dispatcher_would_have_left(seeded, acme):
    campaign = Campaign.objects.for_org(acme).get(name=demo.FINISHED)
    assert campaign.status == CampaignStatus.COMPLETED
    assert campaign.launched_at == datetime(2026, 10, 27, 23, 0, tzinfo=UTC)  # 10:00 in Sydney
    jobs = list(SendJob.objects.for_org(acme).filter(campaign=campaign).select_related("contact"))
    assert Counter(job.state for job in jobs) == {JobState.DELIVERED: 28, JobState.FAILED: 2, JobState.SKIPPED: 4}
    skipped = {job.contact.first_name: job.reason for job in jobs if job.state == JobState.SKIPPED}
    assert skipped == {"Evie": "no_consent", "Hugo": "no_consent", "Xavier": "dnc", "Finn": "dnc"}
    gates = dict(CampaignGateCount.objects.filter(campaign=campaign).values_list("gate", "count"))
    assert gates == {"dnc": 2, "no_consent": 2}
    assert all((job.body, job.segments, job.cost, job.number_id) == ("", 0, 0, None) for job in jobs
               if job.state == JobState.SKIPPED)  # fmt: skip
    assert {job.contact.first_name: job.error_code for job in jobs if job.state == JobState.FAILED} == {
        "Noah": "30003",
        "Zara": "30005",
    }
    sent = [job for job in jobs if job.state != JobState.SKIPPED]
    for job in sent:
        assert job.body.startswith(f"Acme: Hi {job.contact.first_name}, ")
        assert job.body.endswith(f"https://s.keel.test/s/{job.link.token} {OPT_OUT_LINE}")
        assert job.segments == count(job.body).parts
        assert job.cost == Decimal("0.0550") * job.segments  # the +61 price of the migration's table
    by_name = {job.contact.first_name: job for job in sent}
    # The templates take turns: the detailed one (odd positions) is two parts in GSM-7. The short one is a single part,
    # except to "Zoë" and "Siobhán", whose names make it UCS-2 (70 units a part): two parts.
    assert (by_name["Jack"].segments, count(by_name["Jack"].body).encoding) == (2, Encoding.GSM7)
    assert (by_name["Zoë"].segments, count(by_name["Zoë"].body).encoding) == (2, Encoding.UCS2)
    assert (by_name["Siobhán"].segments, count(by_name["Siobhán"].body).encoding) == (2, Encoding.UCS2)
    assert by_name["Olivia"].segments == 1
    total = SendJob.objects.for_org(acme).filter(campaign=campaign).aggregate(total=Sum("cost"))["total"]
    # 46 segments at $0.0550: 14 detailed messages of 2 parts, 14 short ones of 1 and the 2 short UCS-2 ones of 2.
    assert total == Decimal("2.5300")


def test_links_replies_and_opt_outs(seeded, acme):
    campaign = Campaign.objects.for_org(acme).get(name=demo.FINISHED)
    links = ShortLink.objects.for_org(acme).filter(job__campaign=campaign)
    assert links.count() == 30
    assert all(link.url == "https://acme.test/health-check" for link in links)
    clicks = Click.objects.for_org(acme)
    assert (clicks.filter(is_bot=False).count(), clicks.filter(is_bot=True).count()) == (11, 6)
    replies = {(m.kind, m.body, m.contact.first_name) for m in InboundMessage.objects.for_org(acme)}
    assert replies == {("opt_out", "STOP", "Lily"),
                       ("reply", "Yes please, could someone call me on Tuesday morning?", "Charlotte")}  # fmt: skip
    dnc = dict(DoNotContact.objects.for_org(acme).values_list("phone_e164", "reason"))
    names = dict(Contact.objects.for_org(acme).values_list("phone_e164", "first_name"))
    assert {names[phone]: reason for phone, reason in dnc.items()} == {
        "Lily": "stop_keyword",
        "Xavier": "manual",
        "Zara": "bounced",
        "Finn": "import",
    }
    lily = Contact.objects.for_org(acme).get(first_name="Lily")
    timeline = list(lily.consent_events.order_by("at", "id").values_list("kind", flat=True))
    assert timeline == [ConsentKind.GIVEN, ConsentKind.WITHDRAWN, ConsentKind.DNC_ADDED]
    assert lily.consent_at is None


def test_the_draft_audience_leaves_out_the_do_not_contact_list(seeded, acme):
    draft = Campaign.objects.for_org(acme).get(name=demo.DRAFT)
    assert draft.status == CampaignStatus.DRAFT
    members = set(audience(draft).values_list("phone_e164", flat=True))
    on_dnc = set(DoNotContact.objects.for_org(acme).values_list("phone_e164", flat=True))
    newsletter_on_dnc = set(
        Contact.objects.for_org(acme)
        .filter(tags__contains=",newsletter,", phone_e164__in=on_dnc)
        .values_list("phone_e164", flat=True)
    )
    assert len(newsletter_on_dnc) == 2  # Lily and Zara get the newsletter, but are on the list
    assert len(members) == 11 and not members & on_dnc
    with time_machine.travel(NOW, tick=False):
        assert campaign_launch(campaign=draft) == 11


def test_seed_demo_reports_messaging(capsys, settings):
    settings.SMS_SHORT_DOMAIN = "s.keel.test"
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo")
    out = capsys.readouterr().out
    section = out[out.index("Messaging (SMS settings, numbers, contacts and campaigns in the staff admin):") :]
    lines = section.splitlines()[1:3]
    assert [line.split()[0] for line in lines] == ["Acme", "Initech"]
    assert "40 contacts (28 consenting, 4 on do-not-contact)" in lines[0]
    # Alice, Acme's owner, created both campaigns.
    creators = Campaign.objects.filter(organization__slug="acme").values_list("created_by__email", flat=True)
    assert list(creators) == ["alice@acme.test", "alice@acme.test"]
