"""The portal's Messaging area: who may use it, the overview (budget, kill switch, campaigns at a glance), settings,
sending numbers, contacts with their timeline, consent and do-not-contact buttons, the do-not-contact list, query
counts and tenant isolation. Templates and campaigns: test_messaging_campaigns.py; the import:
test_messaging_import.py.

Time is frozen on Tuesday 10 November 2026, 10:00 in Sydney (Acme's zone, AEDT = UTC+11). Globex has a contact with
the same phone number as Acme's Ann, a do-not-contact entry, a sending number and settings of its own: none of it may
show through Acme's pages, and every Globex id is 404 to Acme's people.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.messages import get_messages

from billing.models import SmsCreditEntry
from sms.counters import day_key, day_window, month_window, spend_day_key, spend_month_key
from sms.models import (
    Campaign,
    CampaignStatus,
    Click,
    ConsentEvent,
    ConsentKind,
    Contact,
    DoNotContact,
    InboundKind,
    InboundMessage,
    JobState,
    SendCounter,
    SendingNumber,
    SendJob,
    ShortLink,
    SmsSettings,
)
from sms.services.campaigns import campaign_create, template_create
from sms.services.contacts import contact_create, dnc_add
from tenancy.models import AuditEvent, Organization, Role, User
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=SYDNEY)  # a Tuesday
# Every portal page's base queries (tests/portal/test_queries.py): user, organizations, second factor, session (3).
BASE = 6
GLOBEX_TEXT = ("Globex", "Gus", "+61499999999", "+15550001111", "Globex Deals")


def sydney(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SYDNEY)


def text_of(response: Any) -> str:
    return response.content.decode()


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_nothing_of_globex(response: Any) -> None:
    body = text_of(response)
    for secret in GLOBEX_TEXT:
        assert secret not in body, secret


def row_of(body: str, text: str) -> str:
    [row] = [row for row in body.split("<tr")[1:] if text in row]
    return row


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def mia(acme: Organization) -> User:
    """A manager at Acme: may use messaging, though not the team or branding settings."""
    user = UserFactory(email="mia@acme.test", full_name="Mia Manager")
    MembershipFactory(user=user, organization=acme, role=Role.MANAGER)
    return user


@pytest.fixture
def ann(acme: Organization) -> Contact:
    return contact_create(
        organization=acme,
        phone="0412 345 678",
        data={"first_name": "Ann", "last_name": "Lee", "email": "ann@example.test", "tags": ["vip", "perth"]},
    )


@pytest.fixture
def globex_things(globex: Organization) -> dict[str, Any]:
    """Globex's contact (Ann's number too), DNC entry, number, template, campaign and settings."""
    gus = contact_create(organization=globex, phone="+61412345678", data={"first_name": "Gus", "last_name": "Globex"})
    entry = dnc_add(organization=globex, phone_e164="+61499999999", reason="manual")
    number = SendingNumber.objects.create(organization=globex, phone_e164="+15550001111", warmup_start=date(2026, 1, 1))
    template = template_create(organization=globex, name="Globex Deals", body="Globex deals today")
    campaign = campaign_create(
        organization=globex, name="Globex Deals", template_ids=[template.pk], number_ids=[number.pk]
    )
    SmsSettings.objects.create(organization=globex, business_name="Globex Corp", daily_budget=Decimal("999.00"))
    return {"contact": gus, "dnc": entry, "number": number, "template": template, "campaign": campaign}


# -- who may use it -------------------------------------------------------------------------------------------------

PAGES = [
    "/messaging/",
    "/messaging/contacts/",
    "/messaging/contacts/new/",
    "/messaging/contacts/import/",
    "/messaging/replies/",
    "/messaging/dnc/",
    "/messaging/templates/",
    "/messaging/templates/new/",
    "/messaging/campaigns/",
    "/messaging/campaigns/new/",
    "/messaging/numbers/",
    "/messaging/settings/",
]


def test_owners_admins_managers_and_partner_admins_use_messaging_and_members_get_403(
    client_for, acme, alice, bob, mia, pat
):
    admin = UserFactory(email="adam@acme.test")
    MembershipFactory(user=admin, organization=acme, role=Role.ADMIN)
    for user in (alice, admin, mia, pat):
        client = client_for(user)
        for page in PAGES:
            assert client.get(page).status_code == 200, (user.email, page)
    member = client_for(bob)
    for page in PAGES:
        assert member.get(page).status_code == 403, page
    assert member.post("/messaging/kill-switch/", {"enabled": "on", "confirm": "on"}).status_code == 403
    assert SmsSettings.objects.filter(organization=acme, kill_switch=True).count() == 0


def test_messaging_sits_between_support_and_settings_in_the_menu_of_those_who_may_use_it(client_for, alice, bob):
    menu = [link.label for link in client_for(alice).get("/dashboard/").context["main_menu"]]
    assert menu.index("Support") < menu.index("Messaging") < menu.index("Settings")
    response = client_for(alice).get("/messaging/contacts/")
    active = [link.label for link in response.context["main_menu"] if link.active]
    assert active == ["Messaging"]
    assert "Messaging" not in [link.label for link in client_for(bob).get("/dashboard/").context["main_menu"]]


def test_signed_out_visitors_are_sent_to_sign_in(client, acme):
    response = client.get("/messaging/contacts/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# -- overview -------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:messaging_overview")
def test_overview_shows_spending_against_the_caps_with_the_80_percent_warning(
    client_for, acme, alice, ann, globex_things
):
    SmsSettings.objects.create(organization=acme, daily_budget=Decimal("10.00"), monthly_budget=Decimal("100.00"))
    zone = acme.timezone
    SendCounter.objects.create(key=spend_day_key(acme.pk), window=day_window(NOW, zone), amount=Decimal("8.5050"))
    SendCounter.objects.create(key=spend_month_key(acme.pk), window=month_window(NOW, zone), amount=Decimal("30.1250"))
    # Yesterday's spending is not today's.
    SendCounter.objects.create(
        key=spend_day_key(acme.pk), window=day_window(NOW - timedelta(days=1), zone), amount=Decimal("9.99")
    )
    SmsCreditEntry.objects.create(organization=acme, credits=500, reason="pack", source_key="pack-1")
    SmsCreditEntry.objects.create(organization=acme, credits=-20, reason="sent", source_key="spent-1")
    dnc_add(organization=acme, phone_e164="+61400000009", reason="manual")

    response = client_for(alice).get("/messaging/")
    assert response.status_code == 200
    body = text_of(response)
    today = row_of(body, 'class="budget-day"')
    assert "AUD 8.51 of 10.00" in today and "(85 %)" in today and "meter warn" in today
    month = row_of(body, 'class="budget-month"')
    assert "AUD 30.13 of 100.00" in month and "(30 %)" in month and "warn" not in month
    assert "80 % or more of today's budget is spent." in body
    assert "this month's budget" not in body
    assert response.context["budget"].credits == 480
    stats = {stat.split("<dd>")[0]: stat.split("<dd>")[1].split("</dd>")[0] for stat in body.split("<dt>")[1:]}
    assert stats["SMS credits</dt>"] == "480"
    assert stats["Contacts</dt>"] == "1" and stats["Do not contact</dt>"] == "1"
    assert stats["Draft</dt>"] == "0"  # Globex's draft is not Acme's
    assert_nothing_of_globex(response)


def test_overview_without_caps_shows_no_bars_and_no_warning(client_for, alice):
    response = client_for(alice).get("/messaging/")
    body = text_of(response)
    assert body.count("No cap") == 2 and "80 %" not in body
    assert "AUD 0.00" in row_of(body, 'class="budget-day"')


def test_overview_lists_campaigns_at_a_glance(client_for, acme, alice, frozen):
    number = SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))
    template = template_create(organization=acme, name="Promo", body="Hi {first_name}")
    for index in range(7):
        campaign_create(organization=acme, name=f"Spring {index}", template_ids=[template.pk], number_ids=[number.pk])
        frozen.shift(timedelta(minutes=1))
    Campaign.objects.filter(name="Spring 0").update(status=CampaignStatus.RUNNING)
    Campaign.objects.filter(name__in=["Spring 1", "Spring 2"]).update(status=CampaignStatus.COMPLETED)
    response = client_for(alice).get("/messaging/")
    counts = {label: total for _, label, total in response.context["campaign_counts"]}
    assert counts == {"Draft": 4, "Scheduled": 0, "Running": 1, "Paused": 0, "Completed": 2, "Canceled": 0}
    assert [campaign.name for campaign in response.context["recent_campaigns"]] == [
        f"Spring {index}" for index in (6, 5, 4, 3, 2)
    ]
    assert "No replies yet." in text_of(response)


def test_overview_shows_the_latest_replies(client_for, acme, alice, ann, globex, globex_things):
    for n, body in enumerate(["First", "STOP", "Second <b>bold</b>", "Third", "Fourth"]):
        kind = InboundKind.OPT_OUT if body == "STOP" else InboundKind.REPLY
        for organization in (acme, globex):
            InboundMessage.objects.create(
                organization=organization, contact=ann if organization == acme else None,
                provider_sid=f"SM{n}{organization.slug}", from_e164="+61412345678", to_e164="+61400000001",
                body=f"{organization.name}: {body}", kind=kind, received_at=NOW + timedelta(minutes=n),
            )  # fmt: skip
    response = client_for(alice).get("/messaging/")
    assert [reply.body for reply in response.context["recent_replies"]] == [
        "Acme Pty Ltd: Fourth", "Acme Pty Ltd: Third", "Acme Pty Ltd: Second <b>bold</b>",
    ]  # fmt: skip
    page = text_of(response)
    assert "Second &lt;b&gt;bold&lt;/b&gt;" in page and f'href="/messaging/contacts/{ann.pk}/"' in page
    assert 'href="/messaging/replies/"' in page
    assert_nothing_of_globex(response)


# -- the kill switch ------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:messaging_kill_switch")
def test_the_kill_switch_needs_confirming_stops_only_this_organization_and_turns_back_off(
    client_for, acme, globex, alice, globex_things
):
    client = client_for(alice)
    assert "Stop all sending" in text_of(client.get("/messaging/"))

    unconfirmed = client.post("/messaging/kill-switch/", {"enabled": "on"})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm that all sending stops." in text_of(unconfirmed)
    assert unconfirmed.context["kill_form"].errors == {"confirm": ["Tick the box to confirm that all sending stops."]}
    assert not SmsSettings.objects.filter(organization=acme, kill_switch=True).exists()

    response = client.post("/messaging/kill-switch/", {"enabled": "on", "confirm": "on"})
    assert response.status_code == 302 and response["Location"] == "/messaging/"
    assert SmsSettings.objects.get(organization=acme).kill_switch is True
    assert SmsSettings.objects.get(organization=globex).kill_switch is False
    assert message_texts(response) == ["Sending is stopped: no message of this organization goes out until you resume."]
    assert AuditEvent.objects.filter(organization=acme, action="sms.kill_switch_on").count() == 1
    page = text_of(client.get("/messaging/"))
    assert "Sending is stopped." in page and "Resume sending" in page

    response = client.post("/messaging/kill-switch/", {"enabled": "off"})
    assert response.status_code == 302
    assert SmsSettings.objects.get(organization=acme).kill_switch is False


def test_a_bad_kill_switch_value_is_a_400_not_a_500(client_for, acme, alice):
    response = client_for(alice).post("/messaging/kill-switch/", {"enabled": "maybe"})
    assert response.status_code == 400 and "enabled" in response.context["kill_form"].errors
    assert client_for(alice).get("/messaging/kill-switch/").status_code == 405


def test_a_partner_admin_over_the_organization_uses_the_kill_switch(client_for, acme, pat):
    response = client_for(pat).post("/messaging/kill-switch/", {"enabled": "on", "confirm": "on"})
    assert response.status_code == 302
    assert SmsSettings.objects.get(organization=acme).kill_switch is True
    assert AuditEvent.objects.get(organization=acme, action="sms.kill_switch_on").actor == pat


def test_a_refusal_by_the_service_is_shown_on_the_page_rather_than_a_500(client_for, acme, alice, monkeypatch):
    # Should the portal and the sms services ever disagree on who may change the controls, the service's word wins
    # and the page says it.
    monkeypatch.setattr("sms.services.controls.may_launch", lambda **_: False)
    response = client_for(alice).post("/messaging/kill-switch/", {"enabled": "on", "confirm": "on"})
    assert response.status_code == 403
    assert response.context["kill_form"].non_field_errors() == [
        "Only owners, admins and managers change how the organization sends messages."
    ]
    assert "Only owners, admins and managers change how the organization sends messages." in text_of(response)
    assert not SmsSettings.objects.filter(organization=acme, kill_switch=True).exists()


# -- settings -------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:messaging_settings")
def test_settings_are_saved_through_the_service_and_only_for_this_organization(
    client_for, acme, globex, mia, globex_things
):
    client = client_for(mia)
    page = client.get("/messaging/settings/")
    assert page.context["form"].initial["opt_out_keywords"] == "STOP,STOPALL,UNSUBSCRIBE,CANCEL,END,QUIT,OPTOUT,REVOKE"
    assert_nothing_of_globex(page)
    response = client.post(
        "/messaging/settings/",
        {
            "business_name": "Acme Deals",
            "reply_contact": "0298765432",
            "daily_budget": "25.50",
            "monthly_budget": "",
            "messages_per_minute": "60",
            "suppression_days": "30",
            "opt_out_keywords": "stop, quit",
            "opt_in_keywords": "start",
            "help_keywords": "help",
        },
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    saved = SmsSettings.objects.get(organization=acme)
    assert (saved.business_name, saved.reply_contact, saved.daily_budget, saved.monthly_budget) == (
        "Acme Deals",
        "+61298765432",
        Decimal("25.50"),
        None,
    )
    assert (saved.messages_per_minute, saved.suppression_days, saved.opt_out_keywords) == (60, 30, "STOP,QUIT")
    assert SmsSettings.objects.get(organization=globex).business_name == "Globex Corp"
    assert AuditEvent.objects.filter(organization=acme, action="sms.settings_updated").count() == 1


VALID_SETTINGS = {
    "business_name": "",
    "reply_contact": "",
    "daily_budget": "",
    "monthly_budget": "",
    "messages_per_minute": "120",
    "suppression_days": "90",
    "opt_out_keywords": "STOP",
    "opt_in_keywords": "START",
    "help_keywords": "HELP",
}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"opt_out_keywords": "QUIT"}, "opt_out_keywords", "STOP must stay an opt-out keyword"),
        ({"opt_in_keywords": "START,STOP"}, "opt_in_keywords", "opt-out keyword"),
        ({"daily_budget": "-1"}, "daily_budget", "greater than or equal to 0"),
        ({"daily_budget": "12.345"}, "daily_budget", "no more than 2 decimal places"),
        ({"messages_per_minute": "0"}, "messages_per_minute", "greater than or equal to 1"),
        ({"messages_per_minute": "7000"}, "messages_per_minute", "A whole number from 1 to 6,000."),
        ({"suppression_days": "400"}, "suppression_days", "A whole number from 0 to 365."),
        ({"reply_contact": "not a phone"}, "reply_contact", "Give a phone number or an email address"),
        ({"opt_out_keywords": "STOP, opt out"}, "opt_out_keywords", "is not a keyword"),
    ],
)
def test_bad_settings_are_shown_beside_their_field_and_nothing_changes(client_for, acme, alice, change, field, message):
    response = client_for(alice).post("/messaging/settings/", {**VALID_SETTINGS, **change})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert message in errors[field][0]
    assert message.replace("'", "&#x27;") in text_of(response)
    assert not SmsSettings.objects.filter(organization=acme).exclude(opt_out_keywords__contains="REVOKE").exists()


# -- sending numbers ------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:messaging_numbers")
def test_sending_numbers_show_their_warm_up_day_and_todays_cap_read_only(client_for, acme, alice, globex_things):
    warming = SendingNumber.objects.create(
        organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 11, 9), warmup_curve="50/100/200"
    )
    SendingNumber.objects.create(organization=acme, phone_e164="+61400000002", warmup_start=date(2026, 1, 1))
    SendingNumber.objects.create(organization=acme, phone_e164="+61400000003", warmup_start=date(2026, 11, 20))
    SendCounter.objects.create(key=day_key(warming.pk), window=day_window(NOW, acme.timezone), count=37)
    response = client_for(alice).get("/messaging/numbers/")
    rows = [
        (number.phone_e164, day.warmup_day, day.daily_cap, day.sent_today) for number, day in response.context["rows"]
    ]
    assert rows == [("+61400000001", 2, 100, 37), ("+61400000002", 314, 300, 0), ("+61400000003", -9, 0, 0)]
    body = text_of(response)
    assert "Starts 20 Nov 2026" in row_of(body, "+61400000003")
    assert "<form" not in body.split("<main")[1].split("</main>")[0]  # read-only: nothing to submit
    assert_nothing_of_globex(response)


# -- contacts -------------------------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:messaging_contacts")
def test_contacts_are_searched_by_name_phone_or_email_and_filtered_by_tag(client_for, acme, alice, ann, globex_things):
    contact_create(organization=acme, phone="0413000111", data={"first_name": "Bo", "tags": ["staff"]})
    contact_create(organization=acme, phone="0413000222", data={"last_name": "Chan", "email": "chan@corp.test"})
    dnc_add(organization=acme, phone_e164="+61413000111", reason="manual")
    client = client_for(alice)

    def names(query: str) -> list[str]:
        return [contact.phone_e164 for contact in client.get(f"/messaging/contacts/?{query}").context["page"]]

    assert names("") == ["+61413000111", "+61413000222", "+61412345678"]  # by last name: "", Chan, Lee
    assert names("q=ann") == ["+61412345678"]
    assert names("q=0412+345") == ["+61412345678"]
    assert names("q=%2B61413") == ["+61413000111", "+61413000222"]
    assert names("q=corp.test") == ["+61413000222"]
    assert names("tag=VIP") == ["+61412345678"]
    assert names("tag=staff&q=bo") == ["+61413000111"]
    assert names("tag=nobody") == []
    response = client.get("/messaging/contacts/")
    assert response.context["tags"] == ["perth", "staff", "vip"]
    body = text_of(response)
    assert "Do not contact" in row_of(body, "+61413000111")
    assert ">vip</span>" in row_of(body, "+61412345678")
    # Globex's contact has Ann's number: it is not in Acme's list, nor found by it.
    assert_nothing_of_globex(response)
    assert_nothing_of_globex(client.get("/messaging/contacts/?q=gus"))


def test_the_contact_list_is_paginated_and_keeps_the_search(client_for, acme, alice):
    for index in range(30):
        contact_create(organization=acme, phone=f"04120000{index:02d}", data={"first_name": f"P{index:02d}"})
    client = client_for(alice)
    first = client.get("/messaging/contacts/?q=P")
    assert len(first.context["page"].object_list) == 25 and first.context["page"].paginator.num_pages == 2
    assert 'href="?q=P&amp;page=2"' in text_of(first)
    second = client.get("/messaging/contacts/?q=P&page=2")
    assert [contact.first_name for contact in second.context["page"]] == [f"P{index}" for index in range(25, 30)]
    assert client.get("/messaging/contacts/?page=99").context["page"].number == 2
    assert client.get("/messaging/contacts/?page=x").context["page"].number == 1


@pytest.mark.isolation("portal:messaging_contact_new")
def test_a_new_contact_is_created_in_this_organization_with_its_consent(client_for, acme, globex, alice, globex_things):
    response = client_for(alice).post(
        "/messaging/contacts/new/",
        {
            "phone": "0412 345 678",  # Globex has this number: it is free in Acme
            "region": "au",
            "first_name": " Ann ",
            "last_name": "Lee",
            "email": "ann@example.test",
            "timezone": "Australia/Perth",
            "tags": "VIP, perth; vip",
            "consent": "on",
            "consent_source": "shop counter",
            "consent_text": "Yes, text me offers.",
        },
    )
    contact = Contact.objects.for_org(acme).get()
    assert response.status_code == 302 and response["Location"] == f"/messaging/contacts/{contact.pk}/"
    assert (contact.phone_e164, contact.first_name, contact.timezone, contact.tag_list) == (
        "+61412345678",
        "Ann",
        "Australia/Perth",
        ["perth", "vip"],
    )
    assert (contact.consent_at, contact.consent_source, contact.consent_text) == (
        NOW,
        "shop counter",
        "Yes, text me offers.",
    )
    [event] = ConsentEvent.objects.for_org(acme)
    assert (event.kind, event.source) == (ConsentKind.GIVEN, "shop counter")
    assert Contact.objects.for_org(globex).get().first_name == "Gus"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"phone": "12"}, "phone", "is not a valid phone number in AU"),
        ({"phone": ""}, "phone", "This field is required."),
        ({"phone": "0412000000", "region": "XX"}, "region", "XX is not a two-letter region code like AU."),
        ({"phone": "0412000000", "email": "nope"}, "email", "Enter a valid email address."),
        ({"phone": "0412000000", "timezone": "Moon/Base"}, "timezone", "is not a time zone"),
        ({"phone": "0412000000", "consent": "on"}, "consent_source", "Say where the consent was given."),
        ({"phone": "0412000000", "tags": "x" * 501}, "tags", "Ensure this value has at most 500 characters"),
    ],
)
def test_a_bad_contact_is_refused_beside_its_field_and_nothing_is_stored(client_for, acme, alice, data, field, message):
    response = client_for(alice).post("/messaging/contacts/new/", {"region": "AU", **data})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0]
    assert 'class="field has-error"' in text_of(response)
    assert not Contact.objects.exists()


def test_a_number_already_a_contact_is_a_409_beside_the_phone(client_for, acme, alice, ann):
    response = client_for(alice).post("/messaging/contacts/new/", {"phone": "+61 412 345 678", "region": "AU"})
    assert response.status_code == 409
    assert response.context["form"].errors == {"phone": ["A contact with this phone number exists."]}
    assert Contact.objects.for_org(acme).count() == 1


@pytest.mark.isolation("portal:messaging_contact_edit")
def test_a_contact_is_edited_but_its_number_stays(client_for, acme, alice, ann, globex_things):
    client = client_for(alice)
    page = client.get(f"/messaging/contacts/{ann.pk}/edit/")
    assert page.context["form"].initial["tags"] == "perth, vip"
    assert "phone" not in page.context["form"].fields
    response = client.post(
        f"/messaging/contacts/{ann.pk}/edit/",
        {"first_name": "Anne", "last_name": "Lee", "email": "", "timezone": "", "tags": "gold", "phone": "0400000000"},
    )
    assert response.status_code == 302
    ann.refresh_from_db()
    assert (ann.first_name, ann.email, ann.tag_list, ann.phone_e164) == ("Anne", "", ["gold"], "+61412345678")
    bad = client.post(f"/messaging/contacts/{ann.pk}/edit/", {"email": "x y", "tags": ""})
    assert bad.status_code == 400 and list(bad.context["form"].errors) == ["email"]
    gus = globex_things["contact"]
    assert client.get(f"/messaging/contacts/{gus.pk}/edit/").status_code == 404
    assert client.post(f"/messaging/contacts/{gus.pk}/edit/", {"first_name": "Hacked"}).status_code == 404
    gus.refresh_from_db()
    assert gus.first_name == "Gus"


# -- the contact's timeline -----------------------------------------------------------------------------------------


@pytest.fixture
def history(acme: Organization, ann: Contact) -> dict[str, Any]:
    """Ann's messaging history, out of order on purpose: consent on the 1st, a message sent on the 3rd and clicked
    (by a person, and by a link preview), a reply on the 4th, DNC on the 5th, a second campaign's message queued."""
    number = SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))
    template = template_create(organization=acme, name="Promo", body="Hi {first_name} {link}")
    spring = campaign_create(
        organization=acme,
        name="Spring sale",
        template_ids=[template.pk],
        number_ids=[number.pk],
        link_url="https://acme.test/sale",
    )
    summer = campaign_create(
        organization=acme,
        name="Summer",
        template_ids=[template.pk],
        number_ids=[number.pk],
        link_url="https://acme.test/summer",
    )
    ConsentEvent.objects.create(
        organization=acme, contact=ann, phone_e164=ann.phone_e164, kind=ConsentKind.GIVEN, source="web form",
        at=sydney(1, 9),
    )  # fmt: skip
    sent = SendJob.objects.create(
        organization=acme, campaign=spring, contact=ann, state=JobState.DELIVERED, number=number,
        body="Acme Pty Ltd: Hi Ann https://s.test/s/abc Reply STOP to opt out", segments=1, cost=Decimal("0.0525"),
        sent_at=sydney(3, 9, 30), delivered_at=sydney(3, 9, 31), created_at=sydney(2, 8),
    )  # fmt: skip
    link = ShortLink.objects.create(
        organization=acme, token="abc", job=sent, url="https://acme.test/sale", expires_at=sydney(30, 0)
    )
    Click.objects.create(organization=acme, link=link, at=sydney(3, 9, 32), is_bot=True, user_agent="Slackbot")
    Click.objects.create(organization=acme, link=link, at=sydney(3, 12, 0), user_agent="Mozilla/5.0")
    InboundMessage.objects.create(
        organization=acme, contact=ann, campaign=spring, provider_sid="SM1", from_e164=ann.phone_e164,
        to_e164=number.phone_e164, body="Is the sale on Sunday too?", kind=InboundKind.REPLY, received_at=sydney(4, 18),
    )  # fmt: skip
    with time_machine.travel(sydney(5, 11), tick=False):
        dnc_add(organization=acme, phone_e164=ann.phone_e164, reason="manual", source="asked by phone")
    SendJob.objects.create(organization=acme, campaign=summer, contact=ann, created_at=sydney(6, 8))
    return {"spring": spring, "summer": summer}


