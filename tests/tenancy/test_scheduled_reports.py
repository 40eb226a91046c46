"""Scheduled reports: when they are due (07:00 in the organization's zone, across daylight-saving changes), the
services' field errors and permissions, the CSV of each report (exact, formula-safe), sending once per period even
when the task runs twice or concurrently, the portal page and the staff admin."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connection

from billing.models import Invoice, InvoiceStatus
from sms.models import CampaignStatus, JobState, SendingNumber, SendJob
from sms.services.campaigns import campaign_create, template_create
from sms.services.contacts import contact_create
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import AuditEvent, Membership, ScheduledReport
from tenancy.report_periods import Period, last_run, next_run, period_label, period_of
from tenancy.services import reports
from tenancy.services.reports import (
    MAX_SCHEDULES,
    report_schedule_create,
    report_schedule_delete,
    report_schedule_update,
    scheduled_reports_send,
)
from tenancy.tasks import send_scheduled_reports
from tests.factories import UserFactory
from tests.helpers import admin_client, race
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, zone: ZoneInfo = SYDNEY) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def rows_of(content: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content)))


def run_at(moment: datetime, capture: Any) -> int:
    """The beat task at ``moment``, its emails sent as its transactions commit."""
    with time_machine.travel(moment, tick=False), capture(execute=True):
        return int(send_scheduled_reports())


# -- when ------------------------------------------------------------------------------------------------------------


def test_daily_sendings_stay_at_seven_local_across_the_start_of_daylight_saving():
    # Sydney moves from UTC+10 to UTC+11 at 02:00 on Sunday 4 October 2026.
    before = next_run("daily", local(2026, 10, 2, 9, 0), SYDNEY)
    on_the_day = next_run("daily", before, SYDNEY)
    after = next_run("daily", on_the_day, SYDNEY)
    assert [before, on_the_day, after] == [utc(2026, 10, 2, 21), utc(2026, 10, 3, 20), utc(2026, 10, 4, 20)]
    assert [moment.astimezone(SYDNEY).hour for moment in (before, on_the_day, after)] == [7, 7, 7]
    assert on_the_day - before == timedelta(hours=23)
    # The day the sending of 5 October covers is 23 hours long.
    day = period_of("daily", after, SYDNEY)
    assert (day.first, day.last, day.end - day.start) == (date(2026, 10, 4), date(2026, 10, 4), timedelta(hours=23))


def test_daily_sendings_stay_at_seven_local_across_the_end_of_daylight_saving():
    # Sydney moves back from UTC+11 to UTC+10 at 03:00 on Sunday 5 April 2026.
    saturday = next_run("daily", local(2026, 4, 3, 12, 0), SYDNEY)
    sunday = next_run("daily", saturday, SYDNEY)
    assert (saturday, sunday) == (utc(2026, 4, 3, 20), utc(2026, 4, 4, 21))
    assert sunday - saturday == timedelta(hours=25)
    day = period_of("daily", next_run("daily", sunday, SYDNEY), SYDNEY)
    assert (day.first, day.end - day.start) == (date(2026, 4, 5), timedelta(hours=25))


def test_weekly_reports_go_on_mondays_and_monthly_on_the_first():
    assert next_run("weekly", local(2026, 3, 4, 12, 0), SYDNEY) == local(2026, 3, 9, 7, 0)  # Wednesday -> Monday
    assert next_run("weekly", local(2026, 3, 9, 6, 59), SYDNEY) == local(2026, 3, 9, 7, 0)
    assert next_run("weekly", local(2026, 3, 9, 7, 0), SYDNEY) == local(2026, 3, 16, 7, 0)
    assert next_run("monthly", local(2026, 1, 15, 12, 0), SYDNEY) == local(2026, 2, 1, 7, 0)
    assert next_run("monthly", local(2026, 12, 1, 7, 0), SYDNEY) == local(2027, 1, 1, 7, 0)
    assert next_run("daily", utc(2026, 3, 10, 23, 0), NEW_YORK) == local(2026, 3, 11, 7, 0, zone=NEW_YORK)
    assert last_run("weekly", local(2026, 3, 9, 6, 59), SYDNEY) == local(2026, 3, 2, 7, 0)
    assert last_run("monthly", local(2026, 3, 1, 7, 0), SYDNEY) == local(2026, 3, 1, 7, 0)
    week = period_of("weekly", local(2026, 3, 9, 7, 0), SYDNEY)
    month = period_of("monthly", local(2026, 3, 1, 7, 0), SYDNEY)
    assert (week.first, week.last, month.first, month.last) == (
        date(2026, 3, 2),
        date(2026, 3, 8),
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    assert period_label("weekly", week) == "2 March 2026 to 8 March 2026"
    assert period_label("monthly", month) == "February 2026"
    assert period_label("daily", Period(date(2026, 3, 8), date(2026, 3, 8), SYDNEY)) == "8 March 2026"


def test_a_new_report_is_first_due_at_the_next_seven_in_the_organizations_zone(acme, alice, globex, carol):
    # Saturday 3 October 2026, 09:00 in Sydney: the next 07:00 is on Sunday, the first day of daylight saving.
    with time_machine.travel(local(2026, 10, 3, 9, 0), tick=False):
        daily = report_schedule_create(organization=acme, actor=alice, report="sla", frequency="daily")
        weekly = report_schedule_create(organization=acme, actor=alice, report="billing", frequency="weekly")
        new_york = report_schedule_create(organization=globex, actor=carol, report="billing", frequency="monthly")
    assert daily.next_run_at == utc(2026, 10, 3, 20)  # 07:00 AEDT
    assert weekly.next_run_at == utc(2026, 10, 4, 20)  # Monday 5 October, 07:00 AEDT
    assert new_york.next_run_at == local(2026, 11, 1, 7, 0, zone=NEW_YORK)  # already standard time there
    assert daily.recipients == ["alice@acme.test"] and daily.created_by == alice
    event = AuditEvent.objects.for_org(acme).filter(action="report_schedule.created").first()
    assert event is not None and event.changes["recipients"] == ["alice@acme.test"]


# -- the services ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"report": "profit", "frequency": "daily"}, "report"),
        ({"report": "sla", "frequency": "hourly"}, "frequency"),
        ({"report": "sla", "frequency": "daily", "recipients": ["carol@globex.test"]}, "recipients"),
        ({"report": "sla", "frequency": "daily", "recipients": "alice@acme.test"}, "recipients"),
        ({"report": "sla", "frequency": "daily", "recipients": []}, "recipients"),
        ({"report": "sla", "frequency": "daily", "recipients": ["not an email"]}, "recipients"),
    ],
)
def test_bad_input_is_refused_by_field(acme, alice, carol, values, field):
    with pytest.raises(ServiceValidationError) as refused:
        report_schedule_create(organization=acme, actor=alice, **values)
    assert list(refused.value.message_dict) == [field]
    assert not ScheduledReport.objects.exists()


def test_only_owners_admins_and_partner_admins_schedule_reports(acme, alice, bob, pat, carol):
    with pytest.raises(PermissionDenied):
        report_schedule_create(organization=acme, actor=bob, report="sla", frequency="daily")
    with pytest.raises(PermissionDenied):
        report_schedule_create(organization=acme, actor=carol, report="sla", frequency="daily")
    made = report_schedule_create(organization=acme, actor=pat, report="sla", frequency="daily")
    assert made.recipients == ["pat@summit.test"]
    changed = report_schedule_update(
        schedule=made, actor=alice, recipients=["Bob@Acme.test", "alice@acme.test", "bob@acme.test"]
    )
    assert changed.recipients == ["bob@acme.test", "alice@acme.test"]
    with pytest.raises(PermissionDenied):
        report_schedule_delete(schedule=changed, actor=bob)
    report_schedule_delete(schedule=changed, actor=alice)
    assert not ScheduledReport.objects.exists()
    assert AuditEvent.objects.for_org(acme).filter(action="report_schedule.deleted").count() == 1


def test_an_organization_has_a_bounded_number_of_reports(acme, alice):
    for _ in range(MAX_SCHEDULES):
        report_schedule_create(organization=acme, actor=alice, report="sla", frequency="daily")
    with pytest.raises(ConflictError):
        report_schedule_create(organization=acme, actor=alice, report="sla", frequency="daily")


def test_a_new_frequency_or_resuming_sets_the_next_sending_from_now(acme, alice):
    made = report_schedule_create(
        organization=acme, actor=alice, report="sla", frequency="daily", now=local(2026, 3, 4, 12, 0)
    )
    weekly = report_schedule_update(schedule=made, actor=alice, frequency="weekly", now=local(2026, 3, 4, 13, 0))
    assert weekly.next_run_at == local(2026, 3, 9, 7, 0)
    paused = report_schedule_update(schedule=weekly, actor=alice, active=False, now=local(2026, 3, 20, 8, 0))
    assert (paused.active, paused.next_run_at) == (False, local(2026, 3, 9, 7, 0))
    resumed = report_schedule_update(schedule=paused, actor=alice, active=True, now=local(2026, 3, 20, 8, 0))
    assert (resumed.active, resumed.next_run_at) == (True, local(2026, 3, 23, 7, 0))


# -- the reports -----------------------------------------------------------------------------------------------------


def ticket(organization: Any, number: int, opened: datetime, **values: Any) -> Ticket:
    values.setdefault("subject", f"Ticket {number}")
    return Ticket.objects.create(
        organization=organization, number=number, created_at=opened, sla_started_at=opened, **values
    )


def test_the_sla_report_lists_the_days_tickets_with_their_clocks(
    acme, alice, globex, django_capture_on_commit_callbacks
):
    # Due at 07:00 on Monday 5 October 2026 (AEDT), covering Sunday 4 October: 23 hours, 14:00 to 13:00 UTC.
    schedule = report_schedule_create(
        organization=acme, actor=alice, report="sla", frequency="daily", now=local(2026, 10, 4, 12, 0)
    )
    assert schedule.next_run_at == utc(2026, 10, 4, 20)
    first = ticket(
        acme,
        1001,
        utc(2026, 10, 3, 15, 30),  # 01:30 AEST
        subject='=HYPERLINK("http://evil.test","Open me")',
        priority="P1",
        status="OPEN",
        first_response_target=timedelta(hours=1),
        first_response_due=utc(2026, 10, 3, 15, 45),
        first_responded_at=utc(2026, 10, 3, 15, 40),
        first_response_state="met",
        resolution_target=timedelta(hours=8),
        resolution_due=utc(2026, 10, 3, 23, 30),  # passed, still running: breached already
        resolution_state="ok",
    )
    ticket(acme, 1002, utc(2026, 10, 4, 12, 59), subject="Printer, again", status="NEW")  # 23:59 AEDT, no SLA
    ticket(acme, 1000, utc(2026, 10, 3, 13, 59))  # 23:59 the day before
    ticket(acme, 1003, utc(2026, 10, 4, 13, 0))  # midnight after: the next day's
    ticket(acme, 1004, utc(2026, 10, 4, 1, 0), merged_into=first)  # merged into T-1001
    ticket(globex, 1005, utc(2026, 10, 4, 1, 0), subject="Globex secret")

    assert run_at(utc(2026, 10, 4, 20, 5), django_capture_on_commit_callbacks) == 1

    [message] = mail.outbox
    assert message.to == ["alice@acme.test"]
    assert message.subject == "Daily SLA performance report for Acme Pty Ltd: 4 October 2026"
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == ("acme-sla-2026-10-04.csv", "text/csv")
    assert content == (
        "ticket,subject,priority,status,opened_at,first_response_due,first_responded_at,first_response,"
        "resolution_due,resolved_at,resolution\r\n"
        'T-1001,"\'=HYPERLINK(""http://evil.test"",""Open me"")",P1 critical,Open,2026-10-04T01:30:00+10:00,'
        "2026-10-04T01:45:00+10:00,2026-10-04T01:40:00+10:00,Met,2026-10-04T10:30:00+11:00,,Breached\r\n"
        'T-1002,"Printer, again",P3 medium,New,2026-10-04T23:59:00+11:00,,,No target,,,No target\r\n'
    )
    assert rows_of(content)[1][1] == '\'=HYPERLINK("http://evil.test","Open me")'  # text, not a formula
    assert "2 rows" in message.body and "4 October 2026" in message.body
    schedule.refresh_from_db()
    assert (schedule.next_run_at, schedule.last_run_at, schedule.last_period_start) == (
        utc(2026, 10, 5, 20),
        utc(2026, 10, 4, 20, 5),
        date(2026, 10, 4),
    )


def invoice(organization: Any, number: int | None, issued: date, status: str, **amounts: str) -> Invoice:
    return Invoice.objects.create(
        organization=organization,
        number=number,
        status=status,
        currency=organization.currency,
        issue_date=issued,
        due_date=issued + timedelta(days=14),
        **{name: Decimal(value) for name, value in amounts.items()},
    )


def test_the_billing_report_lists_the_months_invoices_to_the_cent(
    acme, alice, globex, django_capture_on_commit_callbacks
):
    schedule = report_schedule_create(
        organization=acme, actor=alice, report="billing", frequency="monthly", now=local(2026, 10, 20, 9, 0)
    )
    assert schedule.next_run_at == local(2026, 11, 1, 7, 0)
    paid = {"subtotal": "90.9091", "tax": "9.0909", "total": "100.0000", "amount_paid": "100.0000"}
    invoice(acme, 41, date(2026, 10, 1), InvoiceStatus.PAID, **paid)
    invoice(acme, 42, date(2026, 10, 31), InvoiceStatus.OPEN, subtotal="1234.5650", tax="123.4565", total="1358.0215")
    invoice(acme, None, date(2026, 10, 10), InvoiceStatus.DRAFT, total="5.0000")
    invoice(acme, 40, date(2026, 9, 30), InvoiceStatus.OPEN, total="7.0000")
    invoice(acme, 43, date(2026, 11, 1), InvoiceStatus.OPEN, total="8.0000")
    invoice(globex, 41, date(2026, 10, 5), InvoiceStatus.OPEN, total="999.0000")

    assert run_at(local(2026, 11, 1, 7, 0), django_capture_on_commit_callbacks) == 1

    [message] = mail.outbox
    assert message.subject == "Monthly Billing report for Acme Pty Ltd: October 2026"
    [(filename, content, _)] = message.attachments
    assert filename == "acme-billing-2026-10-01.csv"
    assert content == (
        "invoice,issue_date,due_date,status,currency,subtotal,tax,total,amount_paid,amount_due\r\n"
        "INV-00041,2026-10-01,2026-10-15,Paid,AUD,90.91,9.09,100.00,100.00,0.00\r\n"
        "INV-00042,2026-10-31,2026-11-14,Open,AUD,1234.57,123.46,1358.02,0.00,1358.02\r\n"
    )


def test_the_campaigns_report_lists_the_weeks_campaigns_with_their_results(
    acme, alice, django_capture_on_commit_callbacks
):
    number = SendingNumber.objects.create(organization=acme, phone_e164="+61400000001", warmup_start=date(2026, 1, 1))
    template = template_create(organization=acme, name="Hello", body="Hi {first_name}")

    def campaign(name: str, launched: datetime | None, **values: Any) -> Any:
        made = campaign_create(organization=acme, name=name, template_ids=[template.pk], number_ids=[number.pk])
        type(made).objects.filter(pk=made.pk).update(launched_at=launched, **values)
        made.refresh_from_db()
        return made

    running = campaign("=cmd|' /C calc'!A0", local(2026, 3, 3, 10, 0), status=CampaignStatus.RUNNING)
    campaign("Done before", local(2026, 2, 20, 10, 0), status=CampaignStatus.COMPLETED, completed_at=local(2026, 3, 1))
    campaign("Launched after", local(2026, 3, 9, 0, 0), status=CampaignStatus.RUNNING)
    campaign("Never launched", None)
    for position, (state, cost) in enumerate(
        [(JobState.DELIVERED, "0.0525"), (JobState.DELIVERED, "0.0525"), (JobState.FAILED, "0")], start=1
    ):
        contact = contact_create(organization=acme, phone=f"+6141200000{position}", data={})
        SendJob.objects.create(
            organization=acme, campaign=running, contact=contact, position=position, state=state, cost=Decimal(cost)
        )
    schedule = report_schedule_create(
        organization=acme, actor=alice, report="campaigns", frequency="weekly", now=local(2026, 3, 4, 9, 0)
    )

    assert run_at(local(2026, 3, 9, 7, 10), django_capture_on_commit_callbacks) == 1

    [message] = mail.outbox
    assert message.subject == "Weekly SMS campaigns report for Acme Pty Ltd: 2 March 2026 to 8 March 2026"
    [(filename, content, _)] = message.attachments
    assert filename == "acme-campaigns-2026-03-02.csv"
    assert content == (
        "campaign,status,launched_at,completed_at,queued,sending,sent,delivered,failed,skipped,cost,currency,"
        "delivery_rate,ctr_human,opt_outs\r\n"
        "'=cmd|' /C calc'!A0,Running,2026-03-03T10:00:00+11:00,,0,0,0,2,1,0,0.11,AUD,0.6667,0.0,0\r\n"
    )
    schedule.refresh_from_db()
    assert schedule.next_run_at == local(2026, 3, 16, 7, 0)


# -- sending once ----------------------------------------------------------------------------------------------------


def test_a_report_is_sent_once_when_the_task_runs_twice(acme, alice, django_capture_on_commit_callbacks):
    report_schedule_create(organization=acme, actor=alice, report="sla", frequency="daily", now=local(2026, 3, 4, 9))
    assert run_at(local(2026, 3, 5, 7, 0), django_capture_on_commit_callbacks) == 1
    assert run_at(local(2026, 3, 5, 7, 15), django_capture_on_commit_callbacks) == 0
    assert run_at(local(2026, 3, 6, 6, 59), django_capture_on_commit_callbacks) == 0
    assert run_at(local(2026, 3, 6, 7, 0), django_capture_on_commit_callbacks) == 1
    assert [m.attachments[0][0] for m in mail.outbox] == ["acme-sla-2026-03-04.csv", "acme-sla-2026-03-05.csv"]


def test_a_period_already_sent_is_not_sent_again(acme, alice, django_capture_on_commit_callbacks):
    schedule = report_schedule_create(
        organization=acme, actor=alice, report="sla", frequency="daily", now=local(2026, 3, 4, 9)
    )
    assert run_at(local(2026, 3, 5, 7, 0), django_capture_on_commit_callbacks) == 1
    # Someone moves the next sending back (a zone change, a hand edit): the period of 4 March still goes once.
    ScheduledReport.objects.filter(pk=schedule.pk).update(next_run_at=local(2026, 3, 5, 7, 0))
    assert run_at(local(2026, 3, 5, 8, 0), django_capture_on_commit_callbacks) == 0
    schedule.refresh_from_db()
    assert schedule.next_run_at == local(2026, 3, 6, 7, 0) and len(mail.outbox) == 1


def test_after_an_outage_only_the_latest_period_goes(acme, alice, django_capture_on_commit_callbacks):
    schedule = report_schedule_create(
        organization=acme, actor=alice, report="sla", frequency="daily", now=local(2026, 3, 1, 9)
    )
    assert run_at(local(2026, 3, 5, 9, 0), django_capture_on_commit_callbacks) == 1
    assert [m.attachments[0][0] for m in mail.outbox] == ["acme-sla-2026-03-04.csv"]
    schedule.refresh_from_db()
    assert schedule.next_run_at == local(2026, 3, 6, 7, 0)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_send_a_report_once(acme, alice):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    report_schedule_create(organization=acme, actor=alice, report="billing", frequency="daily", now=local(2026, 3, 4))
    invoice(acme, 7, date(2026, 3, 4), InvoiceStatus.OPEN, subtotal="10.0000", total="10.0000")
    outcomes = race(lambda: scheduled_reports_send(now=local(2026, 3, 5, 7, 0)), workers=3)
    assert sorted(outcomes) == [0, 0, 1]
    [message] = mail.outbox
    assert (
        message.attachments[0][1].splitlines()[1]
        == "INV-00007,2026-03-04,2026-03-18,Open,AUD,10.00,0.00,10.00,0.00,10.00"
    )
    assert ScheduledReport.objects.get().last_period_start == date(2026, 3, 4)


def test_people_who_left_receive_nothing(acme, alice, bob, django_capture_on_commit_callbacks):
    schedule = report_schedule_create(
        organization=acme,
        actor=alice,
        report="sla",
        frequency="daily",
        recipients=["alice@acme.test", "bob@acme.test"],
        now=local(2026, 3, 4, 9),
    )
    Membership.objects.filter(user=bob).delete()
    assert run_at(local(2026, 3, 5, 7, 0), django_capture_on_commit_callbacks) == 1
    assert mail.outbox[0].to == ["alice@acme.test"]
    Membership.objects.filter(user=alice).delete()
    assert run_at(local(2026, 3, 6, 7, 0), django_capture_on_commit_callbacks) == 0
    schedule.refresh_from_db()
    assert len(mail.outbox) == 1 and schedule.next_run_at == local(2026, 3, 7, 7, 0)


def test_a_report_that_fails_stays_due_and_the_others_still_go(
    acme, alice, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args: Any) -> Any:
        raise RuntimeError("the ticket database is away")

    monkeypatch.setitem(reports.SOURCES, "sla", (reports.SLA_COLUMNS, broken))
    failing = report_schedule_create(
        organization=acme, actor=alice, report="sla", frequency="daily", now=local(2026, 3, 4, 9)
    )
    report_schedule_create(organization=acme, actor=alice, report="billing", frequency="daily", now=local(2026, 3, 4))
    assert run_at(local(2026, 3, 5, 7, 0), django_capture_on_commit_callbacks) == 1
    assert [m.attachments[0][0] for m in mail.outbox] == ["acme-billing-2026-03-04.csv"]
    failing.refresh_from_db()
    assert (failing.next_run_at, failing.last_run_at) == (local(2026, 3, 5, 7, 0), None)


def test_the_task_runs_every_fifteen_minutes():
    assert settings.CELERY_BEAT_SCHEDULE["tenancy-send-scheduled-reports"] == {
        "task": "tenancy.tasks.send_scheduled_reports",
        "schedule": 900.0,
    }


# -- the portal and the admin ----------------------------------------------------------------------------------------

PAGE = "/settings/reports/"


@pytest.mark.isolation("portal:settings_reports")
def test_the_page_lists_creates_and_deletes_only_the_organizations_reports(acme, alice, bob, globex, carol, client_for):
    theirs = report_schedule_create(organization=globex, actor=carol, report="billing", frequency="weekly")
    client = client_for(alice)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert page.context["schedules"] == [] and "carol@globex.test" not in page.content.decode()
    assert "Scheduled reports" in page.content.decode()  # the settings menu entry
    made = client.post(
        PAGE,
        {
            "action": "create",
            "report": "sla",
            "frequency": "weekly",
            "recipients": ["alice@acme.test", "bob@acme.test"],
        },
    )
    assert made.status_code == 302
    mine = ScheduledReport.objects.for_org(acme).get()
    assert (mine.report, mine.frequency, mine.recipients) == ("sla", "weekly", ["alice@acme.test", "bob@acme.test"])
    listed = client.get(PAGE)
    assert listed.context["schedules"] == [mine] and "Weekly" in listed.content.decode()
    # Another organization's report is absent: 404, and it stays.
    assert client.post(PAGE, {"action": "delete", "schedule": str(theirs.pk)}).status_code == 404
    assert client.post(PAGE, {"action": "delete", "schedule": "not-an-id"}).status_code == 404
    assert ScheduledReport.objects.filter(pk=theirs.pk).exists()
    assert client.post(PAGE, {"action": "delete", "schedule": str(mine.pk)}).status_code == 302
    assert not ScheduledReport.objects.for_org(acme).exists()


def test_the_page_refuses_bad_input_by_field_and_plain_members(acme, alice, bob, client_for):
    client = client_for(alice)
    outsider = client.post(PAGE, {"report": "sla", "frequency": "daily", "recipients": ["carol@globex.test"]})
    assert outsider.status_code == 400 and list(outsider.context["form"].errors) == ["recipients"]
    nothing = client.post(PAGE, {"report": "profit", "frequency": "hourly"})
    assert nothing.status_code == 400
    assert sorted(nothing.context["form"].errors) == ["frequency", "recipients", "report"]
    assert not ScheduledReport.objects.exists()
    member = client_for(bob)
    assert member.get(PAGE).status_code == 404
    assert (
        member.post(PAGE, {"report": "sla", "frequency": "daily", "recipients": ["bob@acme.test"]}).status_code == 404
    )
    assert "Scheduled reports" not in member.get("/settings/profile/").content.decode()


def test_a_full_list_is_a_409_on_the_page(acme, alice, client_for):
    for _ in range(MAX_SCHEDULES):
        report_schedule_create(organization=acme, actor=alice, report="sla", frequency="daily")
    response = client_for(alice).post(PAGE, {"report": "sla", "frequency": "daily", "recipients": ["alice@acme.test"]})
    assert response.status_code == 409 and "at most 20" in response.content.decode()


def test_staff_pause_and_resume_a_report_in_the_admin(acme, alice):
    schedule = report_schedule_create(
        organization=acme, actor=alice, report="sla", frequency="daily", now=local(2026, 3, 4, 9)
    )
    client = admin_client(UserFactory(email="ops@keel.test", is_staff=True, is_superuser=True))
    path = f"/admin/tenancy/scheduledreport/{schedule.pk}/change/"
    assert client.get("/admin/tenancy/scheduledreport/").status_code == 200
    assert client.post(path, {}).status_code == 302  # the checkbox left out: paused
    schedule.refresh_from_db()
    assert schedule.active is False
    with time_machine.travel(local(2026, 3, 20, 9, 0), tick=False):
        assert client.post(path, {"active": "on"}).status_code == 302
    schedule.refresh_from_db()
    assert (schedule.active, schedule.next_run_at) == (True, local(2026, 3, 21, 7, 0))
    assert (
        AuditEvent.objects.for_org(acme).filter(action="report_schedule.updated", actor_label="ops@keel.test").count()
        == 2
    )
