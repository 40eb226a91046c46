"""Contracts an MSP signs with a customer, invoiced by Keel every cycle: their lines and pricing, the usage metered
against them, and adjustments waiting for the next invoice.

A contract's periods follow ``billing.periods``: boundaries on ``anchor_day`` (a day of the month, or an ISO weekday
for weekly cycles) in the months of its cycle counted from the start date's month. ``next_period_start`` and
``next_invoice_on`` are where recurring invoicing stands: the next period to invoice and the date it may be
invoiced (its first day when billed in advance, the day after its last when billed in arrears). The generator reads
only contracts whose ``next_invoice_on`` has come (an index), and moves both forward in the transaction that writes
the invoice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from tenancy.models import Organization, TenantModel


def money(help_text: str = "") -> models.DecimalField[Decimal, Decimal]:
    """An amount of money: quantized to the currency's minor unit where it is invoiced, so four places store any."""
    return models.DecimalField(max_digits=16, decimal_places=4, default=Decimal("0"), help_text=help_text)


class ContractStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"
    ENDED = "ENDED", "Ended"


class Cycle(models.TextChoices):
    """The values of ``billing.periods.Cycle``."""

    WEEKLY = "WEEKLY", "Weekly"
    MONTHLY = "MONTHLY", "Monthly"
    QUARTERLY = "QUARTERLY", "Quarterly"
    ANNUAL = "ANNUAL", "Annual"


class Timing(models.TextChoices):
    ADVANCE = "ADVANCE", "In advance"
    ARREARS = "ARREARS", "In arrears"


class PricingModel(models.TextChoices):
    """The values of ``billing.rating.Model``."""

    FLAT = "FLAT", "Flat amount per period"
    PER_UNIT = "PER_UNIT", "Per unit"
    TIERED_GRADUATED = "TIERED_GRADUATED", "Tiered, graduated"
    TIERED_VOLUME = "TIERED_VOLUME", "Tiered, volume"
    USAGE = "USAGE", "Metered usage"
    HOURS_BLOCK = "HOURS_BLOCK", "Block of hours"


class Contract(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=ContractStatus.choices, default=ContractStatus.DRAFT)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Exclusive: the first day not covered.")
    cycle = models.CharField(max_length=10, choices=Cycle.choices, default=Cycle.MONTHLY)
    anchor_day = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="Day of the month periods start on (1-31, clamped to short months); ISO weekday 1-7 if weekly.",
    )
    timing = models.CharField(max_length=10, choices=Timing.choices, default=Timing.ADVANCE)
    payment_terms_days = models.PositiveSmallIntegerField(default=14, validators=[MaxValueValidator(365)])
    tax_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("10.00"), help_text="Percent, e.g. 10.00 for GST 10 %."
    )
    tax_label = models.CharField(max_length=20, default="GST")
    auto_renew = models.BooleanField(default=False)
    renewal_term_months = models.PositiveSmallIntegerField(null=True, blank=True)
    renewal_notice_for = models.DateField(
        null=True, blank=True, help_text="The end date a renewal notice went out for."
    )

    next_period_start = models.DateField(null=True, blank=True)
    next_invoice_on = models.DateField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gt=F("start_date")), name="contract_ends_after_start"
            ),
            models.CheckConstraint(condition=Q(anchor_day__gte=1, anchor_day__lte=31), name="contract_anchor_day"),
            models.CheckConstraint(condition=Q(tax_rate__gte=0, tax_rate__lte=100), name="contract_tax_rate"),
            models.CheckConstraint(condition=Q(status__in=ContractStatus.values), name="contract_status_valid"),
        ]
        indexes = [
            models.Index(
                fields=["next_invoice_on", "id"],
                condition=Q(status="ACTIVE", next_invoice_on__isnull=False),
                name="contract_invoice_due",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def currency(self) -> str:
        return self.organization.currency


class ContractLine(TenantModel):
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    description = models.CharField(max_length=200)
    pricing_model = models.CharField(max_length=20, choices=PricingModel.choices, default=PricingModel.FLAT)
    amount = money(help_text="FLAT: per period. HOURS_BLOCK: the block's fee.")
    unit_price = money(help_text="PER_UNIT; USAGE without tiers.")
    quantity = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("1"))
    included_quantity = models.DecimalField(
        max_digits=14, decimal_places=4, default=Decimal("0"), help_text="Units (or hours) included free each period."
    )
    # [{"up_to": "10" or null, "unit_price": "5.00", "flat_fee": "0"}, ...] for the tiered models and USAGE.
    tiers = models.JSONField(default=list, blank=True)
    metric = models.CharField(max_length=60, blank=True, help_text="USAGE: the metric its usage records carry.")
    overage_rate = money(help_text="HOURS_BLOCK: per hour beyond the included hours.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.description


class UsageRecord(TenantModel):
    """Metered usage of a contract. Billed once: ``invoice`` is set by the invoice that charged it."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="usage_records")
    metric = models.CharField(max_length=60)
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    recorded_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=200)
    invoice = models.ForeignKey("billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"], name="usage_idempotency_key"),
        ]
        indexes = [models.Index(fields=["contract", "metric", "recorded_at"], name="usage_contract_metric")]

    def __str__(self) -> str:
        return f"{self.quantity} {self.metric}"


class BilledTime(models.Model):
    """A billable ticket time entry, charged once against a contract's block of hours."""

    time_entry = models.OneToOneField("tickets.TimeEntry", primary_key=True, on_delete=models.CASCADE, related_name="+")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.time_entry_id} on {self.invoice_id}"


class ContractAdjustment(TenantModel):
    """A charge or credit waiting for the contract's next invoice (a mid-period change), then marked billed."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="adjustments")
    description = models.CharField(max_length=300)
    amount = money()
    kind = models.CharField(max_length=12, default="proration")
    effective_on = models.DateField()
    invoice = models.ForeignKey("billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["effective_on", "created_at"]

    def __str__(self) -> str:
        return self.description


class BillingSettings(models.Model):
    """How an organization is invoiced."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.CASCADE, related_name="billing_settings"
    )
    review_drafts = models.BooleanField(
        default=False, help_text="Invoices stay drafts until staff approve them, instead of going out at once."
    )
    immediate_proration = models.BooleanField(
        default=False, help_text="Mid-period changes are invoiced at once, instead of on the next invoice."
    )
    # Collection. The card lives at the payment provider, under the organization's Stripe customer; Keel keeps its id.
    payment_method_id = models.CharField(
        max_length=100, blank=True, help_text="The saved card charged automatically when an invoice is issued."
    )
    payment_method_label = models.CharField(max_length=60, blank=True, help_text="e.g. Visa ending 4242")
    autopay = models.BooleanField(default=True, help_text="Charge the saved card when an invoice is issued.")
    late_fee_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("25"))],
        help_text="Charged once on an invoice still unpaid some days after it was due (0: no late fee).",
    )
    suspend_after_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Suspend the organization when a failed payment is still unpaid this many days after the due "
        "date (empty: never).",
    )

    class Meta:
        verbose_name_plural = "billing settings"

    def __str__(self) -> str:
        return f"Billing settings of {self.organization_id}"