@pytest.mark.isolation("portal:messaging_contact")
def test_the_contact_page_is_its_timeline_newest_first(client_for, acme, alice, ann, history, globex_things):
    response = client_for(alice).get(f"/messaging/contacts/{ann.pk}/")
    assert response.status_code == 200
    entries = [(entry.at.astimezone(SYDNEY), entry.kind) for entry in response.context["timeline"]]
    assert entries == [
        (sydney(6, 8), "message"),  # queued, not sent: when it was created
        (sydney(5, 11), "consent"),  # put on the do-not-contact list
        (sydney(4, 18), "reply"),
        (sydney(3, 12), "click"),
        (sydney(3, 9, 32), "click"),
        (sydney(3, 9, 30), "message"),
        (sydney(1, 9), "consent"),
    ]
    body = text_of(response)
    assert "Acme Pty Ltd: Hi Ann https://s.test/s/abc Reply STOP to opt out" in body
    assert "From +61400000001." in body
    assert "Sent <time" in body and "3 Nov 2026, 09:30" in body and "3 Nov 2026, 09:31" in body
    assert "Not sent yet." in body and "Queued" in body and "Delivered" in body
    assert "by a link preview, not a person" in body
    assert "Is the sale on Sunday too?" in body
    assert "Added to do-not-contact" in body and "asked by phone" in body
    assert "Consent given" in body
    assert "Remove from the do-not-contact list" in body
    assert_nothing_of_globex(response)
    assert client_for(alice).get(f"/messaging/contacts/{globex_things['contact'].pk}/").status_code == 404


def test_a_failed_message_in_the_timeline_says_what_its_error_means(client_for, acme, alice, ann):
    number = SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))
    template = template_create(organization=acme, name="Promo", body="Hi {first_name}")
    for name, code in (("Spring", "30007"), ("Summer", "63016")):
        campaign = campaign_create(organization=acme, name=name, template_ids=[template.pk], number_ids=[number.pk])
        SendJob.objects.create(
            organization=acme, campaign=campaign, contact=ann, state=JobState.FAILED, number=number, body="Hi Ann",
            segments=1, sent_at=sydney(3, 9, 30), error_code=code,
        )  # fmt: skip

    body = text_of(client_for(alice).get(f"/messaging/contacts/{ann.pk}/"))

    assert "Error 30007: the carrier filtered the message as spam or against its rules." in body
    assert "Error 63016." in body  # not described here: the code alone


def test_the_timeline_costs_the_same_queries_however_long_it_is(
    client_for, acme, alice, ann, history, django_assert_max_num_queries
):
    client = client_for(alice)
    # base + contact (with its DNC flag) + messages + clicks + replies + consent changes
    with django_assert_max_num_queries(BASE + 5):
        assert client.get(f"/messaging/contacts/{ann.pk}/").status_code == 200


@pytest.mark.isolation("portal:messaging_contact_consent")
def test_consent_is_recorded_and_withdrawn_from_the_contact_page(client_for, acme, alice, ann, globex_things):
    client = client_for(alice)
    refused = client.post(f"/messaging/contacts/{ann.pk}/consent/", {"action": "record", "consent_source": " "})
    assert refused.status_code == 400
    assert refused.context["consent_form"].errors == {"consent_source": ["This field is required."]}
    response = client.post(
        f"/messaging/contacts/{ann.pk}/consent/",
        {"action": "record", "consent_source": "phone call", "consent_text": "Happy to get offers"},
    )
    assert response.status_code == 302
    ann.refresh_from_db()
    assert (ann.consent_at, ann.consent_source, ann.consent_text) == (NOW, "phone call", "Happy to get offers")
    assert client.post(f"/messaging/contacts/{ann.pk}/consent/", {"action": "withdraw"}).status_code == 302
    ann.refresh_from_db()
    assert ann.consent_at is None
    again = client.post(f"/messaging/contacts/{ann.pk}/consent/", {"action": "withdraw"})
    assert message_texts(again)[-1] == "Ann Lee has no consent on record."
    kinds = list(ConsentEvent.objects.for_org(acme).order_by("id").values_list("kind", "source"))
    assert kinds == [(ConsentKind.GIVEN, "phone call"), (ConsentKind.WITHDRAWN, "portal: alice@acme.test")]
    assert client.post(f"/messaging/contacts/{ann.pk}/consent/", {"action": "other"}).status_code == 400
    gus = globex_things["contact"]
    response = client.post(f"/messaging/contacts/{gus.pk}/consent/", {"action": "record", "consent_source": "x"})
    assert response.status_code == 404
    gus.refresh_from_db()
    assert gus.consent_at is None


