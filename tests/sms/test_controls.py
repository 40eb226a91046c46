"""The kill switch (on, off, idempotent, audited, releasing exactly the jobs it held), resuming a campaign releases
its held jobs, the messaging settings with their field errors, and the kill switch API."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from sms import counters
from sms.models import CampaignStatus, JobState, SendCounter, SendingNumber, SendJob, SmsSettings
from sms.services.campaigns import campaign_create, campaign_pause, campaign_resume, template_create
from sms.services.contacts import contact_create
from sms.services.controls import kill_switch_set, settings_update
from tenancy.errors import ServiceValidationError
from tenancy.models import AuditEvent

pytestmark = pytest.mark.django_db

SCOPES = ("read", "write", "sms:read", "sms:write")
HELD_UNTIL = datetime(2026, 3, 2, 1, 1, tzinfo=UTC)


def campaign_of(organization: Any, name: str, phone: str, status: str = CampaignStatus.RUNNING) -> Any:
    number = SendingNumber.objects.create(organization=organization, phone_e164=phone, warmup_start=date(2026, 1, 1))
    template = template_create(organization=organization, name=f"{name} text", body="Hi {first_name}")
    campaign = campaign_create(organization=organization, name=name, template_ids=[template.pk], number_ids=[number.pk])
    campaign.status = status
    campaign.save(update_fields=["status"])
    return campaign


def held(campaign: Any, phone: str, reason: str = "kill_switch", state: str = JobState.QUEUED) -> SendJob:
    contact = contact_create(organization=campaign.organization, phone=phone, consent={"source": "form"})
    return SendJob.objects.create(
        organization=campaign.organization,
        campaign=campaign,
        contact=contact,
        state=state,
        reason=reason,
        deferred_until=HELD_UNTIL,
    )


def deferred(*jobs: SendJob) -> list[datetime | None]:
    return [SendJob.objects.get(pk=job.pk).deferred_until for job in jobs]


# -- the kill switch ---------------------------------------------------------------------------------------------


def test_the_kill_switch_turns_on_and_off_once_and_is_audited(acme, alice):
    assert kill_switch_set(organization=acme, enabled=True, actor=alice).kill_switch is True
    assert kill_switch_set(organization=acme, enabled=True, actor=alice).kill_switch is True  # again: nothing new
    assert SmsSettings.objects.get(organization=acme).kill_switch is True
    assert kill_switch_set(organization=acme, enabled=False, actor=alice).kill_switch is False
    kill_switch_set(organization=acme, enabled=False, actor=alice)
    events = AuditEvent.objects.filter(organization=acme, action__startswith="sms.")
    assert sorted((event.action, event.actor_id, event.target_id, str(event.changes)) for event in events) == [
        ("sms.kill_switch_off", alice.pk, str(acme.pk), str({"kill_switch": [True, False], "released_jobs": 0})),
        ("sms.kill_switch_on", alice.pk, str(acme.pk), str({"kill_switch": [False, True], "released_jobs": 0})),
    ]


def test_turning_it_off_releases_exactly_the_jobs_it_held(acme, alice, globex):
    running = campaign_of(acme, "Running", "+61400000001")
    paused = campaign_of(acme, "Paused", "+61400000002", CampaignStatus.PAUSED)
    theirs = campaign_of(globex, "Globex", "+15550000001")
    kill_switch_set(organization=acme, enabled=True, actor=alice)
    kill_switch_set(organization=globex, enabled=True)
    released = [held(running, "0412000001"), held(running, "0412000002")]
    kept = [
        held(running, "0412000003", reason="quiet_hours"),  # held by another gate: its time stands
        held(running, "0412000004", state=JobState.SENDING),
        held(paused, "0412000005"),  # the pause still holds it
        held(theirs, "+15005550006"),  # another organization's switch is still on
    ]
    kill_switch_set(organization=acme, enabled=False, actor=alice)
    assert deferred(*released) == [None, None]
    assert deferred(*kept) == [HELD_UNTIL] * 4
    assert AuditEvent.objects.get(action="sms.kill_switch_off").changes["released_jobs"] == 2


def test_while_it_is_on_nothing_is_released(acme, alice):
    running = campaign_of(acme, "Running", "+61400000001")
    kill_switch_set(organization=acme, enabled=True, actor=alice)
    job = held(running, "0412000001")
    kill_switch_set(organization=acme, enabled=True, actor=alice)
    assert deferred(job) == [HELD_UNTIL]


def test_resuming_releases_the_campaigns_held_jobs_unless_the_switch_is_on(acme, alice):
    campaign = campaign_of(acme, "Spring", "+61400000001")
    other = campaign_of(acme, "Other", "+61400000002", CampaignStatus.PAUSED)
    campaign_pause(campaign=campaign, actor=alice)
    job, others = held(campaign, "0412000001"), held(other, "0412000002")
    kill_switch_set(organization=acme, enabled=True, actor=alice)
    assert campaign_resume(campaign=campaign, actor=alice).status == CampaignStatus.RUNNING
    assert deferred(job) == [HELD_UNTIL]  # the kill switch still holds it
    kill_switch_set(organization=acme, enabled=False, actor=alice)
    assert deferred(job, others) == [None, HELD_UNTIL]  # the other campaign is still paused

    campaign_pause(campaign=campaign, actor=alice)
    again = held(campaign, "0412000003")
    campaign_resume(campaign=campaign, actor=alice)
    assert deferred(again, others) == [None, HELD_UNTIL]


def test_only_owners_admins_and_managers_use_the_kill_switch(acme, bob):
    with pytest.raises(PermissionDenied):
        kill_switch_set(organization=acme, enabled=True, actor=bob)
    with pytest.raises(PermissionDenied):
        settings_update(organization=acme, actor=bob, messages_per_minute=10)
    assert not SmsSettings.objects.filter(organization=acme, kill_switch=True).exists()


# -- settings ----------------------------------------------------------------------------------------------------


def test_settings_are_cleaned_saved_and_audited(acme, alice):
    saved = settings_update(
        organization=acme,
        actor=alice,
        business_name="  Acme Deals ",
        reply_contact="(02) 9876 5432",
        daily_budget="25.5",
        monthly_budget=Decimal("400"),
        messages_per_minute=600,
        suppression_days="0",
        opt_out_keywords="stop, quit ,Stop,END",
        opt_in_keywords=["start", "yes"],
        help_keywords="help",
    )
    saved.refresh_from_db()
    assert (saved.business_name, saved.reply_contact, saved.daily_budget, saved.monthly_budget) == (
        "Acme Deals",
        "+61298765432",
        Decimal("25.50"),
        Decimal("400.00"),
    )
    assert (saved.messages_per_minute, saved.suppression_days) == (600, 0)
    assert (saved.opt_out_keywords, saved.opt_in_keywords, saved.help_keywords) == (
        "STOP,QUIT,END",
        "START,YES",
        "HELP",
    )
    event = AuditEvent.objects.get(action="sms.settings_updated")
    assert event.changes["daily_budget"] == [None, "25.50"]
    assert event.changes["messages_per_minute"] == [120, 600]
    settings_update(organization=acme, actor=alice, daily_budget=None, reply_contact="help@acme.test")
    saved.refresh_from_db()
    assert (saved.daily_budget, saved.reply_contact) == (None, "help@acme.test")
    settings_update(organization=acme, actor=alice, reply_contact="help@acme.test")  # unchanged: nothing recorded
    assert AuditEvent.objects.filter(action="sms.settings_updated").count() == 2


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"business_name": "x" * 61}, "business_name", "At most 60 characters."),
        ({"business_name": 7}, "business_name", "Must be text."),
        ({"reply_contact": "call us"}, "reply_contact", "Give a phone number or an email address: 'call us' is not"),
        ({"reply_contact": "help@"}, "reply_contact", "Give a phone number or an email address; this email"),
        ({"daily_budget": "-1"}, "daily_budget", "A budget cannot be negative."),
        ({"daily_budget": "10.005"}, "daily_budget", "At most two decimal places."),
        ({"daily_budget": "lots"}, "daily_budget", "Give an amount such as 50.00, or null for no budget."),
        ({"monthly_budget": "NaN"}, "monthly_budget", "Give an amount such as 50.00, or null for no budget."),
        ({"monthly_budget": True}, "monthly_budget", "Give an amount such as 50.00, or null for no budget."),
        ({"monthly_budget": "10000000000"}, "monthly_budget", "At most 9,999,999,999.99."),
        ({"messages_per_minute": 0}, "messages_per_minute", "A whole number from 1 to 6,000."),
        ({"messages_per_minute": 6001}, "messages_per_minute", "A whole number from 1 to 6,000."),
        ({"messages_per_minute": 1.5}, "messages_per_minute", "A whole number from 1 to 6,000."),
        ({"messages_per_minute": True}, "messages_per_minute", "A whole number from 1 to 6,000."),
        ({"suppression_days": 366}, "suppression_days", "A whole number from 0 to 365."),
        ({"suppression_days": "-1"}, "suppression_days", "A whole number from 0 to 365."),
        ({"opt_out_keywords": "STOP,OPT OUT"}, "opt_out_keywords", "'OPT OUT' is not a keyword"),
        ({"opt_in_keywords": "START,SÍ"}, "opt_in_keywords", "'SÍ' is not a keyword"),
        ({"help_keywords": "HELP;INFO"}, "help_keywords", "'HELP;INFO' is not a keyword"),
        ({"help_keywords": 3}, "help_keywords", "Give words separated by commas."),
        ({"opt_out_keywords": "QUIT,END"}, "opt_out_keywords", "STOP must stay an opt-out keyword"),
        ({"opt_out_keywords": ""}, "opt_out_keywords", "STOP must stay an opt-out keyword"),
        ({"help_keywords": ",".join(f"WORD{n:03d}" for n in range(40))}, "help_keywords", "At most 300 characters"),
        ({"kill_switch": True}, "kill_switch", "This field cannot be changed here."),
        ({"opt_in_keywords": "START,STOP"}, "opt_in_keywords", "Also an opt-out keyword: STOP."),
        ({"opt_in_keywords": "START,HELP,INFO"}, "opt_in_keywords", "Also a help keyword: HELP, INFO."),
    ],
)
def test_bad_settings_are_refused_by_field(acme, alice, fields, field, message):
    with pytest.raises(ServiceValidationError) as bad:
        settings_update(organization=acme, actor=alice, **fields)
    assert list(bad.value.message_dict) == [field]
    assert bad.value.message_dict[field][0].startswith(message), bad.value.message_dict
    assert not AuditEvent.objects.filter(action="sms.settings_updated").exists()


def test_every_bad_field_is_reported_and_nothing_is_saved(acme, alice):
    with pytest.raises(ServiceValidationError) as bad:
        settings_update(
            organization=acme, actor=alice, business_name="Fine", messages_per_minute=0, suppression_days=999
        )
    assert sorted(bad.value.message_dict) == ["messages_per_minute", "suppression_days"]
    assert not SmsSettings.objects.filter(organization=acme, business_name="Fine").exists()


def test_moving_a_word_between_lists_is_done_in_one_update(acme, alice):
    with pytest.raises(ServiceValidationError) as bad:
        settings_update(organization=acme, actor=alice, help_keywords="HELP,INFO,YES")
    assert bad.value.message_dict == {"help_keywords": ["Also an opt-in keyword: YES."]}
    settings_update(organization=acme, actor=alice, help_keywords="HELP,INFO,YES", opt_in_keywords="START,UNSTOP")
    saved = SmsSettings.objects.get(organization=acme)
    assert (saved.help_keywords, saved.opt_in_keywords) == ("HELP,INFO,YES", "START,UNSTOP")


# -- the kill switch API -----------------------------------------------------------------------------------------


def post(client: APIClient, path: str, body: Any, **headers: Any) -> Any:
    return client.generic("POST", path, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> APIClient:
    _, raw = api_key_for(organization=acme, scopes=SCOPES)
    return api(raw)


def test_the_api_turns_the_switch_and_answers_the_budget(acme_key, acme):
    now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    SmsSettings.objects.create(organization=acme, daily_budget=Decimal("20.00"))
    window = counters.day_window(now, acme.timezone)
    SendCounter.objects.create(key=counters.spend_day_key(acme.pk), window=window, amount=Decimal("17.1234"))
    running = campaign_of(acme, "Running", "+61400000001")
    with time_machine.travel(now, tick=False):
        on = post(acme_key, "/api/sms/kill-switch/", {"enabled": True})
        job = held(running, "0412000001")
        assert acme_key.get("/api/sms/kill-switch/").json()["enabled"] is True
        off = post(acme_key, "/api/sms/kill-switch/", {"enabled": False})
    assert on.status_code == 200, on.content
    assert on.json() == {
        "enabled": True,
        "budget": {
            "currency": "AUD",
            "spent_today": "17.12",
            "spent_this_month": "0.00",
            "daily_cap": "20.00",
            "monthly_cap": None,
            "credits": 0,
            "alerts": ["day"],
        },
    }
    assert off.json()["enabled"] is False and deferred(job) == [None]
    assert sorted(AuditEvent.objects.filter(action__startswith="sms.").values_list("action", flat=True)) == [
        "sms.kill_switch_off",
        "sms.kill_switch_on",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "enabled"),
        ({"enabled": "maybe"}, "enabled"),
        ({"enabled": None}, "enabled"),
        ({"enabled": True, "x": 1}, "x"),
    ],
)
def test_a_bad_kill_switch_body_is_a_400(acme_key, acme, body, field):
    response = post(acme_key, "/api/sms/kill-switch/", body)
    assert response.status_code == 400 and field in response.json()
    assert not SmsSettings.objects.filter(organization=acme, kill_switch=True).exists()


def test_the_kill_switch_needs_sms_write_and_a_manager(api, api_key_for, acme, alice, bob):
    _, read_only = api_key_for(organization=acme, scopes=("read", "sms:read"))
    assert api(read_only).get("/api/sms/kill-switch/").status_code == 200
    assert post(api(read_only), "/api/sms/kill-switch/", {"enabled": True}).status_code == 403
    bob_api = APIClient()
    bob_api.force_login(bob)
    assert post(bob_api, "/api/sms/kill-switch/", {"enabled": True}).status_code == 403
    assert not SmsSettings.objects.filter(organization=acme, kill_switch=True).exists()
    alice_api = APIClient()
    alice_api.force_login(alice)
    assert post(alice_api, "/api/sms/kill-switch/", {"enabled": True}).json()["enabled"] is True


@pytest.mark.isolation("api-sms-kill-switch")
def test_another_organizations_kill_switch_is_out_of_reach(acme_key, api, api_key_for, summit, alice, globex):
    _, summit_raw = api_key_for(partner=summit, scopes=SCOPES)
    kill_switch_set(organization=globex, enabled=True)
    alice_api = APIClient()
    alice_api.force_login(alice)
    for client in (acme_key, api(summit_raw), alice_api):
        for organization in ("globex", str(globex.pk)):
            refused = post(client, "/api/sms/kill-switch/", {"enabled": False}, HTTP_X_ORGANIZATION=organization)
            assert refused.status_code == 404
            assert client.get("/api/sms/kill-switch/", HTTP_X_ORGANIZATION=organization).status_code == 404
    assert SmsSettings.objects.get(organization=globex).kill_switch is True
    # A partner key must say which organization it acts for; it gets its own, never another's.
    assert api(summit_raw).get("/api/sms/kill-switch/").status_code == 400
    assert api(summit_raw, organization="acme").get("/api/sms/kill-switch/").json()["enabled"] is False
    assert acme_key.get("/api/sms/kill-switch/").json()["budget"]["currency"] == "AUD"
    assert globex.currency == "USD"
