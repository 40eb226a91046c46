"""Payments received outside Keel (recorded in QuickBooks, a bank transfer): part of an invoice keeps it open, the rest
pays it (and calls off its automatic charge), the same reference is recorded once however often it arrives, bad input
names its field and writes nothing, and an invoice with nothing to pay refuses. Each is audit-logged and published."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from billing.models import BillingSettings, Invoice, InvoiceStatus, PaymentAttempt
from billing.services.external_payments import invoice_record_external_payment
from billing.services.invoices import invoice_create, invoice_finalize, invoice_void
from events.models import Event
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import AuditEvent, Organization, OrgStatus
from tenancy.services import organization_suspend
from tests.helpers import race

pytestmark = pytest.mark.django_db

D = Decimal
ISSUED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
RECEIVED = date(2026, 3, 9)


def issue(organization: Organization, amount: str = "1000.00", *, finalize: bool = True) -> Invoice:
    lines = [{"description": "Managed services", "quantity": "1", "unit_price": amount}]
    draft = invoice_create(organization=organization, issue_date=date(2026, 3, 2), tax_rate=D("0"), lines=lines)
    if not finalize:
        return draft
    invoice = invoice_finalize(invoice=draft, now=ISSUED)
    invoice.refresh_from_db()
    return invoice


def record(invoice: Invoice, amount: str = "1000.00", reference: str = "QBO payment 201", **extra: Any) -> Any:
    return invoice_record_external_payment(invoice=invoice, amount=amount, reference=reference,
                                           received_on=RECEIVED, **extra)  # fmt: skip


def test_part_of_an_invoice_keeps_it_open_and_is_published(acme, alice):
    invoice = issue(acme)
    attempt = record(invoice, "400.005", actor=alice)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (InvoiceStatus.OPEN, D("400.01"), D("599.99"))
    assert (attempt.number, attempt.status, attempt.trigger, attempt.amount) == (
        1,
        "SUCCEEDED",
        "external",
        D("400.01"),
    )
    assert attempt.completed_at.date() == RECEIVED
    [event] = Event.objects.filter(type="payment.succeeded")
    assert event.payload == {
        "id": str(attempt.pk), "invoice": str(invoice.pk), "number": "INV-00001", "attempt": 1, "trigger": "external",
        "amount": "400.01", "currency": "AUD", "source": "quickbooks", "reference": "QBO payment 201",
        "received_on": "2026-03-09",
    }  # fmt: skip
    assert not Event.objects.filter(type="invoice.paid").exists()
    audit = AuditEvent.objects.get(action="invoice.payment_recorded")
    assert (audit.actor, audit.organization, audit.changes["amount"]) == (alice, acme, "400.01")


def test_the_rest_pays_the_invoice_and_calls_off_its_automatic_charge(acme):
    BillingSettings.objects.create(organization=acme, payment_method_id="pm_card_visa", autopay=True)
    invoice = issue(acme)
    assert invoice.next_payment_at is not None
    record(invoice, "400.00", reference="QBO payment 201")
    record(invoice, "600.00", reference="QBO payment 202")
    paid_invoice = Invoice.objects.get(pk=invoice.pk)
    assert (paid_invoice.status, paid_invoice.amount_paid) == (InvoiceStatus.PAID, D("1000.00"))
    assert paid_invoice.next_payment_at is None
    assert paid_invoice.paid_at is not None and paid_invoice.payment_attempts == 2
    [paid] = Event.objects.filter(type="invoice.paid")
    assert (paid.payload["status"], paid.payload["amount"]) == ("PAID", "600.00")


def test_the_same_payment_is_recorded_once(acme):
    invoice = issue(acme)
    first = record(invoice, "250.00")
    again = record(invoice, "250.00")
    assert again.pk == first.pk
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("250.00") and PaymentAttempt.objects.for_org(acme).count() == 1
    assert Event.objects.filter(type="payment.succeeded").count() == 1
    # The same reference from another source, or for another invoice, is another payment.
    record(invoice, "250.00", source="bank")
    other = issue(acme)
    record(other, "250.00")
    assert PaymentAttempt.objects.for_org(acme).count() == 3


@pytest.mark.parametrize(
    ("amount", "reference", "source", "field"),
    [
        ("0", "ref", "quickbooks", "amount"),
        ("-5.00", "ref", "quickbooks", "amount"),
        ("ten", "ref", "quickbooks", "amount"),
        ("NaN", "ref", "quickbooks", "amount"),
        ("5.00", " ", "quickbooks", "reference"),
        ("5.00", "r" * 61, "quickbooks", "reference"),
        ("5.00", "ref", "Quick Books", "source"),
    ],
)
def test_bad_input_names_its_field_and_writes_nothing(acme, amount, reference, source, field):
    invoice = issue(acme)
    with pytest.raises(ServiceValidationError) as bad:
        record(invoice, amount, reference=reference, source=source)
    assert list(bad.value.message_dict) == [field]
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0 and not PaymentAttempt.objects.exists()


def test_an_invoice_with_nothing_to_pay_refuses(acme):
    paid = issue(acme)
    record(paid, "1000.00", reference="first")
    draft = issue(acme, finalize=False)
    void = invoice_void(invoice=issue(acme), reason="Issued in error")
    for invoice in (paid, draft, void):
        with pytest.raises(ConflictError):
            record(invoice, "10.00", reference="second")
    assert PaymentAttempt.objects.count() == 1


def test_paying_what_got_an_organization_suspended_reinstates_it(acme):
    invoice = issue(acme)
    Invoice.objects.filter(pk=invoice.pk).update(payment_attempts=1)  # its automatic charge failed
    organization_suspend(organization=acme, reason="Unpaid invoice INV-00001")
    record(invoice)
    acme.refresh_from_db()
    assert acme.status == OrgStatus.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_the_same_payment_arriving_twice_at_once_is_recorded_once(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    invoice = issue(acme)
    outcomes = race(lambda: record(invoice, "300.00"))
    assert len({attempt.pk for attempt in outcomes}) == 1
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("300.00")
