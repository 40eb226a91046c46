"""Collecting invoices: automatic card charges and their retries, paying on the portal, and what the payment
provider reports back.

Each try is a ``PaymentAttempt``, written (and committed) before the provider is asked, with an idempotency key made
of the invoice and the attempt's number: a crash or a timeout between the two replays the same charge, never a second
one. A failed automatic charge is retried on ``BILLING_RETRY_SCHEDULE`` until ``BILLING_MAX_PAYMENT_ATTEMPTS`` tries
were made, when the invoice becomes uncollectible; a hard decline (``billing.declines``) is never retried. A provider
that could not answer is asked again ``PROVIDER_RETRY`` later with the same attempt and key, or when it said to
(``Retry-After``) if that is later, but never after the first wait of the retry schedule. The customer is emailed
after each failure. The ``payment_intent.*`` webhooks find the attempt by the metadata Keel put on
the payment and apply the same outcome, so a reply and its webhook change an attempt once.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import declines, proration
from billing.models import (
    AttemptStatus,
    AttemptTrigger,
    BillingSettings,
    Invoice,
    InvoiceStatus,
    PaymentAttempt,
)
from billing.providers import get_provider
from billing.providers.base import ChargeRequest, ChargeResult, ChargeStatus, InvoiceCheckoutRequest, ProviderError
from billing.selectors import billing_contacts
from billing.services.invoices import amount_due, invoice_pay_url
from events.services import publish
from msp.retry_after import wait_before_retry
from notifications.rendering import date_text
from notifications.services import notify
from tenancy.audit import audit_record
from tenancy.errors import ConflictError
from tenancy.models import Organization, User
from tenancy.services import organization_reactivate

logger = logging.getLogger(__name__)

# A provider that could not answer is asked again (with the same attempt and key) this much later, or when it said to.
PROVIDER_RETRY = timedelta(minutes=15)
# The failure codes of an attempt the provider did not answer; it stays pending and is asked again with its key.
RATE_LIMITED = "rate_limited"  # the provider refused because it is asked too often: the run's other charges wait
PROVIDER_ERROR = "provider_error"  # unreachable, or a 5xx
OFF_SESSION = (AttemptTrigger.AUTOMATIC, AttemptTrigger.RETRY, AttemptTrigger.STAFF)
COLLECTIBLE = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
_STATUS = {
    ChargeStatus.SUCCEEDED: AttemptStatus.SUCCEEDED,
    ChargeStatus.PROCESSING: AttemptStatus.PROCESSING,
    ChargeStatus.REQUIRES_ACTION: AttemptStatus.REQUIRES_ACTION,
    ChargeStatus.FAILED: AttemptStatus.FAILED,
    ChargeStatus.CANCELED: AttemptStatus.CANCELED,
}


def retry_policy() -> tuple[tuple[timedelta, ...], int]:
    """The configured waits between retries and the most automatic charges an invoice gets."""
    return declines.parse_schedule(settings.BILLING_RETRY_SCHEDULE), settings.BILLING_MAX_PAYMENT_ATTEMPTS


def _provider_wait(advice: timedelta | None) -> timedelta:
    """How long a charge the provider could not take waits: ``PROVIDER_RETRY``, or the provider's ``advice`` when
    longer; at most the retry schedule's first wait, so an outage never holds a charge back longer than a decline."""
    schedule, _ = retry_policy()
    longest = max(schedule[0], PROVIDER_RETRY) if schedule else PROVIDER_RETRY
    return wait_before_retry(PROVIDER_RETRY, advice, longest=longest)


def _locked(invoice_id: Any, organization_id: Any) -> Invoice | None:
    return (
        Invoice.objects.for_org(organization_id)
        .select_for_update(of=("self",))
        .select_related("organization")
        .filter(pk=invoice_id)
        .first()
    )


def _minor(amount: Decimal, currency: str) -> int:
    return int(proration.quantize(amount, currency).scaleb(proration.minor_units(currency)))


def _metadata(attempt: PaymentAttempt, **extra: str) -> dict[str, str]:
    return {
        "keel_invoice": str(attempt.invoice_id),
        "keel_attempt": str(attempt.pk),
        "keel_organization": str(attempt.organization_id),
        **extra,
    }


def _new_attempt(invoice: Invoice, trigger: str, now: datetime) -> PaymentAttempt:
    number = invoice.payment_attempts + 1
    attempt = PaymentAttempt.objects.create(
        organization_id=invoice.organization_id,
        invoice=invoice,
        number=number,
        trigger=trigger,
        amount=amount_due(invoice),
        currency=invoice.currency,
        idempotency_key=f"keel-invoice-{invoice.pk}-attempt-{number}",
        created_at=now,
    )
    invoice.payment_attempts = number
    return attempt


# -- charging a saved card ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Charge:
    attempt: PaymentAttempt
    request: ChargeRequest


def _prepare_charge(invoice_id: Any, organization_id: Any, trigger: str, actor: User | None,
                    now: datetime, scheduled: bool) -> _Charge | None:  # fmt: skip
    with transaction.atomic():
        invoice = _locked(invoice_id, organization_id)
        if invoice is None:
            return None
        if scheduled and (invoice.next_payment_at is None or invoice.next_payment_at > now):
            return None  # another worker took it, or staff changed the schedule
        if invoice.status not in COLLECTIBLE or amount_due(invoice) <= 0:
            if scheduled:
                Invoice.objects.filter(pk=invoice.pk).update(next_payment_at=None)
                return None
            raise ConflictError(f"A {invoice.get_status_display().lower()} invoice has nothing to collect.", "status")
        card = BillingSettings.objects.filter(organization_id=invoice.organization_id).first()
        customer = invoice.organization.stripe_customer_id
        if card is None or not card.payment_method_id or not customer:
            if scheduled:
                Invoice.objects.filter(pk=invoice.pk).update(next_payment_at=None)
                return None
            raise ConflictError("The organization has no saved card to charge.", "payment_method")
        attempts = invoice.attempts.order_by("-number")
        if attempts.filter(status=AttemptStatus.PROCESSING).exists():
            if scheduled:
                Invoice.objects.filter(pk=invoice.pk).update(next_payment_at=None)
                return None
            raise ConflictError("A payment of this invoice is still processing.", "status")
        # An off-session attempt the provider never answered (a crash, an outage) is asked again with its own key.
        unanswered = attempts.filter(status=AttemptStatus.PENDING, trigger__in=OFF_SESSION, payment_intent_id="")
        attempt = unanswered.first() or _new_attempt(invoice, trigger, now)
        invoice.next_payment_at = None
        invoice.save(update_fields=["payment_attempts", "next_payment_at", "updated_at"])
        if actor is not None:
            audit_record(action="invoice.payment_retried", organization=invoice.organization, actor=actor,
                         target=invoice, changes={"attempt": attempt.number})  # fmt: skip
    request = ChargeRequest(
        customer=customer,
        payment_method=card.payment_method_id,
        amount=_minor(attempt.amount, attempt.currency),
        currency=attempt.currency,
        description=f"Invoice {invoice.reference}",
        idempotency_key=attempt.idempotency_key,
        metadata=_metadata(attempt),
    )
    return _Charge(attempt, request)


def invoice_charge(*, invoice_id: Any, organization_id: Any, trigger: str = AttemptTrigger.AUTOMATIC,
                   actor: User | None = None, now: datetime | None = None,
                   scheduled: bool = False) -> PaymentAttempt | None:  # fmt: skip
    """Charge the organization's saved card for what the invoice owes. ``scheduled`` (the automatic charge and its
    retries) does nothing unless the invoice's ``next_payment_at`` has come, so two workers charge it once; staff
    retries (``trigger="staff"``) raise ConflictError when there is nothing to charge or no card to charge. When the
    provider cannot answer, the attempt is returned still pending, its ``failure_code`` saying why (``RATE_LIMITED``
    or ``PROVIDER_ERROR``), and the invoice's next charge waits."""
    now = now or timezone.now()
    charge = _prepare_charge(invoice_id, organization_id, trigger, actor, now, scheduled)
    if charge is None:
        return None
    try:
        result = get_provider().payment_intent_create(charge.request)
    except ProviderError as failure:
        if failure.retryable:  # the attempt stays pending; the next run asks again with the same key
            wait = _provider_wait(failure.retry_after)
            Invoice.objects.filter(pk=charge.attempt.invoice_id).update(next_payment_at=now + wait)
            # Staff see why it is still pending (the portal shows customers no provider error).
            code = RATE_LIMITED if failure.rate_limited else PROVIDER_ERROR
            charge.attempt.failure_code, charge.attempt.failure_message = code, failure.message[:500]
            PaymentAttempt.objects.filter(pk=charge.attempt.pk, status=AttemptStatus.PENDING).update(
                failure_code=charge.attempt.failure_code, failure_message=charge.attempt.failure_message
            )
            logger.warning("payment provider unavailable for %s: %s", charge.attempt, failure.message)
            return charge.attempt
        result = ChargeResult("", ChargeStatus.FAILED, failure_code=PROVIDER_ERROR, message=failure.message)
    return attempt_apply(attempt_id=charge.attempt.pk, result=result, now=now)


