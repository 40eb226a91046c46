"""Collecting invoices: the automatic charge when an invoice is issued, the retry schedule, hard declines, the
customer's emails, uncollectible invoices, the payment-intent webhooks, paying on the portal's checkout, overdue
reminders, late fees and suspension. The sandbox provider answers as Stripe's test payment methods do."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses
import time_machine
from django.db import connection

from billing import providers
from billing.models import BillingSettings, Invoice, InvoiceStatus, PaymentAttempt
from billing.providers import sandbox
from billing.providers.base import ChargeResult, ChargeStatus
from billing.services import stripe_event_process, stripe_event_receive
from billing.services.collection import attempt_apply, invoice_charge, invoice_checkout_start
from billing.services.dunning import process_failed_payments
from billing.services.invoices import credit_note_create, invoice_create, invoice_finalize
from tenancy.errors import ConflictError
from tenancy.models import AuditEvent, Organization, OrgStatus
from tests.helpers import race

pytestmark = pytest.mark.django_db

D = Decimal
ISSUED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 12:00 in Sydney
STRIPE_INTENTS = "https://api.stripe.com/v1/payment_intents"


@pytest.fixture
def card(acme: Organization) -> BillingSettings:
    Organization.objects.filter(pk=acme.pk).update(stripe_customer_id="cus_acme")
    acme.refresh_from_db()
    return BillingSettings.objects.create(organization=acme, payment_method_id="pm_card_visa", autopay=True)


def use_card(organization: Organization, method: str) -> None:
    BillingSettings.objects.filter(organization=organization).update(payment_method_id=method)


def issue(organization: Organization, amount: str = "1000.00", *, due_in: int = 14, capture=None) -> Invoice:
    draft = invoice_create(
        organization=organization,
        lines=[{"description": "Managed services", "quantity": "1", "unit_price": amount}],
        issue_date=date(2026, 3, 2),
        payment_terms_days=due_in,
        tax_rate=D("0"),
    )
    if capture is None:
        invoice = invoice_finalize(invoice=draft, now=ISSUED)
    else:
        with capture(execute=True):
            invoice = invoice_finalize(invoice=draft, now=ISSUED)
    invoice.refresh_from_db()
    return invoice


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks):
    """Emails go out after commit: the collection runs below execute their commit callbacks."""
    global _capture
    _capture = django_capture_on_commit_callbacks


_capture: Any = None


def run(at: datetime):
    with time_machine.travel(at, tick=False), _capture(execute=True):
        return process_failed_payments(now=at)


def test_an_invoice_issued_to_a_saved_card_is_charged_and_paid(
    acme, alice, card, mailoutbox, django_capture_on_commit_callbacks
):
    invoice = issue(acme, "1000.00", capture=django_capture_on_commit_callbacks)
    (attempt,) = invoice.attempts.all()
    assert (attempt.trigger, attempt.status, attempt.amount, attempt.number) == (
        "automatic",
        "SUCCEEDED",
        D("1000.00"),
        1,
    )
    assert attempt.idempotency_key == f"keel-invoice-{invoice.pk}-attempt-1"
    assert (invoice.status, invoice.amount_paid, invoice.next_payment_at) == (InvoiceStatus.PAID, D("1000.00"), None)
    charged = [detail for operation, detail in sandbox.SENT if operation == "payment_intent_create"]
    assert charged == [{"id": attempt.payment_intent_id, "amount": 100000, "key": attempt.idempotency_key}]
    (mail,) = mailoutbox  # charged before it was emailed: the email says it is paid
    assert mail.subject == "Invoice INV-00001 for Acme Pty Ltd" and "paid in full" in mail.body


def test_without_a_saved_card_nothing_is_charged(acme, alice, django_capture_on_commit_callbacks):
    invoice = issue(acme, capture=django_capture_on_commit_callbacks)
    assert (invoice.status, invoice.next_payment_at, invoice.attempts.count()) == ("OPEN", None, 0)


def test_a_soft_decline_is_retried_on_the_schedule_until_attempts_run_out(acme, alice, card, settings, mailoutbox):
    settings.BILLING_RETRY_SCHEDULE = "1h,6h,1d"
    settings.BILLING_MAX_PAYMENT_ATTEMPTS = 4
    use_card(acme, "pm_card_chargeDeclinedInsufficientFunds")
    invoice = issue(acme)
    assert invoice.next_payment_at == ISSUED
    at = ISSUED
    expected_waits = [timedelta(hours=1), timedelta(hours=6), timedelta(days=1)]
    for number, wait in enumerate(expected_waits, start=1):
        report = run(at)
        assert (report.charged, report.failed) == (1, 1)
        invoice.refresh_from_db()
        assert invoice.payment_attempts == number and invoice.next_payment_at == at + wait
        assert run(at + wait - timedelta(minutes=1)).charged == 0  # not before its time
        at += wait
    run(at)
    invoice.refresh_from_db()
    attempts = list(invoice.attempts.order_by("number"))
    assert [(a.number, a.trigger, a.status, a.decline_code) for a in attempts] == [
        (1, "automatic", "FAILED", "insufficient_funds"),
        (2, "retry", "FAILED", "insufficient_funds"),
        (3, "retry", "FAILED", "insufficient_funds"),
        (4, "retry", "FAILED", "insufficient_funds"),
    ]
    assert len({a.idempotency_key for a in attempts}) == 4
    assert Invoice.objects.filter(pk=invoice.pk, status="UNCOLLECTIBLE", next_payment_at__isnull=True).exists()
    failures = [mail for mail in mailoutbox if "failed" in mail.subject]
    assert len(failures) == 4 and failures[0].to == ["alice@acme.test"]
    assert "we will try again" in failures[0].subject and "insufficient funds" in failures[0].body
    assert failures[-1].subject.startswith("Action needed") and f"/billing/invoices/{invoice.pk}/" in failures[-1].body
    assert run(at + timedelta(days=30)).charged == 0
    assert AuditEvent.objects.filter(action="invoice.payment_failed", target_id=str(invoice.pk)).count() == 4


def test_a_hard_decline_is_never_retried(acme, alice, card, mailoutbox):
    use_card(acme, "pm_card_chargeDeclinedStolenCard")
    invoice = issue(acme)
    run(ISSUED)
    invoice.refresh_from_db()
    (attempt,) = invoice.attempts.all()
    assert (attempt.status, attempt.hard_decline, attempt.decline_code) == ("FAILED", True, "stolen_card")
    assert (invoice.status, invoice.next_payment_at) == (InvoiceStatus.OPEN, None)
    assert run(ISSUED + timedelta(days=10)).charged == 0
    (mail,) = [mail for mail in mailoutbox if "failed" in mail.subject]
    assert "will not try this card again" in mail.body and "stolen" not in mail.body.lower()


def test_staff_retry_charges_now_and_a_new_card_pays(acme, alice, card):
    use_card(acme, "pm_card_chargeDeclinedExpiredCard")
    invoice = issue(acme)
    run(ISSUED)
    use_card(acme, "pm_card_visa")
    attempt = invoice_charge(invoice_id=invoice.pk, organization_id=acme.pk, trigger="staff", actor=alice)
    assert attempt is not None
    invoice.refresh_from_db()
    assert (attempt.number, attempt.trigger, attempt.status, invoice.status) == (2, "staff", "SUCCEEDED", "PAID")
    with pytest.raises(ConflictError, match="nothing to collect"):
        invoice_charge(invoice_id=invoice.pk, organization_id=acme.pk, trigger="staff", actor=alice)


def test_an_outage_keeps_the_attempt_and_asks_again_with_the_same_key(acme, alice, card, monkeypatch):
    from billing.providers.base import ProviderError
    from billing.providers.sandbox import SandboxProvider

    invoice = issue(acme)

    def down(self, request):
        raise ProviderError("Stripe: unavailable (APIConnectionError)", retryable=True)

    monkeypatch.setattr(SandboxProvider, "payment_intent_create", down)
    run(ISSUED)
    invoice.refresh_from_db()
    (pending,) = invoice.attempts.all()
    assert pending.status == "PENDING" and invoice.next_payment_at == ISSUED + timedelta(minutes=15)
    monkeypatch.undo()
    run(ISSUED + timedelta(minutes=15))
    invoice.refresh_from_db()
    (paid,) = invoice.attempts.all()
    assert (paid.pk, paid.status, paid.idempotency_key, invoice.status) == (
        pending.pk,
        "SUCCEEDED",
        pending.idempotency_key,
        "PAID",
    )


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("1800", timedelta(minutes=30)), ("7200", timedelta(hours=1)), (None, timedelta(minutes=15))],
    ids=["advised", "capped-at-the-first-retry", "no-advice"],
)
def test_a_rate_limited_charge_is_asked_again_when_stripe_says(acme, alice, card, settings, monkeypatch, retry_after,
                                                               wait):  # fmt: skip
    settings.BILLING_RETRY_SCHEDULE = "1h,6h,1d"
    settings.STRIPE_PROVIDER, settings.STRIPE_SECRET_KEY, settings.STRIPE_API_VERSION = "stripe", "sk_test_123", ""
    monkeypatch.setattr(providers.get_provider, "instances", {})
    invoice = issue(acme)
    limited = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}}
    with responses.RequestsMock() as stripe_api:
        stripe_api.post(STRIPE_INTENTS, status=429, json=limited,
                        headers={"Retry-After": retry_after} if retry_after else {})  # fmt: skip
        paid_intent = {"id": "pi_3QzRate", "object": "payment_intent", "status": "succeeded", "amount": 100000,
                       "currency": "aud", "payment_method": "pm_card_visa"}  # fmt: skip
        stripe_api.post(STRIPE_INTENTS, json=paid_intent)
        run(ISSUED)
        invoice.refresh_from_db()
        (pending,) = invoice.attempts.all()
        assert (pending.status, pending.failure_code) == ("PENDING", "rate_limited")
        assert invoice.next_payment_at == ISSUED + wait
        assert run(ISSUED + wait - timedelta(minutes=1)).charged == 0
        assert len(stripe_api.calls) == 1
        run(ISSUED + wait)
        keys = [call.request.headers["Idempotency-Key"] for call in stripe_api.calls]
    invoice.refresh_from_db()
    (paid,) = invoice.attempts.all()
    assert (paid.pk, paid.status, invoice.status) == (pending.pk, "SUCCEEDED", "PAID")
    assert keys == [pending.idempotency_key] * 2  # the same charge asked again, never a second one


def test_a_rate_limit_ends_the_run_and_the_other_charges_wait_for_the_next(acme, initech, alice, settings,
                                                                            monkeypatch):  # fmt: skip
    """Stripe refusing one charge for its rate refuses the next ones too: the run stops asking. The refused invoice
    waits as Stripe said; the others keep their due time and no attempt, and the next run charges each once."""
    settings.STRIPE_PROVIDER, settings.STRIPE_SECRET_KEY, settings.STRIPE_API_VERSION = "stripe", "sk_test_123", ""
    monkeypatch.setattr(providers.get_provider, "instances", {})
    for org in (acme, initech):
        Organization.objects.filter(pk=org.pk).update(stripe_customer_id=f"cus_{org.slug}")
        BillingSettings.objects.create(organization=org, payment_method_id="pm_card_visa", autopay=True)
        org.refresh_from_db()
    first, second, third = issue(acme), issue(initech), issue(acme, "250.00")
    due = Invoice.objects.filter(next_payment_at__isnull=False).order_by("next_payment_at")
    order = list(due.values_list("pk", flat=True))
    limited = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}}
    with responses.RequestsMock() as stripe_api:
        stripe_api.post(STRIPE_INTENTS, status=429, json=limited, headers={"Retry-After": "120"})
        report = run(ISSUED)
        assert len(stripe_api.calls) == 1
    assert (report.charged, report.held_back) == (0, 2)
    refused = Invoice.objects.get(pk=order[0])
    assert refused.next_payment_at == ISSUED + timedelta(minutes=15)  # at least PROVIDER_RETRY
    (pending,) = refused.attempts.all()
    assert (pending.status, pending.failure_code) == ("PENDING", "rate_limited")
    for pk in order[1:]:
        waiting = Invoice.objects.get(pk=pk)
        assert waiting.next_payment_at is not None and waiting.next_payment_at <= ISSUED
        assert not waiting.attempts.exists()

    intent = {"id": "pi_3QzNext", "object": "payment_intent", "status": "succeeded", "amount": 100000,
              "currency": "aud", "payment_method": "pm_card_visa"}  # fmt: skip
    with responses.RequestsMock() as stripe_api:
        for amount in (100000, 25000, 100000):
            stripe_api.post(STRIPE_INTENTS, json={**intent, "amount": amount})
        assert run(ISSUED + timedelta(minutes=15)).charged == 3
        keys = [call.request.headers["Idempotency-Key"] for call in stripe_api.calls]
    assert len(set(keys)) == 3 and pending.idempotency_key in keys
    for invoice in (first, second, third):
        invoice.refresh_from_db()
        assert invoice.attempts.count() == 1


def test_the_issuing_job_stops_charging_after_a_rate_limit_and_still_emails_every_invoice(
    acme, alice, card, settings, monkeypatch, mailoutbox, django_capture_on_commit_callbacks
):
    from billing.tasks import send_invoices

    settings.STRIPE_PROVIDER, settings.STRIPE_SECRET_KEY, settings.STRIPE_API_VERSION = "stripe", "sk_test_123", ""
    monkeypatch.setattr(providers.get_provider, "instances", {})
    invoices = [issue(acme), issue(acme, "250.00")]
    jobs = [(str(invoice.pk), str(acme.pk), True) for invoice in invoices]
    limited = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}}
    with responses.RequestsMock() as stripe_api, time_machine.travel(ISSUED, tick=False):
        stripe_api.post(STRIPE_INTENTS, status=429, json=limited)
        with django_capture_on_commit_callbacks(execute=True):
            assert send_invoices(jobs) == 2
        assert len(stripe_api.calls) == 1
    refused, waiting = (Invoice.objects.get(pk=invoice.pk) for invoice in invoices)
    assert refused.attempts.get().failure_code == "rate_limited"
    assert refused.next_payment_at == ISSUED + timedelta(minutes=15)
    assert waiting.next_payment_at == ISSUED and not waiting.attempts.exists()  # the hourly run charges it
    assert len(mailoutbox) == 2


def test_credits_lower_what_is_charged(acme, alice, card):
    use_card(acme, "pm_card_chargeDeclined")
    invoice = issue(acme, "1000.00")
    run(ISSUED)
    credit_note_create(invoice=invoice, amount="200.00", reason="Outage credit")
    use_card(acme, "pm_card_visa")
    invoice.refresh_from_db()
    assert invoice.next_payment_at is not None
    run(invoice.next_payment_at)
    invoice.refresh_from_db()
    assert invoice.attempts.get(number=2).amount == D("800.00") and invoice.status == "PAID"


# -- webhooks ------------------------------------------------------------------------------------------------------


def deliver(event: dict) -> str:
    body, signature = sandbox.signed(event)
    stored, _ = stripe_event_receive(payload=body, signature=signature)
    return stripe_event_process(event_pk=stored.pk)


def intent_event(type_: str, attempt: PaymentAttempt, status: str, error: dict | None = None, **extra) -> dict:
    obj = {
        "id": attempt.payment_intent_id or "pi_test_webhook",
        "object": "payment_intent",
        "status": status,
        "customer": "cus_acme",
        "payment_method": "pm_test_new",
        "last_payment_error": error,
        "metadata": {"keel_attempt": str(attempt.pk), "keel_invoice": str(attempt.invoice_id), **extra},
    }
    return {
        "id": f"evt_{type_}_{attempt.pk}",
        "object": "event",
        "type": type_,
        "created": int(ISSUED.timestamp()),
        "data": {"object": obj},
    }


def test_a_processing_payment_is_settled_by_its_webhook_once(acme, alice, card, monkeypatch):
    from billing.providers.sandbox import SandboxProvider

    monkeypatch.setattr(
        SandboxProvider,
        "payment_intent_create",
        lambda self, request: ChargeResult("pi_becs_1", ChargeStatus.PROCESSING),
    )
    invoice = issue(acme)
    run(ISSUED)
    (attempt,) = invoice.attempts.all()
    assert attempt.status == "PROCESSING"
    with pytest.raises(ConflictError, match="still processing"):
        invoice_charge(invoice_id=invoice.pk, organization_id=acme.pk, trigger="staff", actor=alice)
    event = intent_event("payment_intent.succeeded", attempt, "succeeded")
    assert deliver(event) == "DONE"
    assert deliver(event) == "DONE"  # a replay is stored once and changes nothing
    invoice.refresh_from_db()
    attempt.refresh_from_db()
    assert (attempt.status, invoice.status, invoice.amount_paid) == ("SUCCEEDED", "PAID", D("1000.00"))
    assert AuditEvent.objects.filter(action="invoice.paid", target_id=str(invoice.pk)).count() == 1


def test_a_failed_webhook_after_success_changes_nothing(acme, alice, card):
    invoice = issue(acme)
    run(ISSUED)
    (attempt,) = invoice.attempts.all()
    error = {"code": "card_declined", "decline_code": "generic_decline", "message": "declined"}
    deliver(intent_event("payment_intent.payment_failed", attempt, "requires_payment_method", error))
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert (attempt.status, invoice.status) == ("SUCCEEDED", "PAID")


def test_a_payment_intent_that_is_not_keels_is_ignored(acme):
    event = {
        "id": "evt_other",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1767225600,
        "data": {"object": {"id": "pi_other", "object": "payment_intent", "status": "succeeded", "metadata": {}}},
    }
    assert deliver(event) == "DONE"
    assert PaymentAttempt.objects.count() == 0


def test_paying_on_the_checkout_saves_the_card_when_asked(acme, alice, mailoutbox):
    invoice = issue(acme, "550.00")
    url = invoice_checkout_start(invoice=invoice, user=alice, save_card=True)
    assert url.startswith("/sandbox/stripe/pay/")
    session = sandbox.invoice_checkout_read(url.rstrip("/").rsplit("/", 1)[-1])
    assert (session["amount"], session["email"], session["metadata"]["keel_save_card"]) == (
        55000,
        "alice@acme.test",
        "1",
    )
    for event in sandbox.invoice_checkout_events(session, card="4242 4242 4242 4242"):
        deliver(event)
    invoice.refresh_from_db()
    (attempt,) = invoice.attempts.all()
    assert (attempt.trigger, attempt.status, invoice.status, invoice.amount_paid) == (
        "customer",
        "SUCCEEDED",
        "PAID",
        D("550.00"),
    )
    saved = BillingSettings.objects.get(organization=acme)
    acme.refresh_from_db()
    assert (
        saved.payment_method_id.startswith("pm_sbx_") and saved.autopay and acme.stripe_customer_id.startswith("cus_")
    )
    assert not [mail for mail in mailoutbox if "failed" in mail.subject]  # the customer saw the outcome at checkout


def test_a_declined_checkout_card_leaves_the_invoice_open_without_retries_or_emails(acme, alice, mailoutbox):
    invoice = issue(acme, "550.00")
    url = invoice_checkout_start(invoice=invoice, user=alice, save_card=False)
    session = sandbox.invoice_checkout_read(url.rstrip("/").rsplit("/", 1)[-1])
    for event in sandbox.invoice_checkout_events(session, card="4000 0000 0000 0002"):
        deliver(event)
    invoice.refresh_from_db()
    (attempt,) = invoice.attempts.all()
    assert (attempt.status, attempt.decline_code, invoice.status, invoice.next_payment_at) == (
        "FAILED",
        "generic_decline",
        "OPEN",
        None,
    )
    assert not BillingSettings.objects.filter(organization=acme).exclude(payment_method_id="").exists()
    # A second try on the same page replaces the unfinished attempt; paying a paid invoice is refused.
    invoice_checkout_start(invoice=invoice, user=alice, save_card=False)
    assert invoice.attempts.count() == 2


def test_a_new_checkout_cancels_the_unfinished_one(acme, alice):
    invoice = issue(acme)
    invoice_checkout_start(invoice=invoice, user=alice, save_card=False)
    invoice_checkout_start(invoice=invoice, user=alice, save_card=False)
    assert [a.status for a in invoice.attempts.order_by("number")] == ["CANCELED", "PENDING"]


def test_a_paid_invoice_cannot_be_paid_again(acme, alice, card):
    invoice = issue(acme)
    run(ISSUED)
    with pytest.raises(ConflictError, match="nothing left to pay"):
        invoice_checkout_start(invoice=invoice, user=alice, save_card=False)


def test_attempt_apply_is_idempotent(acme, alice, card):
    use_card(acme, "pm_card_chargeDeclined")
    invoice = issue(acme)
    run(ISSUED)
    (attempt,) = invoice.attempts.all()
    result = ChargeResult(attempt.payment_intent_id, ChargeStatus.FAILED, "card_declined", "generic_decline")
    attempt_apply(attempt_id=attempt.pk, result=result)
    invoice.refresh_from_db()
    assert invoice.next_payment_at == ISSUED + timedelta(hours=1)  # the schedule did not move


# -- reminders, late fees, suspension --------------------------------------------------------------------------


def local(day: date, hour: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo("Australia/Sydney")).astimezone(UTC)


def test_reminders_go_out_on_their_days_once_and_not_at_night(acme, alice, settings, mailoutbox):
    settings.BILLING_REMINDER_DAYS = "-3,1,7"
    invoice = issue(acme, due_in=14)  # due 16 March
    mailoutbox.clear()
    sent = []
    for day in range(2, 26):
        for hour in (3, 9, 15):
            report = run(local(date(2026, 3, day), hour))
            if report.reminded:
                sent.append((day, hour))
    assert sent == [(13, 9), (17, 9), (23, 9)]
    subjects = [mail.subject for mail in mailoutbox]
    assert subjects == [
        "Invoice INV-00001 is due on 16 March 2026",
        "Invoice INV-00001 is 1 day overdue",
        "Invoice INV-00001 is 7 days overdue",
    ]
    invoice.refresh_from_db()
    assert invoice.reminders_sent == [-3, 1, 7]


def test_reminders_stop_when_the_invoice_is_paid_and_skip_days_before_issue(acme, alice, card, settings, mailoutbox):
    settings.BILLING_REMINDER_DAYS = "-3,1"
    use_card(acme, "pm_card_chargeDeclined")
    issue(acme, due_in=2)  # the -3 reminder would fall before the invoice was issued
    mailoutbox.clear()
    run(local(date(2026, 3, 2), 10))
    assert [m.subject for m in mailoutbox if "overdue" in m.subject or "due on" in m.subject] == []
    use_card(acme, "pm_card_visa")
    run(local(date(2026, 3, 2), 12))  # the retry pays it
    mailoutbox.clear()
    run(local(date(2026, 3, 5), 10))
    assert mailoutbox == []


def test_a_late_fee_is_charged_once_as_an_adjustment_invoice(acme, alice, settings):
    settings.BILLING_LATE_FEE_AFTER_DAYS = 7
    BillingSettings.objects.create(organization=acme, late_fee_percent=D("2.5"))
    invoice = issue(acme, "1234.56", due_in=14)  # total 1234.56 (no tax): due 16 March
    credit_note_create(invoice=invoice, amount="34.56", reason="Goodwill")
    assert run(local(date(2026, 3, 22), 10)).late_fees == 0  # 6 days overdue
    assert run(local(date(2026, 3, 23), 10)).late_fees == 1
    assert run(local(date(2026, 3, 24), 10)).late_fees == 0
    invoice.refresh_from_db()
    fee = invoice.late_fee_invoice
    assert fee is not None
    (line,) = fee.lines.all()
    assert (fee.number, fee.status, fee.is_late_fee, fee.total, fee.due_date) == (
        2,
        "OPEN",
        True,
        D("30.00"),
        date(2026, 3, 23),
    )
    assert (line.kind, line.amount) == ("adjustment", D("30.00"))
    assert line.description == "Late fee: 2.5% of AUD 1,200.00 overdue on INV-00001"
    assert run(local(date(2026, 4, 30), 10)).late_fees == 0  # never a fee on the fee


def test_an_organization_is_suspended_after_its_grace_period_and_reinstated_when_it_pays(acme, alice, card):
    BillingSettings.objects.filter(organization=acme).update(suspend_after_days=10)
    use_card(acme, "pm_card_chargeDeclinedStolenCard")
    invoice = issue(acme, due_in=14)  # due 16 March
    run(ISSUED)
    assert run(local(date(2026, 3, 25), 10)).suspended == []  # 9 days overdue
    assert run(local(date(2026, 3, 26), 10)).suspended == ["acme"]
    acme.refresh_from_db()
    assert acme.status == OrgStatus.SUSPENDED and "INV-00001" in acme.suspended_reason
    use_card(acme, "pm_card_visa")
    invoice_charge(invoice_id=invoice.pk, organization_id=acme.pk, trigger="staff")
    acme.refresh_from_db()
    assert acme.status == OrgStatus.ACTIVE and acme.suspended_reason == ""


def test_no_suspension_without_a_grace_period(acme, alice, card):
    use_card(acme, "pm_card_chargeDeclinedStolenCard")
    issue(acme, due_in=0)
    assert run(local(date(2026, 6, 1), 10)).suspended == []


def test_another_organizations_invoice_is_not_charged_by_its_id(acme, globex, card):
    invoice = issue(acme)
    assert invoice_charge(invoice_id=invoice.pk, organization_id=globex.pk, trigger="staff") is None
    assert invoice.attempts.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_runs_at_once_charge_an_invoice_once(acme, alice, card):
    use_card(acme, "")  # issued without a card, so nothing is charged on issue
    invoice = issue(acme)
    use_card(acme, "pm_card_chargeDeclined")
    Invoice.objects.filter(pk=invoice.pk).update(next_payment_at=ISSUED)
    outcomes = race(lambda: process_failed_payments(now=ISSUED).charged)
    assert sorted(outcomes) == [0, 1]
    assert invoice.attempts.count() == 1
    assert [operation for operation, _ in sandbox.SENT].count("payment_intent_create") == 1


@pytest.mark.isolation("billing:sandbox_invoice_checkout")
def test_the_sandbox_payment_page_pays_through_the_webhook(
    client, acme, alice, globex, settings, django_capture_on_commit_callbacks
):
    invoice = issue(acme, "550.00")
    url = invoice_checkout_start(invoice=invoice, user=alice, save_card=False)
    page = client.get(url)
    text = page.content.decode()
    assert page.status_code == 200 and "INV-00001" in text and "AUD 550.00" in text and "Globex" not in text
    declined = client.post(url, {"card": "4000 0000 0000 0002"})
    assert declined.status_code == 402 and "declined" in declined.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post(url, {"card": "4242424242424242"})
    assert paid.status_code == 302 and paid["Location"].endswith(f"/billing/invoices/{invoice.pk}/?paid=1")
    invoice.refresh_from_db()
    assert invoice.status == "PAID"
    assert client.get(url[:-3] + "abc").status_code == 404  # a tampered link
    settings.STRIPE_PROVIDER = "stripe"
    assert client.get(url).status_code == 404


def test_an_event_naming_another_organization_does_not_find_the_attempt(acme, globex, alice, card):
    invoice = issue(acme)
    run(ISSUED)
    (attempt,) = invoice.attempts.all()
    event = intent_event("payment_intent.canceled", attempt, "canceled", keel_organization=str(globex.pk))
    event["data"]["object"]["id"] = "pi_unknown"
    assert deliver(event) == "DONE"
    attempt.refresh_from_db()
    assert attempt.status == "SUCCEEDED"
