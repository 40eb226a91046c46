"""The staff admin for messaging: every screen loads for a staff member past the one-time password; numbers, prices,
settings, templates, contacts and the do-not-contact list are checked field by field and written through the
services; records of what happened are read-only; campaigns are paused and canceled through the services; and the
lists make the same number of queries however many rows they show."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sms import demo
from sms.models import (
    Campaign,
    CampaignStatus,
    ConsentEvent,
    ConsentKind,
    Contact,
    DoNotContact,
    SendingNumber,
    SendJob,
    SmsPrice,
    SmsSettings,
    Template,
)
from sms.services.campaigns import campaign_launch
from sms.services.controls import settings_update
from tenancy.errors import ServiceValidationError
from tenancy.models import AuditEvent, Organization, Partner
from tests.factories import OrganizationFactory
from tests.quotes.conftest import staff, staff_client  # noqa: F401

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)  # 21:00 in Sydney
MANAGED = ["sendingnumber", "smsprice", "smssettings", "template", "donotcontact"]
RECORDS = ["consentevent", "sendjob", "inboundmessage", "shortlink", "click"]
READ_ONLY = ["campaign", "contact", *RECORDS]  # no add; campaigns and records are not changed here either


@pytest.fixture(autouse=True)
def _frozen(time_machine: Any) -> None:
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def seeded(acme: Organization, settings: Any) -> None:
    settings.SMS_SHORT_DOMAIN = "s.keel.test"
    demo.seed()


def page_form(client: Any, url: str, **changes: Any) -> dict[str, Any]:
    """The change form at ``url`` as the browser would post it back, with ``changes``."""
    page = client.get(url)
    assert page.status_code == 200
    data: dict[str, Any] = {}
    form = page.context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        if value is not None and value is not False:
            data[name] = value
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): management[name].value() for name in management.fields})
        for row in inline.formset.forms:
            if "id" in row.fields:
                data[row.add_prefix("id")] = row["id"].value()
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def act(client: Any, model: str, action: str, *pks: Any) -> list[str]:
    response = client.post(f"/admin/sms/{model}/", {"action": action, "_selected_action": [str(pk) for pk in pks]},
                           follow=True)  # fmt: skip
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def row_of(html: str, text: str) -> str:
    return next(row for row in html.split("<tr") if text in row)


@pytest.mark.parametrize("model", MANAGED + READ_ONLY)
def test_every_list_and_page_loads_and_records_are_read_only(staff_client, seeded, model):  # noqa: F811
    listing = staff_client.get(f"/admin/sms/{model}/")
    assert listing.status_code == 200
    objects = list(listing.context["cl"].result_list)
    assert objects, f"the demo has no {model}"
    page = staff_client.get(f"/admin/sms/{model}/{objects[0].pk}/change/")
    assert page.status_code == 200
    add = staff_client.get(f"/admin/sms/{model}/add/")
    assert add.status_code == (403 if model in READ_ONLY else 200)
    if model in RECORDS or model == "campaign":
        assert 'name="_save"' not in page.content.decode()
        assert staff_client.post(f"/admin/sms/{model}/{objects[0].pk}/change/", {}).status_code == 403
        assert staff_client.post(f"/admin/sms/{model}/{objects[0].pk}/delete/", {"post": "yes"}).status_code == 403
        assert type(objects[0])._default_manager.filter(pk=objects[0].pk).exists()


LISTS = [f"/admin/sms/{model}/" for model in MANAGED + READ_ONLY]


def test_lists_make_the_same_queries_for_twice_the_rows(staff_client, acme, summit, settings):  # noqa: F811
    settings.SMS_SHORT_DOMAIN = "s.keel.test"
    demo.seed()  # Acme only

    def queries() -> dict[str, int]:
        counted = {}
        for url in LISTS:
            with CaptureQueriesContext(connection) as context:
                assert staff_client.get(url).status_code == 200
            counted[url] = len(context)
        return counted

    before = queries()
    OrganizationFactory(name="Initech", slug="initech", partner=Partner.objects.get(slug="summit"),
                        timezone="Australia/Perth")  # fmt: skip
    demo.seed()  # and Initech: every list has twice the rows
    assert staff_client.get("/admin/sms/sendjob/").context["cl"].result_count == 68
    assert queries() == before
    # The session (read, then saved in a savepoint: 4), the user, the OTP device, the count, the page's rows with their
    # related rows and job or click counts joined, and one query per filter that lists values (the send jobs' list:
    # campaigns and reasons): 9 at most.
    assert max(before.values()) <= 9, before


def test_numbers_are_checked_and_stored_as_e164(staff_client, acme):  # noqa: F811
    form = {"organization": str(acme.pk), "phone_e164": "12345", "warmup_start": "2026-11-17",
            "warmup_curve": "50/x/200", "per_second": "0", "active": "on"}  # fmt: skip
    response = staff_client.post("/admin/sms/sendingnumber/add/", form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["phone_e164"] == ["'12345' is not a valid phone number in AU or with its country code."]
    assert errors["warmup_curve"] == ["Warm-up curve step 2 is not a whole number: 'x'."]
    assert errors["per_second"] == ["Ensure this value is greater than or equal to 1."]
    assert not SendingNumber.objects.exists()
    form.update(phone_e164="0491 570 300", warmup_curve=" 50, 100 ,200 ", per_second="2")
    assert staff_client.post("/admin/sms/sendingnumber/add/", form).status_code == 302
    number = SendingNumber.objects.get()
    assert (number.phone_e164, number.warmup_curve, number.per_second) == ("+61491570300", "50/100/200", 2)
    again = staff_client.post("/admin/sms/sendingnumber/add/", {**form, "phone_e164": "+61 491 570 300"})
    assert "already exists" in again.context["adminform"].form.errors["phone_e164"][0]
    assert SendingNumber.objects.count() == 1


def test_the_number_list_shows_todays_warm_up_day_and_cap(staff_client, seeded):  # noqa: F811
    html = staff_client.get("/admin/sms/sendingnumber/").content.decode()
    for phone, day, cap in [("+61491570100", 1, 20), ("+61491570101", 3, 200), ("+61491570102", 31, 300)]:
        row = row_of(html, phone)
        assert f'<td class="field-warmup_day">{day}</td>' in row
        assert f'<td class="field-cap_today">{cap}</td>' in row
    number = SendingNumber.objects.get(phone_e164="+61491570100")
    number.warmup_start = datetime(2026, 11, 20, tzinfo=UTC).date()
    number.save(update_fields=["warmup_start"])
    row = row_of(staff_client.get("/admin/sms/sendingnumber/").content.decode(), "+61491570100")
    assert "starts 20 Nov 2026" in row and '<td class="field-cap_today">0</td>' in row


def test_prices_and_settings_are_checked_by_field(staff_client, staff, acme, seeded):  # noqa: F811
    def refused(**fields: Any) -> dict[str, list[str]]:
        with pytest.raises(ServiceValidationError) as bad:
            settings_update(organization=acme, **fields)
        return bad.value.message_dict

    response = staff_client.post("/admin/sms/smsprice/add/", {"prefix": "61", "segment_price": "-0.01",
                                                             "currency": "dollars"})  # fmt: skip
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"prefix", "segment_price", "currency"}
    form = {"prefix": "+ 614", "segment_price": "0.0600", "currency": "aud"}
    assert staff_client.post("/admin/sms/smsprice/add/", form).status_code == 302
    assert SmsPrice.objects.filter(prefix="+614", currency="AUD", segment_price=Decimal("0.0600")).exists()

    url = f"/admin/sms/smssettings/{acme.pk}/change/"
    bad = page_form(staff_client, url, daily_budget="-5", messages_per_minute="0", reply_contact="call us")
    errors = staff_client.post(url, bad).context["adminform"].form.errors
    # The form refuses what the service refuses, field by field, in the service's words.
    assert set(errors) == {"daily_budget", "messages_per_minute", "reply_contact"}
    assert errors == refused(daily_budget=Decimal("-5"), messages_per_minute=0, reply_contact="call us")
    overlap = staff_client.post(url, page_form(staff_client, url, opt_in_keywords="START,STOP"))
    assert overlap.context["adminform"].form.errors == refused(opt_in_keywords="START,STOP")
    assert "STOP" in overlap.context["adminform"].form.errors["opt_in_keywords"][0]
    good = page_form(staff_client, url, monthly_budget="450.00", help_keywords="help, info ,support",
                     reply_contact="0491 570 999")  # fmt: skip
    assert staff_client.post(url, good).status_code == 302
    saved = SmsSettings.objects.get(organization=acme)
    assert (saved.monthly_budget, saved.help_keywords, saved.reply_contact, saved.daily_budget) == (
        Decimal("450.00"),
        "HELP,INFO,SUPPORT",
        "+61491570999",
        Decimal("25.00"),
    )
    audit = AuditEvent.objects.get(action="sms.settings_updated", actor=staff)
    assert audit.changes == {
        "help_keywords": ["HELP,INFO", "HELP,INFO,SUPPORT"],
        "monthly_budget": ["300.00", "450.00"],
        "reply_contact": ["hello@acme.test", "+61491570999"],
    }
    assert not AuditEvent.objects.filter(action__startswith="sms.kill_switch").exists()
    assert staff_client.post(url, page_form(staff_client, url, kill_switch="on")).status_code == 302
    assert SmsSettings.objects.get(organization=acme).kill_switch is True
    assert AuditEvent.objects.get(action="sms.kill_switch_on").changes == {"kill_switch": [False, True],
                                                                         "released_jobs": 0}  # fmt: skip


def test_the_kill_switch_action_stops_the_selected_organizations(staff_client, staff, acme, summit, settings):  # noqa: F811
    initech = OrganizationFactory(name="Initech", slug="initech", partner=summit, timezone="Australia/Perth")
    settings.SMS_SHORT_DOMAIN = "s.keel.test"
    demo.seed()
    assert act(staff_client, "smssettings", "kill_switch_on", acme.pk) == [
        "Kill switch turned on for 1 organization(s); nothing more is sent until it is turned off."
    ]
    assert SmsSettings.objects.get(organization=acme).kill_switch is True
    assert SmsSettings.objects.get(organization=initech).kill_switch is False
    audit = AuditEvent.objects.get(action="sms.kill_switch_on")
    assert (audit.organization, audit.actor) == (acme, staff)
    assert act(staff_client, "smssettings", "kill_switch_on", acme.pk)[0].startswith("Kill switch turned on for 0")
    assert AuditEvent.objects.filter(action="sms.kill_switch_on").count() == 1


def test_campaign_list_counts_jobs_per_state(staff_client, seeded, acme):  # noqa: F811
    listing = staff_client.get("/admin/sms/campaign/")
    rows = {campaign.name: campaign for campaign in listing.context["cl"].result_list}
    finished = rows[demo.FINISHED]
    assert (finished.jobs_delivered, finished.jobs_failed, finished.jobs_skipped, finished.jobs_queued) == (28, 2, 4, 0)
    assert rows[demo.DRAFT].jobs_queued == 0
    html = listing.content.decode()
    assert '<td class="field-jobs">28 delivered, 2 failed, 4 skipped</td>' in row_of(html, demo.FINISHED)
    assert '<td class="field-jobs">none</td>' in row_of(html, demo.DRAFT)


def test_staff_pause_resume_and_cancel_campaigns_through_the_services(staff_client, staff, seeded, acme):  # noqa: F811
    draft = Campaign.objects.for_org(acme).get(name=demo.DRAFT)
    finished = Campaign.objects.for_org(acme).get(name=demo.FINISHED)
    assert campaign_launch(campaign=draft) == 11
    assert act(staff_client, "campaign", "pause", draft.pk) == ["1 campaign(s) paused."]
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.PAUSED
    paused = AuditEvent.objects.get(action="campaign.paused")
    assert (paused.actor, paused.organization, paused.target_id) == (staff, acme, str(draft.pk))
    assert act(staff_client, "campaign", "resume", draft.pk) == ["1 campaign(s) resumed."]
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.RUNNING
    assert act(staff_client, "campaign", "cancel", draft.pk, finished.pk) == [
        "1 campaign(s) canceled.",
        "Not done: Free IT health check: A completed campaign cannot be canceled.",
    ]
    draft.refresh_from_db()
    finished.refresh_from_db()
    assert (draft.status, finished.status) == (CampaignStatus.CANCELED, CampaignStatus.COMPLETED)
    assert draft.completed_at == NOW
    assert AuditEvent.objects.get(action="campaign.canceled").actor == staff


def test_contacts_are_edited_through_the_service_and_consent_stays_as_recorded(staff_client, seeded, acme):  # noqa: F811
    olivia = Contact.objects.for_org(acme).get(phone_e164="+61491571000")
    url = f"/admin/sms/contact/{olivia.pk}/change/"
    bad = page_form(staff_client, url, timezone="Mars/Olympus", attributes="[1, 2]")
    errors = staff_client.post(url, bad).context["adminform"].form.errors
    assert errors["timezone"] == ["'Mars/Olympus' is not a time zone (use a name like Australia/Sydney)."]
    assert errors["attributes"] == ["Attributes are an object of names and values."]
    good = page_form(staff_client, url, tags="VIP; Sydney, vip, Trade", timezone="Australia/Perth",
                     consent_at="", consent_source="forged")  # fmt: skip
    assert staff_client.post(url, good).status_code == 302
    olivia.refresh_from_db()
    assert (olivia.tags, olivia.timezone) == (",sydney,trade,vip,", "Australia/Perth")
    assert olivia.consent_source == "website sign-up form" and olivia.consent_at is not None
    assert staff_client.get("/admin/sms/contact/?q=0491 571 000").context["cl"].result_list[0] == olivia
    on_list = staff_client.get("/admin/sms/contact/?on_dnc=yes").context["cl"].result_list
    assert sorted(contact.first_name for contact in on_list) == ["Finn", "Lily", "Xavier", "Zara"]
    assert staff_client.get(f"/admin/sms/contact/{olivia.pk}/delete/").status_code == 403


def test_do_not_contact_entries_are_added_and_removed_through_the_services(staff_client, seeded, acme):  # noqa: F811
    bad = staff_client.post("/admin/sms/donotcontact/add/", {"organization": str(acme.pk), "phone_e164": "not a phone",
                                                             "reason": "manual"})  # fmt: skip
    assert bad.context["adminform"].form.errors["phone_e164"] == ["'not a phone' is not a phone number."]
    form = {"organization": str(acme.pk), "phone_e164": "0491 571 001", "reason": "manual", "source": ""}
    assert staff_client.post("/admin/sms/donotcontact/add/", form).status_code == 302
    entry = DoNotContact.objects.for_org(acme).get(phone_e164="+61491571001")
    jack = Contact.objects.for_org(acme).get(phone_e164="+61491571001")
    added = ConsentEvent.objects.for_org(acme).get(contact=jack, kind=ConsentKind.DNC_ADDED)
    assert (entry.reason, added.source) == ("manual", "added by sam@keel.test in the staff admin")
    assert staff_client.get(f"/admin/sms/donotcontact/{entry.pk}/change/").status_code == 200
    assert staff_client.post(f"/admin/sms/donotcontact/{entry.pk}/change/", form).status_code == 403
    response = staff_client.post("/admin/sms/donotcontact/", {"action": "delete_selected", "post": "yes",
                                                              "_selected_action": [str(entry.pk)]})  # fmt: skip
    assert response.status_code == 302
    assert not DoNotContact.objects.for_org(acme).filter(phone_e164="+61491571001").exists()
    removed = ConsentEvent.objects.for_org(acme).get(contact=jack, kind=ConsentKind.DNC_REMOVED)
    assert removed.source == "removed by sam@keel.test in the staff admin"
    assert DoNotContact.objects.for_org(acme).count() == 4


def test_templates_are_checked_like_the_api(staff_client, acme):  # noqa: F811
    form = {"organization": str(acme.pk), "name": "Coupon", "body": "Hi {first_name}, use {coupon}"}
    response = staff_client.post("/admin/sms/template/add/", form)
    assert response.status_code == 200
    assert re.match(r"\{coupon\} is not a placeholder", response.context["adminform"].form.errors["body"][0])
    form["body"] = "  Hi {first_name}, 10% off this week: {link}  "
    assert staff_client.post("/admin/sms/template/add/", form).status_code == 302
    template = Template.objects.for_org(acme).get()
    assert template.body == "Hi {first_name}, 10% off this week: {link}"
    url = f"/admin/sms/template/{template.pk}/change/"
    assert staff_client.post(url, page_form(staff_client, url, body="Hi {first_name")).status_code == 200
    template.refresh_from_db()
    assert template.body == "Hi {first_name}, 10% off this week: {link}"


def test_new_settings_are_created_through_the_service(staff_client, staff, globex):  # noqa: F811
    form = {"organization": str(globex.pk), "business_name": "Globex", "reply_contact": "help@globex.test",
            "daily_budget": "", "monthly_budget": "1000", "messages_per_minute": "30", "suppression_days": "30",
            "opt_out_keywords": "STOP,END", "opt_in_keywords": "START", "help_keywords": "HELP"}  # fmt: skip
    refused = staff_client.post("/admin/sms/smssettings/add/", {**form, "opt_out_keywords": "END"})
    assert list(refused.context["adminform"].form.errors) == ["opt_out_keywords"]
    assert "STOP" in refused.context["adminform"].form.errors["opt_out_keywords"][0]
    assert not SmsSettings.objects.exists()
    assert staff_client.post("/admin/sms/smssettings/add/", form).status_code == 302
    saved = SmsSettings.objects.get(organization=globex)
    assert (saved.business_name, saved.daily_budget, saved.monthly_budget, saved.opt_out_keywords) == (
        "Globex",
        None,
        Decimal("1000.00"),
        "STOP,END",
    )
    assert AuditEvent.objects.get(action="sms.settings_updated", organization=globex).actor == staff


def test_a_failed_message_shows_what_its_error_code_means(staff_client, seeded):  # noqa: F811
    listing = staff_client.get("/admin/sms/sendjob/", {"state__exact": "FAILED"})
    html = listing.content.decode()
    assert "30003: the handset was unreachable (switched off or out of coverage)" in html
    assert "30005: the number is unknown to its carrier or no longer in service" in html
    failed = SendJob.objects.filter(state="FAILED", error_code="30003")[0]
    page = staff_client.get(f"/admin/sms/sendjob/{failed.pk}/change/").content.decode()
    assert "30003: the handset was unreachable" in page
    by_code = staff_client.get("/admin/sms/sendjob/", {"error_code": "30005"})
    assert {job.error_code for job in by_code.context["cl"].result_list} == {"30005"}