# -- applying an outcome -----------------------------------------------------------------------------------------------


def rate_limited(attempt: PaymentAttempt | None) -> bool:
    """Whether ``invoice_charge`` left ``attempt`` pending because the provider limited Keel's rate: charging other
    invoices now would be refused too."""
    return attempt is not None and attempt.status == AttemptStatus.PENDING and attempt.failure_code == RATE_LIMITED


def attempt_apply(*, attempt_id: Any, result: ChargeResult, now: datetime | None = None) -> PaymentAttempt:
    """Record what the provider says of an attempt (its reply, or a webhook): pay the invoice, or schedule the
    retry and tell the customer. A finished attempt does not change again, except a failed one that then succeeds."""
    now = now or timezone.now()
    with transaction.atomic():
        first = PaymentAttempt.objects.filter(pk=attempt_id).values_list("invoice_id", "organization_id").first()
        if first is None:
            raise PaymentAttempt.DoesNotExist(attempt_id)
        invoice = _locked(*first)
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt_id)
        status = _STATUS[result.status]
        if attempt.status == status or attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.CANCELED):
            return attempt
        if attempt.status == AttemptStatus.FAILED and status != AttemptStatus.SUCCEEDED:
            return attempt
        assert invoice is not None  # noqa: S101 - the attempt's invoice cannot be deleted (PROTECT)
        if attempt.status == AttemptStatus.PENDING:  # an earlier try's outage no longer describes it
            attempt.failure_code = attempt.failure_message = ""
        attempt.status = status
        attempt.payment_intent_id = result.payment_intent_id or attempt.payment_intent_id
        if status in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.CANCELED):
            attempt.completed_at = now
        if status == AttemptStatus.SUCCEEDED:
            attempt.save()
            _paid(invoice, attempt, now)
        elif status in (AttemptStatus.FAILED, AttemptStatus.REQUIRES_ACTION):
            verdict = declines.classify(result.failure_code, result.decline_code)
            attempt.failure_code = (result.failure_code or status.lower())[:60]
            attempt.decline_code = result.decline_code[:60]
            attempt.failure_message = (result.message or verdict.message)[:500]
            # Off-session, a bank that wants the card holder present is as final as a hard decline.
            attempt.hard_decline = verdict.hard or status == AttemptStatus.REQUIRES_ACTION
            attempt.save()
            if status == AttemptStatus.FAILED or attempt.trigger in OFF_SESSION:
                reason = attempt.decline_code or attempt.failure_code
                publish(invoice.organization, "payment.failed", _payment_payload(invoice, attempt, reason=reason))
            if attempt.trigger in OFF_SESSION:
                _failed(invoice, attempt, verdict.message, now)
        else:
            attempt.save()
    return attempt


def _paid(invoice: Invoice, attempt: PaymentAttempt, now: datetime) -> None:
    invoice.amount_paid += attempt.amount
    invoice.next_payment_at = None
    fields = ["amount_paid", "next_payment_at", "updated_at"]
    if amount_due(invoice) <= 0 and invoice.status in COLLECTIBLE:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = now
        fields += ["status", "paid_at"]
    invoice.save(update_fields=fields)
    audit_record(action="invoice.paid", organization=invoice.organization, target=invoice,
                 changes={"attempt": attempt.number, "amount": f"{attempt.amount:.2f}"})  # fmt: skip
    publish(invoice.organization, "payment.succeeded", _payment_payload(invoice, attempt))
    publish(invoice.organization, "invoice.paid", _payload(invoice, attempt))
    if invoice.status == InvoiceStatus.PAID:
        reinstate_if_settled(invoice.organization)


def _failed(invoice: Invoice, attempt: PaymentAttempt, message: str, now: datetime) -> None:
    schedule, most = retry_policy()
    failures = invoice.attempts.filter(
        trigger__in=OFF_SESSION, status__in=(AttemptStatus.FAILED, AttemptStatus.REQUIRES_ACTION)
    ).count()
    wait = None if attempt.hard_decline else declines.next_retry(failures, schedule, most)
    invoice.next_payment_at = now + wait if wait else None
    fields = ["next_payment_at", "updated_at"]
    exhausted = wait is None and not attempt.hard_decline
    if exhausted and invoice.status == InvoiceStatus.OPEN:
        invoice.status = InvoiceStatus.UNCOLLECTIBLE
        fields.append("status")
    invoice.save(update_fields=fields)
    audit_record(action="invoice.payment_failed", organization=invoice.organization, target=invoice,
                 changes={"attempt": attempt.number, "reason": attempt.decline_code or attempt.failure_code,
                          "hard_decline": attempt.hard_decline, "exhausted": exhausted})  # fmt: skip
    publish(
        invoice.organization, "invoice.payment_failed", _payload(invoice, attempt, hard_decline=attempt.hard_decline)
    )
    invoice_notify(
        invoice,
        "payment_failed",
        amount=f"{attempt.amount:,.2f}",
        reason=message,
        next_payment_at=invoice.next_payment_at,
        hard_decline=attempt.hard_decline,
        exhausted=exhausted,
    )


# The notice each invoice email is: its event type, and the idempotency key of one occurrence (so a retried service
# never emails twice): the Nth failed automatic payment; the reminder of the Nth day from the due date.
_INVOICE_EVENTS = {"payment_failed": "payment.failed", "invoice_reminder": "invoice.reminder"}
# Dates the email templates show, written as text here (a notice's context is stored as JSON).
_INVOICE_DATES = {"next_payment_at": "j F Y, H:i T"}


def _invoice_notice_key(invoice: Invoice, template: str, context: dict[str, object]) -> str:
    if template == "payment_failed":
        failures = invoice.attempts.filter(
            trigger__in=OFF_SESSION, status__in=(AttemptStatus.FAILED, AttemptStatus.REQUIRES_ACTION)
        ).count()
        return f"invoice:{invoice.pk}:payment_failed:{failures}"
    if template == "invoice_reminder":
        day = int(str(context.get("days_overdue") or 0)) - int(str(context.get("days_left") or 0))
        return f"invoice:{invoice.pk}:reminder:{day}"
    return ""


def invoice_notify(invoice: Invoice, template: str, **context: object) -> bool:
    """Email the organization's billing contacts about an invoice (after commit, one email each: a billing contact
    is an address, whatever they chose in their notification settings), with its reference, currency and pay link;
    False when nobody receives invoices."""
    recipients = billing_contacts(invoice.organization)
    if not recipients:
        return False
    written = {
        name: date_text(value, _INVOICE_DATES.get(name, "j F Y")) if isinstance(value, date) else value
        for name, value in context.items()
    }
    notify(
        organization=invoice.organization,
        event_type=_INVOICE_EVENTS.get(template, "invoice.issued"),
        addresses=recipients,
        template=template,
        key=_invoice_notice_key(invoice, template, context),
        context={
            "reference": invoice.reference,
            "organization_name": invoice.organization.name,
            "currency": invoice.currency,
            "pay_url": invoice_pay_url(invoice),
            **written,
        },
    )
    return True


def _payload(invoice: Invoice, attempt: PaymentAttempt, **extra: object) -> dict[str, object]:
    return {
        "id": str(invoice.pk),
        "number": invoice.reference,
        "status": invoice.status,
        "attempt": attempt.number,
        "amount": f"{attempt.amount:.2f}",
        "currency": invoice.currency,
        **extra,
    }


def _payment_payload(invoice: Invoice, attempt: PaymentAttempt, **extra: object) -> dict[str, object]:
    return {
        "id": str(attempt.pk),
        "invoice": str(invoice.pk),
        "number": invoice.reference,
        "attempt": attempt.number,
        "trigger": attempt.trigger,
        "amount": f"{attempt.amount:.2f}",
        "currency": invoice.currency,
        **extra,
    }


