"""The price book (plans and add-ons, edited by staff) and quotes, each reachable only through its random key."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from qualification.models import QualificationTier
from quotes import pricing

QUOTE_VALIDITY = timedelta(days=30)
ZERO = Decimal("0")
CURRENCY_ISO = Q(currency__regex=r"^[A-Z]{3}$")


class Plan(models.Model):
    """One tier's prices: a monthly base fee that includes some users and devices, and the price of each extra."""

    tier = models.CharField(max_length=16, choices=QualificationTier.choices, unique=True)
    name = models.CharField(max_length=60)
    description = models.TextField(blank=True, help_text="One or two sentences for the plan comparison page.")
    base_monthly = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(ZERO)])
    per_user = models.DecimalField(
        max_digits=12, decimal_places=4, validators=[MinValueValidator(ZERO)], help_text="Per user beyond included."
    )
    per_device = models.DecimalField(
        max_digits=12, decimal_places=4, validators=[MinValueValidator(ZERO)], help_text="Per device beyond included."
    )
    included_users = models.PositiveIntegerField(default=0)
    included_devices = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="AUD")
    trial_days = models.PositiveSmallIntegerField(
        default=0, help_text="Free days before the first charge when bought through self-serve checkout."
    )
    custom_quote = models.BooleanField(
        default=False, help_text="Quoted by staff with custom lines; the prices here are indicative ('from …')."
    )
    active = models.BooleanField(default=True, help_text="Inactive plans cannot be quoted.")
    sort_order = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "tier"]
        constraints = [
            models.CheckConstraint(condition=CURRENCY_ISO, name="quotes_plan_currency_iso"),
            models.CheckConstraint(
                condition=Q(base_monthly__gte=0, per_user__gte=0, per_device__gte=0), name="quotes_plan_prices_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency} {self.base_monthly}/month)"

    def as_price(self) -> pricing.PlanPrice:
        return pricing.PlanPrice(
            tier=self.tier,
            name=self.name,
            base_monthly=self.base_monthly,
            per_user=self.per_user,
            per_device=self.per_device,
            included_users=self.included_users,
            included_devices=self.included_devices,
            currency=self.currency,
        )


class AddOnKind(models.TextChoices):
    BACKUP_TB = "backup_tb", "Backup (per TB)"
    SMS_PACK = "sms_pack", "SMS pack"
    STORAGE = "storage", "Extra storage"
    SERVICE = "service", "Service"


class AddOn(models.Model):
    """Something sold on top of a plan, per unit per month."""

    code = models.SlugField(max_length=40, unique=True, help_text="Stable identifier used by the API and checkout.")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=16, choices=AddOnKind.choices)
    unit_price = models.DecimalField(max_digits=12, decimal_places=4, validators=[MinValueValidator(ZERO)])
    unit_label = models.CharField(max_length=40, blank=True, help_text="What one unit is: 'TB', 'pack', '100 GB'.")
    sms_credits = models.PositiveIntegerField(default=0, help_text="SMS credits per unit (SMS packs).")
    allowed_tiers = models.JSONField(default=list, blank=True, help_text="Tiers this add-on may be added to.")
    currency = models.CharField(max_length=3, default="AUD")
    max_quantity = models.PositiveIntegerField(default=pricing.DEFAULT_MAX_ADD_ON_QUANTITY)
    active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "code"]
        verbose_name = "add-on"
        constraints = [
            models.CheckConstraint(condition=CURRENCY_ISO, name="quotes_addon_currency_iso"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="quotes_addon_price_gte_0"),
            models.CheckConstraint(
                condition=~Q(kind=AddOnKind.SMS_PACK) | Q(sms_credits__gt=0), name="quotes_sms_pack_has_credits"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def as_price(self) -> pricing.AddOnPrice:
        return pricing.AddOnPrice(
            code=self.code,
            name=self.name,
            unit_price=self.unit_price,
            unit_label=self.unit_label,
            allowed_tiers=frozenset(self.allowed_tiers or ()),
            currency=self.currency,
            max_quantity=self.max_quantity,
        )


class QuoteStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    SENT = "SENT", "Sent"
    ACCEPTED = "ACCEPTED", "Accepted"
    REJECTED = "REJECTED", "Rejected"
    EXPIRED = "EXPIRED", "Expired"


# Quotes that may still be sent, accepted, rejected or expired.
OPEN_STATUSES = (QuoteStatus.DRAFT, QuoteStatus.SENT)
# status -> the statuses it may move to. Accepted, rejected and expired are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    QuoteStatus.DRAFT: frozenset({QuoteStatus.SENT, QuoteStatus.ACCEPTED, QuoteStatus.REJECTED, QuoteStatus.EXPIRED}),
    QuoteStatus.SENT: frozenset({QuoteStatus.ACCEPTED, QuoteStatus.REJECTED, QuoteStatus.EXPIRED}),
    QuoteStatus.ACCEPTED: frozenset(),
    QuoteStatus.REJECTED: frozenset(),
    QuoteStatus.EXPIRED: frozenset(),
}


def new_quote_key() -> str:
    """256 random bits, URL-safe (43 characters). The key is the only way to read a quote: never log it whole."""
    return secrets.token_urlsafe(32)


def default_expiry() -> datetime:
    return timezone.now() + QUOTE_VALIDITY


class Quote(models.Model):
    """A priced offer to one prospect. Not tenant-owned: ``organization`` is set when checkout provisions one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    quote_key = models.CharField(max_length=64, unique=True, default=new_quote_key, editable=False)
    email = models.EmailField()
    tier = models.CharField(max_length=16, choices=QualificationTier.choices)
    configuration = models.JSONField(default=dict, blank=True)
    is_custom = models.BooleanField(default=False, help_text="Lines written by staff rather than the price book.")
    price_monthly = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="AUD")
    status = models.CharField(max_length=10, choices=QuoteStatus.choices, default=QuoteStatus.DRAFT)
    expires_at = models.DateTimeField(default=default_expiry)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    qualification = models.ForeignKey(
        "qualification.Qualification", null=True, blank=True, on_delete=models.SET_NULL, related_name="quotes"
    )
    organization = models.ForeignKey(
        "tenancy.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="quotes"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=300, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=QuoteStatus.values), name="quotes_quote_status_valid"),
            models.CheckConstraint(condition=Q(price_monthly__gte=0), name="quotes_quote_price_gte_0"),
            models.CheckConstraint(condition=CURRENCY_ISO, name="quotes_quote_currency_iso"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="quotes_open_by_expiry")]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} quote {self.quote_key[:6]}… for {self.email}"

    @property
    def url(self) -> str:
        """The quote's public page."""
        return f"/quote/{self.quote_key}"

    def effective_status(self, now: datetime | None = None) -> str:
        """The status a reader should see: an open quote past its expiry is expired even before the beat task runs."""
        if self.status in OPEN_STATUSES and self.expires_at <= (now or timezone.now()):
            return QuoteStatus.EXPIRED
        return self.status


class QuoteLine(models.Model):
    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=40)
    description = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=4)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["quote_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["quote", "position"], name="quotes_line_position_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="quotes_line_quantity_gte_1"),
            models.CheckConstraint(condition=Q(unit_price__gte=0, amount__gte=0), name="quotes_line_amounts_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.description}"
