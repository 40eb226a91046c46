"""Recurring invoicing: contract periods become invoices, to the cent, once each, with gapless numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection

from billing.models import (
    BillingSettings,
    Contract,
    ContractAdjustment,
    ContractStatus,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    UsageRecord,
)
from billing.services import invoicing
from billing.services.contracts import ContractTerms, contract_create, contract_line_change, usage_record
from billing.services.invoicing import invoices_generate
from events.models import Event
from tenancy.errors import ConflictError, ServiceValidationError
from tests.factories import OrganizationFactory, UserFactory
from tests.helpers import race
from tickets.models import TimeEntry
from tickets.services import ticket_create

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
D = Decimal


def flat(amount: str, description: str = "Managed services") -> dict[str, object]:
    return {"description": description, "pricing_model": "FLAT", "amount": amount}


def contract(organization, *lines, **terms) -> Contract:
    defaults = {"name": "Managed IT", "start_date": date(2026, 3, 1), "anchor_day": 1}
    return contract_create(
        organization=organization, terms=ContractTerms(**{**defaults, **terms}), lines=list(lines), activate=True
    )


def amounts(invoice: Invoice) -> list[tuple[str, str, Decimal]]:
    return [(line.kind, line.description, line.amount) for line in invoice.lines.all()]


def test_a_contract_starting_mid_month_is_prorated_then_billed_in_full(acme):
    made = contract(acme, flat("310.00"), start_date=date(2026, 3, 15))
    report = invoices_generate(through=date(2026, 4, 1))
    assert report.created == 2
    march, april = Invoice.objects.filter(contract=made).order_by("period_start")
    # 17 of March's 31 days: 310.00 x 17 / 31 = 170.00; GST 10 %.
    assert amounts(march) == [("proration", "Managed services (15 Mar 2026 - 31 Mar 2026, 17 of 31 days)", D("170.00"))]
    assert (march.subtotal, march.tax, march.total) == (D("170.00"), D("17.00"), D("187.00"))
    assert (march.number, march.status, march.issue_date, march.due_date) == (
        1,
        InvoiceStatus.OPEN,
        date(2026, 3, 15),
        date(2026, 3, 29),
    )
    assert (april.number, april.period_start, april.period_end, april.total) == (
        2,
        date(2026, 4, 1),
        date(2026, 5, 1),
        D("341.00"),
    )
    assert amounts(april) == [("recurring", "Managed services", D("310.00"))]
    made.refresh_from_db()
    assert (made.next_period_start, made.next_invoice_on) == (date(2026, 5, 1), date(2026, 5, 1))
    assert set(Event.objects.values_list("type", flat=True)) == {"invoice.created", "invoice.finalized"}


def test_a_second_run_creates_nothing(acme):
    contract(acme, flat("100.00"))
    assert invoices_generate(through=date(2026, 5, 20)).created == 3
    assert invoices_generate(through=date(2026, 5, 20)).created == 0
    assert list(Invoice.objects.order_by("number").values_list("number", flat=True)) == [1, 2, 3]


def test_a_dry_run_reports_and_writes_nothing(acme):
    contract(acme, flat("100.00"))
    out = StringIO()
    call_command("generate_recurring_invoices", "--date", "2026-04-15", "--dry-run", stdout=out)
    assert "Would create INV-00001" in out.getvalue() and "Would create INV-00002" in out.getvalue()
    assert "2 invoice(s) would be created for 1 contract(s)." in out.getvalue()
    assert not Invoice.objects.exists() and not Event.objects.exists()
    assert Contract.objects.get().next_invoice_on == date(2026, 3, 1)


def test_the_command_rejects_a_bad_date(acme):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--date must be YYYY-MM-DD"):
        call_command("generate_recurring_invoices", "--date", "15/04/2026")


def test_arrears_usage_is_priced_by_tiers_and_billed_once(acme):
    usage = {
        "description": "API calls",
        "pricing_model": "USAGE",
        "metric": "api_calls",
        "included_quantity": "1000",
        "tiers": [{"up_to": "10000", "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.005"}],
    }
    made = contract(acme, flat("50.00", "Platform"), usage, timing="ARREARS")
    at = datetime(2026, 3, 10, tzinfo=SYDNEY)
    usage_record(contract=made, metric="api_calls", quantity="9000", idempotency_key="a", recorded_at=at)
    usage_record(contract=made, metric="api_calls", quantity="4000", idempotency_key="b", recorded_at=at)
    late = datetime(2026, 4, 1, 0, 0, tzinfo=SYDNEY)  # the first instant of April: next period's
    usage_record(contract=made, metric="api_calls", quantity="500", idempotency_key="c", recorded_at=late)
    assert invoices_generate(through=date(2026, 3, 31)).created == 0  # arrears: March is invoiced on 1 April
    invoices_generate(through=date(2026, 4, 1))
    march = Invoice.objects.get(contract=made)
    # 13,000 calls, 1,000 included: of the 12,000 billed, 10,000 at 0.01 and 2,000 at 0.005 = 100.00 + 10.00.
    usage_lines = [line for line in march.lines.all() if line.kind == "usage"]
    assert sum(line.amount for line in usage_lines) == D("110.00")
    assert march.subtotal == D("160.00") and march.issue_date == date(2026, 4, 1)
    assert UsageRecord.objects.filter(invoice=march).count() == 2
    invoices_generate(through=date(2026, 5, 1))
    april = Invoice.objects.get(contract=made, period_start=date(2026, 4, 1))
    assert UsageRecord.objects.get(idempotency_key="c").invoice == april
    assert sum(line.amount for line in april.lines.all() if line.kind == "usage") == D("0.00")  # 500 < included


def test_blocks_of_hours_bill_ticket_time_beyond_the_block_once(acme):
    block = {
        "description": "Support block",
        "pricing_model": "HOURS_BLOCK",
        "amount": "1000.00",
        "included_quantity": "10",
        "overage_rate": "150.00",
    }
    made = contract(acme, block, timing="ARREARS")
    tech = UserFactory(email="tech@keel.test", is_staff=True)
    ticket = ticket_create(organization=acme, subject="Server", now=datetime(2026, 3, 2, tzinfo=SYDNEY))
    for worked_on, minutes, billable in (
        (date(2026, 3, 3), 480, True),
        (date(2026, 3, 9), 330, True),
        (date(2026, 3, 10), 600, False),
        (date(2026, 4, 2), 60, True),
    ):
        TimeEntry.objects.create(
            organization=acme, ticket=ticket, technician=tech, minutes=minutes, billable=billable, worked_on=worked_on
        )
    invoices_generate(through=date(2026, 4, 1))
    march = Invoice.objects.get(contract=made)
    # 13.5 billable hours, 10 included: 3.5 h x 150.00 = 525.00 overage.
    assert [(line.kind, line.amount) for line in march.lines.all()] == [
        ("recurring", D("1000.00")),
        ("overage", D("525.00")),
    ]
    invoices_generate(through=date(2026, 5, 1))
    april = Invoice.objects.get(contract=made, period_start=date(2026, 4, 1))
    assert [(line.kind, line.amount) for line in april.lines.all()] == [("recurring", D("1000.00"))]  # 1 h: in block


def test_a_contract_ending_mid_period_is_prorated_and_ends(acme):
    made = contract(acme, flat("300.00"), start_date=date(2026, 4, 1), end_date=date(2026, 6, 16))
    invoices_generate(through=date(2026, 7, 1))
    invoices = list(Invoice.objects.filter(contract=made).order_by("period_start"))
    assert [(i.period_start, i.period_end, i.subtotal) for i in invoices] == [
        (date(2026, 4, 1), date(2026, 5, 1), D("300.00")),
        (date(2026, 5, 1), date(2026, 6, 1), D("300.00")),
        (date(2026, 6, 1), date(2026, 6, 16), D("150.00")),  # 15 of June's 30 days
    ]
    made.refresh_from_db()
    assert made.status == ContractStatus.ENDED and made.next_invoice_on is None


def test_quarterly_and_weekly_cycles_and_month_end_anchors(acme):
    quarterly = contract(
        acme, flat("900.00"), name="Quarterly", cycle="QUARTERLY", start_date=date(2026, 1, 31), anchor_day=31
    )
    weekly = contract(acme, flat("70.00"), name="Weekly", cycle="WEEKLY", start_date=date(2026, 3, 4), anchor_day=1)
    invoices_generate(through=date(2026, 8, 1))
    assert list(
        Invoice.objects.filter(contract=quarterly).order_by("period_start").values_list("period_start", "period_end")
    ) == [
        (date(2026, 1, 31), date(2026, 4, 30)),
        (date(2026, 4, 30), date(2026, 7, 31)),
        (date(2026, 7, 31), date(2026, 10, 31)),
    ]
    first_week = Invoice.objects.filter(contract=weekly).order_by("period_start").first()
    assert first_week is not None
    # Wednesday to the next Monday: 5 of 7 days of 70.00.
    assert (first_week.period_end, first_week.subtotal) == (date(2026, 3, 9), D("50.00"))


def test_organizations_that_review_drafts_get_unnumbered_drafts(acme, globex):
    BillingSettings.objects.create(organization=acme, review_drafts=True)
    contract(acme, flat("100.00"))
    contract(globex, flat("100.00"))
    invoices_generate(through=date(2026, 3, 1))
    draft = Invoice.objects.get(organization=acme)
    assert (draft.status, draft.number, draft.finalized_at) == (InvoiceStatus.DRAFT, None, None)
    assert draft.reference.startswith("Draft ")
    sent = Invoice.objects.get(organization=globex)
    assert (sent.status, sent.number, sent.currency) == (InvoiceStatus.OPEN, 1, "USD")
    assert set(Event.objects.filter(organization=acme).values_list("type", flat=True)) == {"invoice.created"}


def test_each_organization_numbers_its_own_invoices_without_gaps(acme, globex):
    for n in range(3):
        contract(acme, flat("10.00"), name=f"Acme {n}")
    contract(globex, flat("10.00"), name="Globex")
    invoices_generate(through=date(2026, 4, 1))
    assert sorted(n or 0 for n in Invoice.objects.filter(organization=acme).values_list("number", flat=True)) == list(
        range(1, 7)
    )
    assert sorted(n or 0 for n in Invoice.objects.filter(organization=globex).values_list("number", flat=True)) == [
        1,
        2,
    ]


def test_batches_resume_where_the_last_one_ended(acme, monkeypatch):
    monkeypatch.setattr(invoicing, "BATCH", 2)
    for n in range(5):
        contract(acme, flat("10.00"), name=f"Contract {n}")
    dry = invoices_generate(through=date(2026, 3, 1), dry_run=True)
    assert (dry.contracts, dry.created, Invoice.objects.count()) == (5, 5, 0)
    assert invoices_generate(through=date(2026, 3, 1)).created == 5
    assert sorted(n or 0 for n in Invoice.objects.values_list("number", flat=True)) == [1, 2, 3, 4, 5]


def test_without_a_date_each_contract_waits_for_its_own_today(acme, globex):
    contract(acme, flat("10.00"), start_date=date(2026, 3, 2), anchor_day=2)  # Sydney
    contract(globex, flat("10.00"), start_date=date(2026, 3, 2), anchor_day=2)  # New York
    # 1 March 20:00 UTC: already 2 March in Sydney, still 1 March in New York.
    invoices_generate(now=datetime(2026, 3, 1, 20, tzinfo=UTC))
    assert list(Invoice.objects.values_list("organization__slug", flat=True)) == ["acme"]


@pytest.mark.django_db(transaction=True)
def test_runs_at_once_invoice_each_period_once_with_gapless_numbers(acme, globex):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    for n in range(12):
        contract(acme if n % 3 else globex, flat("10.00"), name=f"Contract {n}")
    invoicing_batch = invoicing.BATCH
    try:
        invoicing.BATCH = 3
        reports = race(lambda: invoices_generate(through=date(2026, 5, 1)), 3)
    finally:
        invoicing.BATCH = invoicing_batch
    assert not [report for report in reports if isinstance(report, Exception)]
    assert sum(report.created for report in reports) == Invoice.objects.count() == 12 * 3
    for organization, contracts in ((acme, 8), (globex, 4)):
        numbers = sorted(
            n or 0 for n in Invoice.objects.filter(organization=organization).values_list("number", flat=True)
        )
        assert numbers == list(range(1, contracts * 3 + 1))


@pytest.mark.django_db(transaction=True)
def test_workers_share_the_organizations_and_invoice_each_period_once(acme, globex, initech):
    if connection.vendor != "postgresql":
        pytest.skip("workers need PostgreSQL")
    organizations = [acme, globex, initech, *(OrganizationFactory() for _ in range(5))]
    made = [contract(organizations[n % 8], flat("10.00"), name=f"Contract {n}") for n in range(24)]
    invoicing_batch = invoicing.BATCH
    try:
        invoicing.BATCH = 2
        report = invoices_generate(through=date(2026, 4, 1), workers=3)
    finally:
        invoicing.BATCH = invoicing_batch
    assert report.created == Invoice.objects.count() == 24 * 2
    assert report.contracts == 24 and len(report.lines) == 48
    assert sorted(Invoice.objects.values_list("contract", "period_start")) == sorted(
        (item.pk, start) for item in made for start in (date(2026, 3, 1), date(2026, 4, 1))
    )
    for organization in organizations:
        numbers = sorted(
            n or 0 for n in Invoice.objects.filter(organization=organization).values_list("number", flat=True)
        )
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) == 6
    assert Contract.objects.filter(next_period_start=date(2026, 5, 1)).count() == 24
    assert invoices_generate(through=date(2026, 4, 1), workers=3).created == 0


def test_lines_alike_but_for_their_tiers_are_priced_each_by_its_own(acme):
    def tiered(*tiers: tuple[str | None, str]) -> dict[str, object]:
        steps = [{"up_to": up_to, "unit_price": price, "flat_fee": "0"} for up_to, price in tiers]
        return {"description": "Devices", "pricing_model": "TIERED_VOLUME", "quantity": "12", "tiers": steps}

    cheap = contract(acme, tiered(("10", "5.00"), (None, "4.00")), name="Cheap")
    dear = contract(acme, tiered(("10", "5.00"), (None, "6.00")), name="Dear")
    same = contract(acme, tiered(("10", "5.00"), (None, "4.00")), name="Same")
    invoices_generate(through=date(2026, 3, 1))
    subtotals = {made.name: Invoice.objects.get(contract=made).subtotal for made in (cheap, dear, same)}
    assert subtotals == {"Cheap": D("48.00"), "Dear": D("72.00"), "Same": D("48.00")}


def test_issued_invoices_are_emailed_by_jobs_of_a_bounded_size(acme, monkeypatch, django_capture_on_commit_callbacks):
    from billing import tasks

    sent: list[list[tuple[str, str, bool]]] = []
    monkeypatch.setattr(tasks.send_invoices, "delay", sent.append)
    monkeypatch.setattr(invoicing, "SEND_JOB", 2)
    for n in range(5):
        contract(acme, flat("10.00"), name=f"Contract {n}")
    with django_capture_on_commit_callbacks(execute=True):
        invoices_generate(through=date(2026, 3, 1))
    assert [len(job) for job in sent] == [2, 2, 1]
    assert {invoice_id for job in sent for invoice_id, _, _ in job} == {
        str(pk) for pk in Invoice.objects.values_list("pk", flat=True)
    }


def test_a_mid_period_increase_is_charged_on_the_next_invoice(acme):
    seats = {"description": "Seats", "pricing_model": "PER_UNIT", "unit_price": "20.00", "quantity": "10"}
    made = contract(acme, seats)
    invoices_generate(through=date(2026, 4, 1))  # March and April invoiced in advance: 200.00 each
    line = made.lines.get()
    # From 16 April, 15 seats: 5 more seats x 20.00 for 15 of April's 30 days = 50.00.
    adjustment = contract_line_change(line=line, effective_on=date(2026, 4, 16), quantity="15")
    assert adjustment is not None and adjustment.amount == D("50.00")
    invoices_generate(through=date(2026, 5, 1))
    may = Invoice.objects.get(contract=made, period_start=date(2026, 5, 1))
    assert [(line.kind, line.amount) for line in may.lines.all()] == [
        ("recurring", D("300.00")),
        ("proration", D("50.00")),
    ]
    assert ContractAdjustment.objects.get().invoice == may


def test_a_change_and_its_reversal_cancel_out(acme):
    seats = {"description": "Seats", "pricing_model": "PER_UNIT", "unit_price": "19.99", "quantity": "7"}
    made = contract(acme, seats)
    invoices_generate(through=date(2026, 3, 1))
    line = made.lines.get()
    contract_line_change(line=line, effective_on=date(2026, 3, 11), quantity="12")
    line.refresh_from_db()
    contract_line_change(line=line, effective_on=date(2026, 3, 11), quantity="7")
    assert sum(ContractAdjustment.objects.values_list("amount", flat=True)) == D("0")


def test_organizations_may_invoice_changes_at_once(acme):
    BillingSettings.objects.create(organization=acme, immediate_proration=True)
    seats = {"description": "Seats", "pricing_model": "PER_UNIT", "unit_price": "20.00", "quantity": "10"}
    made = contract(acme, seats)
    invoices_generate(through=date(2026, 3, 1))
    contract_line_change(line=made.lines.get(), effective_on=date(2026, 3, 17), quantity="8")
    credit = Invoice.objects.get(contract=made, period_start__isnull=True)
    # Two seats fewer for 15 of March's 31 days: -40.00 x 15 / 31 = -19.35.
    assert (credit.number, credit.subtotal, credit.tax, credit.total) == (2, D("-19.35"), D("-1.94"), D("-21.29"))


def test_a_change_before_the_next_period_waits_for_its_invoice(acme):
    seats = {"description": "Seats", "pricing_model": "PER_UNIT", "unit_price": "20.00", "quantity": "10"}
    made = contract(acme, seats)
    assert contract_line_change(line=made.lines.get(), effective_on=date(2026, 3, 5), quantity="12") is None
    invoices_generate(through=date(2026, 3, 1))
    assert Invoice.objects.get().subtotal == D("240.00")


def test_usage_is_recorded_once_per_idempotency_key(acme):
    made = contract(acme, {"description": "SMS", "pricing_model": "USAGE", "metric": "sms", "unit_price": "0.05"})
    first, created = usage_record(contract=made, metric="sms", quantity="10", idempotency_key="k1")
    again, created_again = usage_record(contract=made, metric="sms", quantity="10", idempotency_key="k1")
    assert created and not created_again and first.pk == again.pk
    with pytest.raises(ConflictError):
        usage_record(contract=made, metric="sms", quantity="11", idempotency_key="k1")
    with pytest.raises(ServiceValidationError) as bad:
        usage_record(contract=made, metric="", quantity="-1", idempotency_key="")
    assert set(bad.value.message_dict) == {"metric", "quantity", "idempotency_key"}


def test_a_bad_line_names_its_field_and_writes_nothing(acme):
    tiers = [{"up_to": "10", "unit_price": "5"}, {"up_to": "5", "unit_price": "4"}]
    with pytest.raises(ServiceValidationError) as bad:
        contract(
            acme,
            flat("10.00"),
            {"description": "Devices", "pricing_model": "TIERED_VOLUME", "tiers": tiers, "quantity": "3"},
        )
    assert "lines[1].tiers" in bad.value.message_dict
    with pytest.raises(ServiceValidationError) as bad:
        contract(acme, flat("abc"), end_date=date(2026, 1, 1))
    assert {"lines[0].amount", "end_date"} <= set(bad.value.message_dict)
    assert not Contract.objects.exists() and not InvoiceLine.objects.exists()


def test_another_organization_is_never_invoiced_for_a_contract(acme, globex):
    contract(globex, flat("10.00"))
    assert invoices_generate(through=date(2026, 3, 1), organization=acme).created == 0
    assert not Invoice.objects.exists()
    assert invoices_generate(through=date(2026, 3, 1) + timedelta(days=0)).created == 1


def test_an_auto_renewing_contract_renews_for_its_term_and_keeps_invoicing(acme):
    made = contract(
        acme,
        flat("100.00"),
        start_date=date(2026, 1, 31),
        anchor_day=31,
        end_date=date(2026, 4, 30),
        auto_renew=True,
        renewal_term_months=1,
    )
    invoices_generate(through=date(2026, 6, 30))
    made.refresh_from_db()
    # Ends 30 April; renews to 31 May (the anchor day, not the 30th), then to 30 June, then 31 July.
    assert (made.status, made.end_date, made.next_period_start) == (
        ContractStatus.ACTIVE,
        date(2026, 7, 31),
        date(2026, 7, 31),
    )
    periods = list(Invoice.objects.filter(contract=made).order_by("period_start").values_list("period_start", "total"))
    assert [start for start, _ in periods] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
    ]
    assert {total for _, total in periods} == {D("110.00")}
    from tenancy.models import AuditEvent

    assert AuditEvent.objects.filter(action="contract.renewed").count() == 3


def test_a_contract_that_does_not_renew_ends_at_its_end(acme):
    made = contract(acme, flat("100.00"), end_date=date(2026, 5, 1))
    invoices_generate(through=date(2026, 8, 1))
    made.refresh_from_db()
    assert made.status == ContractStatus.ENDED and Invoice.objects.filter(contract=made).count() == 2


def test_renewal_notices_go_out_thirty_days_before_the_end_once(
    acme, alice, mailoutbox, django_capture_on_commit_callbacks
):
    from billing.services.contracts import contracts_renewal_notices

    contract(
        acme, flat("100.00"), name="Managed IT", end_date=date(2027, 3, 1), auto_renew=True, renewal_term_months=12
    )
    contract(acme, flat("100.00"), name="One-off", end_date=date(2027, 3, 1))
    assert contracts_renewal_notices(today=date(2027, 1, 29)) == 0  # 31 days before
    with django_capture_on_commit_callbacks(execute=True):
        assert contracts_renewal_notices(today=date(2027, 1, 30)) == 1
        assert contracts_renewal_notices(today=date(2027, 2, 10)) == 0
    (mail,) = mailoutbox
    assert mail.to == ["alice@acme.test"] and "Managed IT renews on 1 March 2027" in mail.subject
    assert "until 1 March 2028" in mail.body


def test_turning_renewal_off_before_the_next_term_ends_the_contract(acme):
    made = contract(acme, flat("100.00"), end_date=date(2026, 5, 1), auto_renew=True, renewal_term_months=1)
    invoices_generate(through=date(2026, 4, 1))
    Contract.objects.filter(pk=made.pk).update(auto_renew=False)
    invoices_generate(through=date(2026, 6, 1))
    made.refresh_from_db()
    assert (made.status, made.end_date) == (ContractStatus.ENDED, date(2026, 5, 1))
    assert Invoice.objects.filter(contract=made).count() == 2


def test_changing_a_draft_contract_line_needs_no_adjustment(acme):
    seats = {"description": "Seats", "pricing_model": "PER_UNIT", "unit_price": "20.00", "quantity": "10"}
    draft = contract_create(
        organization=acme,
        terms=ContractTerms(name="Draft", start_date=date(2026, 3, 1), end_date=date(2027, 3, 1)),
        lines=[seats],
    )
    assert contract_line_change(line=draft.lines.get(), effective_on=date(2026, 3, 10), quantity="12") is None
    assert not ContractAdjustment.objects.exists()


def test_terms_and_lines_too_large_to_invoice_are_refused(acme):
    huge = {"description": "Seats", "pricing_model": "PER_UNIT", "unit_price": "999999999", "quantity": "999"}
    with pytest.raises(ServiceValidationError) as bad:
        contract(acme, huge, auto_renew=True, end_date=date(2027, 3, 1), renewal_term_months=0)
    assert {"lines[0].quantity", "renewal_term_months"} <= set(bad.value.message_dict)
    with pytest.raises(ServiceValidationError) as bad:
        contract(acme, {**huge, "unit_price": "1e9"})
    assert bad.value.message_dict["lines[0].unit_price"] == ["Must be a finite number below a billion."]


def test_generated_invoices_are_emailed_after_commit_drafts_are_not(
    acme, globex, alice, mailoutbox, django_capture_on_commit_callbacks
):
    BillingSettings.objects.create(organization=globex, review_drafts=True)
    contract(acme, flat("100.00"))
    contract(globex, flat("100.00"))
    with django_capture_on_commit_callbacks(execute=True):
        invoices_generate(through=date(2026, 3, 1), dry_run=True)
    assert mailoutbox == []  # a dry run sends nothing
    with django_capture_on_commit_callbacks(execute=True):
        invoices_generate(through=date(2026, 3, 1))
    (mail,) = mailoutbox  # Acme's open invoice; Globex's draft waits for review
    assert mail.to == ["alice@acme.test"] and "INV-00001" in mail.subject
    assert mail.attachments[0][2] == "application/pdf"
