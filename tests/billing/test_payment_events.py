"""The payment and overdue events partners subscribe to: ``payment.succeeded`` and ``payment.failed`` for each
attempt, ``payment.refunded`` from Stripe's ``charge.refunded`` (its running total, so a replay changes nothing), and
``invoice.overdue`` once per invoice on the first local day after its due date."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing.models import BillingSettings, InvoiceStatus
from events.models import Event
from tenancy.models import AuditEvent
from tests.billing import test_collection as collection
from tests.billing.test_collection import ISSUED, deliver, issue, local, run, use_card

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks):
    collection._capture = django_capture_on_commit_callbacks


@pytest.fixture
def card(acme):
    acme.stripe_customer_id = "cus_acme"
    acme.save(update_fields=["stripe_customer_id"])
    return BillingSettings.objects.create(organization=acme, payment_method_id="pm_card_visa", autopay=True)


def events(type_: str) -> list[dict]:
    return [event.payload for event in Event.objects.filter(type=type_).order_by("created_at")]


def refund_event(intent: str, refunded_cents: int, number: int) -> dict:
    return {
        "id": f"evt_refund_{number}",
        "object": "event",
        "type": "charge.refunded",
        "created": int((ISSUED + timedelta(days=number)).timestamp()),
        "data": {
            "object": {
                "id": "ch_1",
                "object": "charge",
                "payment_intent": intent,
                "amount": 100000,
                "amount_refunded": refunded_cents,
            }
        },
    }


def test_a_successful_charge_publishes_payment_succeeded_and_invoice_paid(acme, alice, card):
    invoice = issue(acme, "1000.00")
    run(ISSUED)
    (attempt,) = invoice.attempts.all()
    assert events("payment.succeeded") == [
        {
            "id": str(attempt.pk),
            "invoice": str(invoice.pk),
            "number": "INV-00001",
            "attempt": 1,
            "trigger": "automatic",
            "amount": "1000.00",
            "currency": "AUD",
        }
    ]
    assert [paid["amount"] for paid in events("invoice.paid")] == ["1000.00"]


def test_a_declined_charge_publishes_payment_failed_with_the_reason(acme, alice, card):
    use_card(acme, "pm_card_chargeDeclinedInsufficientFunds")
    issue(acme, "250.00")
    run(ISSUED)
    (failed,) = events("payment.failed")
    assert (failed["amount"], failed["reason"], failed["attempt"]) == ("250.00", "insufficient_funds", 1)
    assert events("payment.succeeded") == []


def test_refunds_publish_what_was_newly_refunded_and_replays_change_nothing(acme, alice, card):
    invoice = issue(acme, "1000.00")
    run(ISSUED)
    (attempt,) = invoice.attempts.all()
    assert deliver(refund_event(attempt.payment_intent_id, 10000, 1)) == "DONE"
    assert deliver(refund_event(attempt.payment_intent_id, 10000, 1)) == "DONE"  # the same event again
    assert deliver(refund_event(attempt.payment_intent_id, 10000, 2)) == "DONE"  # a new event, same total
    assert deliver(refund_event(attempt.payment_intent_id, 35050, 3)) == "DONE"
    attempt.refresh_from_db()
    assert attempt.amount_refunded == D("350.50")
    assert [(e["amount"], e["total_refunded"]) for e in events("payment.refunded")] == [
        ("100.00", "100.00"),
        ("250.50", "350.50"),
    ]
    assert AuditEvent.objects.filter(action="payment.refunded", target_id=str(invoice.pk)).count() == 2
    deliver(refund_event(attempt.payment_intent_id, 20000, 4))  # an older total, delivered late
    attempt.refresh_from_db()
    assert attempt.amount_refunded == D("350.50") and len(events("payment.refunded")) == 2


def test_a_refund_of_a_payment_keel_does_not_know_is_ignored(acme):
    assert deliver(refund_event("pi_elsewhere", 5000, 1)) == "DONE"
    assert events("payment.refunded") == []


def test_an_invoice_is_announced_overdue_once_after_its_local_due_date(acme, alice):
    invoice = issue(acme, "400.00", due_in=14)  # due 16 March, Sydney
    run(local(date(2026, 3, 16), 23))
    assert events("invoice.overdue") == []
    run(local(date(2026, 3, 17), 0))
    run(local(date(2026, 3, 17), 9))
    run(local(date(2026, 3, 20), 9))
    (overdue,) = events("invoice.overdue")
    assert (overdue["id"], overdue["days_overdue"], overdue["amount_due"]) == (str(invoice.pk), 1, "400.00")
    invoice.refresh_from_db()
    assert invoice.overdue_at == local(date(2026, 3, 17), 0)


def test_a_paid_invoice_is_never_overdue(acme, alice, card):
    invoice = issue(acme, "400.00", due_in=14)
    run(ISSUED)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    run(local(date(2026, 3, 20), 9))
    assert events("invoice.overdue") == []
