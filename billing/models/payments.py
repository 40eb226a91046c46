"""Collecting what invoices are owed: one ``PaymentAttempt`` per try, whoever starts it.

An attempt is written before the provider is asked, with an idempotency key made of the invoice and the attempt's
number, so a crash between the two replays the same charge instead of making a second one. The invoice carries
where collection stands (``next_payment_at``: when the next automatic try is due), which the hourly
``process_failed_payments`` job reads through a partial index.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.contracts import money
from billing.models.invoices import Invoice
from tenancy.models import TenantModel


class AttemptStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"  # written; the provider has not answered yet (or the customer is at checkout)
    PROCESSING = "PROCESSING", "Processing"  # accepted; the outcome comes by webhook
    REQUIRES_ACTION = "REQUIRES_ACTION", "Needs the customer"  # e.g. 3-D Secure, which cannot happen off-session
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELED = "CANCELED", "Canceled"


FINISHED = (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.CANCELED)


class AttemptTrigger(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic charge"
    RETRY = "retry", "Scheduled retry"
    STAFF = "staff", "Retried by staff"
    CUSTOMER = "customer", "Paid by the customer"
    EXTERNAL = "external", "Paid outside Keel"  # recorded from the MSP's accounting (QuickBooks)


class PaymentAttempt(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveSmallIntegerField(help_text="1 for the invoice's first attempt, then 2, 3, …")
    trigger = models.CharField(max_length=10, choices=AttemptTrigger.choices)
    status = models.CharField(max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.PENDING)
    amount = money()
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=120, unique=True)
    payment_intent_id = models.CharField(max_length=100, blank=True, db_index=True)
    checkout_session_id = models.CharField(max_length=200, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    decline_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    hard_decline = models.BooleanField(default=False, help_text="Retrying cannot succeed; no retry is scheduled.")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    amount_refunded = money(help_text="Refunded through the provider so far (its running total).")
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "number"], name="payment_attempt_number_per_invoice"),
            models.CheckConstraint(condition=Q(status__in=AttemptStatus.values), name="payment_attempt_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.number} on {self.invoice_id}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED
