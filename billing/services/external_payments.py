"""Payments Keel did not collect itself: a bank transfer or cheque the MSP's accounting system (QuickBooks) recorded
against an invoice Keel issued.

Each is kept as a succeeded ``PaymentAttempt`` (the customer paid) whose idempotency key is made of the source, the
invoice and the payment's reference, so recording the same payment again returns the first record and changes
nothing. One transaction on the locked invoice: the amount paid grows, the invoice is paid once nothing is left to pay
(its automatic charge is then called off), the audit log says who recorded what, and ``payment.succeeded`` (and
``invoice.paid`` when paid in full) are published through the outbox.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from billing import proration
from billing.models import AttemptStatus, AttemptTrigger, Invoice, InvoiceStatus, PaymentAttempt
from billing.services.collection import COLLECTIBLE, reinstate_if_settled
from billing.services.invoices import amount_due
from events.services import publish
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import User

REFERENCE_LIMIT = 60
SOURCE = re.compile(r"^[a-z0-9_-]{1,20}$")


def external_payment_key(*, invoice: Invoice, reference: str, source: str) -> str:
    return f"ext-{source}-{invoice.pk.hex}-{reference}"


def _checked(amount: Any, reference: str, source: str) -> tuple[Decimal, str]:
    errors: dict[str, list[str]] = {}
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        errors["amount"] = ["Must be an amount of money more than zero."]
    reference = str(reference or "").strip()
    if not reference or len(reference) > REFERENCE_LIMIT:
        errors["reference"] = [f"A reference of 1 to {REFERENCE_LIMIT} characters is required."]
    if not SOURCE.match(source):
        errors["source"] = ["Lower-case letters, digits, - and _, at most 20."]
    if errors:
        raise ServiceValidationError(errors)
    return value, reference


def invoice_record_external_payment(*, invoice: Invoice, amount: Decimal | str, reference: str, received_on: date,
                                    source: str = "quickbooks", actor: User | None = None,
                                    now: datetime | None = None) -> PaymentAttempt:  # fmt: skip
    """Record that the customer paid ``amount`` of an issued invoice outside Keel on ``received_on``. The same
    ``reference`` (from the same ``source``) for the same invoice is recorded once: again, it returns the first record.
    An invoice with nothing left to pay, a draft or a void one refuses with ConflictError."""
    value, reference = _checked(amount, reference, source)
    now = now or timezone.now()
    key = external_payment_key(invoice=invoice, reference=reference, source=source)
    with transaction.atomic():
        locked = (
            Invoice.objects.for_org(invoice.organization_id)
            .select_for_update(of=("self",))
            .select_related("organization")
            .filter(pk=invoice.pk)
            .first()
        )
        if locked is None:
            raise Invoice.DoesNotExist(invoice.pk)
        recorded = PaymentAttempt.objects.for_org(locked.organization_id).filter(idempotency_key=key).first()
        if recorded is not None:
            return recorded
        if locked.status not in COLLECTIBLE or amount_due(locked) <= 0:
            raise ConflictError(
                f"{locked.reference} is {locked.get_status_display().lower()} with nothing left to pay.", "status"
            )
        value = proration.quantize(value, locked.currency)
        zone = ZoneInfo(locked.organization.timezone)
        number = locked.payment_attempts + 1
        attempt = PaymentAttempt.objects.create(
            organization_id=locked.organization_id, invoice=locked, number=number, trigger=AttemptTrigger.EXTERNAL,
            status=AttemptStatus.SUCCEEDED, amount=value, currency=locked.currency, idempotency_key=key,
            created_at=now, completed_at=min(now, datetime.combine(received_on, time(12), tzinfo=zone)),
        )  # fmt: skip
        locked.payment_attempts = number
        locked.amount_paid += value
        fields = ["payment_attempts", "amount_paid", "updated_at"]
        if amount_due(locked) <= 0:
            locked.status, locked.paid_at, locked.next_payment_at = InvoiceStatus.PAID, now, None
            fields += ["status", "paid_at", "next_payment_at"]
        locked.save(update_fields=fields)
        details = {"source": source, "reference": reference, "received_on": received_on.isoformat()}
        audit_record(action="invoice.payment_recorded", organization=locked.organization, actor=actor, target=locked,
                     changes={"attempt": number, "amount": f"{value:.2f}", **details})  # fmt: skip
        publish(locked.organization, "payment.succeeded", {
            "id": str(attempt.pk), "invoice": str(locked.pk), "number": locked.reference, "attempt": number,
            "trigger": attempt.trigger, "amount": f"{value:.2f}", "currency": locked.currency, **details,
        })  # fmt: skip
        if locked.status == InvoiceStatus.PAID:
            publish(locked.organization, "invoice.paid", {
                "id": str(locked.pk), "number": locked.reference, "status": locked.status, "attempt": number,
                "amount": f"{value:.2f}", "currency": locked.currency, **details,
            })  # fmt: skip
            reinstate_if_settled(locked.organization)
    return attempt