@pytest.mark.isolation("portal:messaging_contact_dnc")
def test_the_contact_page_adds_and_removes_its_number_from_the_do_not_contact_list(
    client_for, acme, globex, alice, ann, globex_things
):
    client = client_for(alice)
    assert client.post(f"/messaging/contacts/{ann.pk}/dnc/", {"action": "add"}).status_code == 302
    entry = DoNotContact.objects.for_org(acme).get()
    assert (entry.phone_e164, entry.reason, entry.source) == ("+61412345678", "manual", "portal: alice@acme.test")
    assert "On the list" in text_of(client.get(f"/messaging/contacts/{ann.pk}/"))
    response = client.post(f"/messaging/contacts/{ann.pk}/dnc/", {"action": "remove"})
    assert message_texts(response)[-1] == "+61412345678 is off the do-not-contact list."
    assert not DoNotContact.objects.for_org(acme).exists()
    again = client.post(f"/messaging/contacts/{ann.pk}/dnc/", {"action": "remove"})
    assert message_texts(again)[-1] == "+61412345678 was not on the do-not-contact list."
    assert client.post(f"/messaging/contacts/{ann.pk}/dnc/", {"action": "x"}).status_code == 400
    # Globex's contact shares Ann's number: Acme cannot touch Globex's list through it.
    gus = globex_things["contact"]
    assert client.post(f"/messaging/contacts/{gus.pk}/dnc/", {"action": "add"}).status_code == 404
    assert not DoNotContact.objects.for_org(globex).filter(phone_e164="+61412345678").exists()


