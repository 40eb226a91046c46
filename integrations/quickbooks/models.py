"""The MSP's QuickBooks Online company as Keel is connected to it, and what Keel keeps in step with it.

``QboConnection`` is platform-level (the MSP's own books, not a tenant's): at most one row is not disconnected. Its
OAuth tokens are stored encrypted (``tenancy.crypto``) and never shown. ``QboSync`` is one object kept in step: a
customer (an organization) or a finalized invoice pushed to QuickBooks, or a payment QuickBooks received that was
pulled into Keel. ``(kind, object_id)`` is unique, so an object is pushed or recorded through one row however often
it is asked for; the row carries QuickBooks' id once known, and its retries. An organization's customer id also lives
on ``Organization.qbo_customer_id``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenancy.models import TenantModel


class ConnectionStatus(models.TextChoices):
    CONNECTED = "CONNECTED", "Connected"
    NEEDS_RECONNECT = "NEEDS_RECONNECT", "Needs reconnecting"
    DISCONNECTED = "DISCONNECTED", "Disconnected"


class QboConnection(models.Model):
    realm_id = models.CharField("company (realm) id", max_length=32)
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.CONNECTED)
    access_token_encrypted = models.TextField(editable=False, blank=True)
    refresh_token_encrypted = models.TextField(editable=False, blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    refresh_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    default_item_id = models.CharField(
        max_length=32,
        blank=True,
        help_text="The QuickBooks product/service invoice lines are booked to; Keel finds or creates "
        '"Keel services" when empty.',
    )
    tax_item_id = models.CharField(
        max_length=32,
        blank=True,
        help_text="The QuickBooks product/service of each invoice's tax line; the default item when empty.",
    )
    refund_account_id = models.CharField(
        max_length=32,
        blank=True,
        help_text="The QuickBooks bank account refunds are paid from (often the one Stripe pays out to); refunds "
        "wait until it is chosen.",
    )
    payments_pulled_through = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Payments changed in QuickBooks since then are pulled next."
    )
    paused_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="QuickBooks asked Keel to slow down: nothing is pushed or pulled before then.",
    )
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connected_at = models.DateTimeField(default=timezone.now)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "QuickBooks connection"
        ordering = ["-connected_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ConnectionStatus.values), name="qbo_connection_status_valid"),
            # One company at a time: at most one row is connected or waiting to be reconnected.
            models.UniqueConstraint(
                models.Value(True), condition=~Q(status=ConnectionStatus.DISCONNECTED), name="qbo_one_live_connection"
            ),
        ]

    def __str__(self) -> str:
        return f"QuickBooks company {self.realm_id}"


class SyncKind(models.TextChoices):
    CUSTOMER = "customer", "Customer"  # object_id: the organization
    INVOICE = "invoice", "Invoice"  # object_id: the Keel invoice
    RECEIPT = "receipt", "Payment received in Keel"  # object_id: the Keel payment attempt (pushed to QuickBooks)
    REFUND = "refund", "Refund made in Keel"  # object_id: "<payment attempt>:<refunded so far, in cents>" (pushed)
    PAYMENT = "payment", "Payment"  # object_id: "<realm id>:<QuickBooks payment id>" (pulled into Keel)


class SyncState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    RETRYING = "RETRYING", "Failed, will retry"
    FAILED = "FAILED", "Gave up"


DUE_STATES = (SyncState.PENDING, SyncState.RETRYING, SyncState.RUNNING)


class QboSync(TenantModel):
    kind = models.CharField(max_length=10, choices=SyncKind.choices)
    object_id = models.CharField(
        max_length=64, help_text="The Keel organization, invoice, payment or refund, or QuickBooks' payment."
    )
    qbo_id = models.CharField("QuickBooks id", max_length=32, blank=True)
    state = models.CharField(max_length=10, choices=SyncState.choices, default=SyncState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "QuickBooks sync"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="qbo_sync_once_per_object"),
            models.CheckConstraint(condition=Q(kind__in=SyncKind.values), name="qbo_sync_kind_valid"),
            models.CheckConstraint(condition=Q(state__in=SyncState.values), name="qbo_sync_state_valid"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state__in=DUE_STATES), name="qbo_sync_due"),
            models.Index(fields=["kind", "qbo_id"], condition=~Q(qbo_id=""), name="qbo_sync_by_qbo_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.object_id}"
