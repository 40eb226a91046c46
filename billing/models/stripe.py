"""Stripe's side of billing, mirrored: the events it sent, each subscription as Stripe last described it, and the
SMS credits bought with it."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenancy.models import TenantModel, Tier


class StripeEventStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    DONE = "DONE", "Processed"
    IGNORED = "IGNORED", "Not handled"
    FAILED = "FAILED", "Failed (gave up)"


class StripeEvent(models.Model):
    """One webhook delivery from Stripe, stored before it is processed. ``event_id`` is unique, so a replayed
    delivery (even two at once) stores nothing new and is processed once."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    # Stripe's ``created`` (whole seconds): the order events happened in, whatever order they arrive in.
    created = models.BigIntegerField()
    livemode = models.BooleanField(default=False)
    object_id = models.CharField(max_length=100, blank=True, db_index=True, help_text="data.object.id")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=StripeEventStatus.choices, default=StripeEventStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="PENDING"), name="billing_stripe_event_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class SubscriptionStatus(models.TextChoices):
    TRIALING = "TRIALING", "Trialing"
    ACTIVE = "ACTIVE", "Active"
    PAST_DUE = "PAST_DUE", "Past due"
    PAUSED = "PAUSED", "Paused"
    CANCELED = "CANCELED", "Canceled"


class Subscription(TenantModel):
    """A self-serve subscription, as Stripe last described it. Written only by ``billing.services``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stripe_subscription_id = models.CharField(max_length=100, unique=True)
    stripe_customer_id = models.CharField(max_length=100, db_index=True)
    # Provisioning is keyed on the checkout session: one session, one organization, however often it is announced.
    checkout_session_id = models.CharField(max_length=200, blank=True)
    quote = models.ForeignKey("quotes.Quote", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tier = models.CharField(max_length=16, choices=Tier.choices)
    plan_name = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=SubscriptionStatus.choices)
    price_monthly = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="AUD")
    # What the customer has (users, devices, add-ons, as a quote configuration): repriced on a plan change.
    # Empty for subscriptions sold with staff-written lines, which change plan through sales.
    configuration = models.JSONField(default=dict, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True, help_text="The next billing date.")
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # ``created`` of the newest Stripe event (or provider reply) applied: anything older is not applied.
    synced_at = models.BigIntegerField(default=0)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The owner's account was created by this checkout (so the checkout's return page may sign them in once).
    owner_created = models.BooleanField(default=False)
    sign_in_claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["checkout_session_id"], condition=~Q(checkout_session_id=""), name="billing_sub_session_unique"
            ),
            models.CheckConstraint(condition=Q(status__in=SubscriptionStatus.values), name="billing_sub_status_valid"),
            models.CheckConstraint(condition=Q(price_monthly__gte=0), name="billing_sub_price_gte_0"),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="billing_sub_by_org")]

    def __str__(self) -> str:
        return f"{self.plan_name} ({self.get_status_display()})"

    @property
    def is_live(self) -> bool:
        return self.status != SubscriptionStatus.CANCELED


class ItemKind(models.TextChoices):
    PLAN = "plan", "Plan"
    USERS = "users", "Extra users"
    DEVICES = "devices", "Extra devices"
    ADD_ON = "add_on", "Add-on"
    CUSTOM = "custom", "Custom"


class SubscriptionItem(TenantModel):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    stripe_item_id = models.CharField(max_length=100, blank=True)
    product = models.CharField(max_length=100, help_text="The provider's product id, e.g. keel-core_plus-base.")
    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    code = models.CharField(max_length=40, help_text="The price book code: base, extra_users, an add-on code.")
    description = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["subscription_id", "id"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.description}"

    @property
    def amount(self) -> Decimal:
        return self.unit_amount * self.quantity


class SmsCreditEntry(TenantModel):
    """The organization's SMS budget as a ledger: packs bought add credits; sending spends them. ``source_key`` is
    unique, so the same purchase (checkout, a renewal invoice) never credits twice."""

    credits = models.IntegerField()
    reason = models.CharField(max_length=200)
    source_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "SMS credit entry"
        verbose_name_plural = "SMS credit entries"

    def __str__(self) -> str:
        return f"{self.credits:+d} SMS: {self.reason}"