# -- the do-not-contact list ----------------------------------------------------------------------------------------


@pytest.mark.isolation("portal:messaging_dnc")
def test_the_do_not_contact_list_adds_numbers_by_hand(client_for, acme, globex, alice, ann, globex_things):
    client = client_for(alice)
    response = client.post("/messaging/dnc/", {"phone": "0412 345 678", "region": "AU", "source": "asked in store"})
    assert response.status_code == 302
    assert message_texts(response) == ["+61412345678 is on the do-not-contact list: nothing is sent to it."]
    again = client.post("/messaging/dnc/", {"phone": "+61412345678", "region": "AU"})
    assert message_texts(again)[-1] == "+61412345678 was already on the do-not-contact list."
    [entry] = DoNotContact.objects.for_org(acme)
    assert (entry.reason, entry.source) == ("manual", "asked in store")
    assert ConsentEvent.objects.for_org(acme).get().contact == ann
    page = client.get("/messaging/dnc/")
    row = row_of(text_of(page), "+61412345678")
    assert f'href="/messaging/contacts/{ann.pk}/"' in row and "Added by hand" in row and "asked in store" in row
    assert_nothing_of_globex(page)
    assert [e.phone_e164 for e in client.get("/messaging/dnc/?q=0412").context["page"]] == ["+61412345678"]
    assert list(client.get("/messaging/dnc/?q=0499").context["page"]) == []
    assert DoNotContact.objects.for_org(globex).count() == 1