def attempt_refund_record(*, payment_intent_id: str, refunded: Decimal, now: datetime | None = None) -> str:
    """Record what the provider says has been refunded of a payment so far (``refunded`` is its running total).
    Each increase publishes ``payment.refunded`` with the amount newly refunded; a repeated or older report, with
    the same or a smaller total, changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = (
            PaymentAttempt.objects.select_for_update(of=("self",))
            .select_related("invoice", "organization")
            .filter(payment_intent_id=payment_intent_id, status=AttemptStatus.SUCCEEDED)
            .first()
        )
        if attempt is None:
            return "not a Keel invoice payment"
        total = min(refunded, attempt.amount)
        if total <= attempt.amount_refunded:
            return f"attempt {attempt.number}: {attempt.amount_refunded:.2f} refunded already"
        newly = total - attempt.amount_refunded
        attempt.amount_refunded = total
        attempt.refunded_at = now
        attempt.save(update_fields=["amount_refunded", "refunded_at"])
        invoice = attempt.invoice
        changes = {"attempt": attempt.number, "amount": f"{newly:.2f}", "total": f"{total:.2f}"}
        audit_record(action="payment.refunded", organization=attempt.organization, target=invoice, changes=changes)
        publish(attempt.organization, "payment.refunded",
                _payment_payload(invoice, attempt, amount=f"{newly:.2f}", total_refunded=f"{total:.2f}"))  # fmt: skip
    return f"attempt {attempt.number}: {newly:.2f} refunded"


# -- paying on the portal ----------------------------------------------------------------------------------------------


def invoice_checkout_start(*, invoice: Invoice, user: User, save_card: bool, now: datetime | None = None) -> str:
    """A payment page at the provider for what the invoice owes; returns its URL. Earlier unfinished portal payments
    of the invoice are canceled (their pages may still be open, but the webhook of a stale page finds a canceled
    attempt only if it was never paid)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(invoice.pk, invoice.organization_id)
        if locked is None:
            raise Invoice.DoesNotExist(invoice.pk)
        if locked.status not in COLLECTIBLE or amount_due(locked) <= 0:
            raise ConflictError("This invoice has nothing left to pay.", "status")
        if locked.attempts.filter(status=AttemptStatus.PROCESSING).exists():
            raise ConflictError("A payment of this invoice is already processing.", "status")
        locked.attempts.filter(trigger=AttemptTrigger.CUSTOMER, status=AttemptStatus.PENDING).update(
            status=AttemptStatus.CANCELED, completed_at=now
        )
        attempt = _new_attempt(locked, AttemptTrigger.CUSTOMER, now)
        locked.save(update_fields=["payment_attempts", "updated_at"])
    page = invoice_pay_url(locked)
    request = InvoiceCheckoutRequest(
        invoice_id=str(locked.pk),
        reference=locked.reference,
        organization_id=str(locked.organization_id),
        attempt=attempt.number,
        amount=_minor(attempt.amount, attempt.currency),
        currency=attempt.currency,
        email=user.email,
        customer=locked.organization.stripe_customer_id,
        save_card=save_card,
        success_url=f"{page}?paid=1",
        cancel_url=page,
        idempotency_key=f"keel-invoice-checkout-{attempt.pk}",
        metadata=_metadata(attempt, keel_save_card="1" if save_card else "0"),
    )
    try:
        session = get_provider().invoice_checkout_create(request)
    except ProviderError as failure:
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            status=AttemptStatus.CANCELED, completed_at=now, failure_code="provider_error",
            failure_message=failure.message[:500],
        )  # fmt: skip
        raise
    PaymentAttempt.objects.filter(pk=attempt.pk).update(checkout_session_id=session.id[:200])
    return session.url


def attempt_for(metadata: dict[str, Any], payment_intent_id: str) -> PaymentAttempt | None:
    """The attempt a provider object is about: named in its metadata, or by its payment intent."""
    named = str(metadata.get("keel_attempt") or "")
    try:
        attempt_id = uuid.UUID(named) if named else None
    except ValueError:
        attempt_id = None
    if attempt_id is not None:
        # Within the organization Keel named on the payment, when it did (every payment Keel starts names it).
        attempts = PaymentAttempt.objects.filter(pk=attempt_id)
        with contextlib.suppress(ValueError):
            attempts = attempts.filter(organization_id=uuid.UUID(str(metadata.get("keel_organization") or "")))
        found = attempts.first()
        if found is not None:
            return found
    if payment_intent_id:
        return PaymentAttempt.objects.filter(payment_intent_id=payment_intent_id).first()
    return None


# -- suspension --------------------------------------------------------------------------------------------------------

SUSPENSION_REASON = "Unpaid invoice"


def reinstate_if_settled(organization: Organization) -> None:
    """An organization suspended for an unpaid invoice is active again once nothing it owes has failed."""
    if organization.is_active or not organization.suspended_reason.startswith(SUSPENSION_REASON):
        return
    owing = Invoice.objects.for_org(organization).filter(status__in=COLLECTIBLE, payment_attempts__gt=0)
    if not any(amount_due(invoice) > 0 for invoice in owing.prefetch_related("credit_notes")):
        organization_reactivate(organization=organization, actor=None)