@pytest.mark.parametrize(
    ("data", "field"), [({"phone": "12", "region": "AU"}, "phone"), ({"phone": "0412000000", "region": "1"}, "region")]
)
def test_a_bad_number_for_the_list_is_refused_beside_its_field(client_for, acme, alice, data, field):
    response = client_for(alice).post("/messaging/dnc/", data)
    assert response.status_code == 400 and list(response.context["form"].errors) == [field]
    assert not DoNotContact.objects.exists()


@pytest.mark.isolation("portal:messaging_dnc_remove")
def test_removing_a_number_from_the_list(client_for, acme, globex, alice, globex_things):
    entry = dnc_add(organization=acme, phone_e164="+61412000001", reason="stop_keyword")
    client = client_for(alice)
    response = client.post(f"/messaging/dnc/{entry.pk}/remove/")
    assert response.status_code == 302 and not DoNotContact.objects.for_org(acme).exists()
    [event] = ConsentEvent.objects.for_org(acme).filter(kind=ConsentKind.DNC_REMOVED)
    assert event.source == "portal: alice@acme.test"
    assert client.post(f"/messaging/dnc/{globex_things['dnc'].pk}/remove/").status_code == 404
    assert DoNotContact.objects.for_org(globex).count() == 1
    assert client.get(f"/messaging/dnc/{entry.pk}/remove/").status_code == 405


# -- query counts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [2, 20])
def test_contact_and_dnc_lists_cost_the_same_queries_for_2_or_20_rows(
    client_for, acme, alice, rows, django_assert_max_num_queries
):
    for index in range(rows):
        contact_create(organization=acme, phone=f"04120001{index:02d}", data={"tags": [f"t{index}"]})
        dnc_add(organization=acme, phone_e164=f"+614120001{index:02d}", reason="manual")
    client = client_for(alice)
    # base + count + one page of contacts with their DNC flag + the tags in use
    with django_assert_max_num_queries(BASE + 3):
        response = client.get("/messaging/contacts/?q=0412")
    assert len(response.context["page"].object_list) == rows
    # base + count + one page of entries with their contact's id
    with django_assert_max_num_queries(BASE + 2):
        response = client.get("/messaging/dnc/")
    assert len(response.context["page"].object_list) == rows


@pytest.mark.parametrize("rows", [2, 20])
def test_the_numbers_page_costs_the_same_queries_for_2_or_20_numbers(
    client_for, acme, alice, rows, django_assert_max_num_queries
):
    for index in range(rows):
        SendingNumber.objects.create(
            organization=acme, phone_e164=f"+614000001{index:02d}", warmup_start=date(2026, 11, 1)
        )
    client = client_for(alice)
    # base + the numbers + today's counters of all of them
    with django_assert_max_num_queries(BASE + 2):
        response = client.get("/messaging/numbers/")
    assert len(response.context["rows"]) == rows
