"""The contract and invoice API's representations and request bodies (views in ``billing.api_contracts`` and
``billing.api_invoices``).

Money is a string with two decimals (``"341.00"``); a rate finer than a cent keeps its places (``"0.005"``).
Quantities are plain decimal strings (``"2.5"``). Contract and invoice lines in a request body are checked twice: their
shape here (unknown fields, types, what their columns can hold), their pricing rules by the billing services. Either
way an error names the field, as ``lines[0].unit_price`` inside a list of lines.
"""

from __future__ import annotations

from datetime import date as datetime_date
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field, inline_serializer
from rest_framework import serializers

from billing.models import (
    AttemptStatus,
    AttemptTrigger,
    Contract,
    ContractAdjustment,
    ContractLine,
    ContractStatus,
    CreditNote,
    CreditNoteKind,
    Cycle,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    PricingModel,
    Timing,
    UsageRecord,
)
from billing.services.contract_updates import MAX_RENEWAL_MONTHS
from billing.services.invoices import MANUAL_KINDS, amount_due
from tenancy.api_base import refuses_unknown_fields

CENT = Decimal("0.01")
LARGEST_AMOUNT = Decimal("1e11")  # money columns hold 12 digits before the point: room for the tax on top
GENERATE_AHEAD_DAYS = 366  # a year ahead: an annual contract's next period, billed in advance


def _line(item: dict[str, Any], shape: type[serializers.Serializer[Any]], prefix: str) -> tuple[Any, dict[str, Any]]:
    """A line object's values as ``shape`` reads them, and what is wrong with it: unknown fields, wrong types, numbers
    too long for their column (the services check the pricing rules). Error keys name the field after ``prefix``."""
    errors: dict[str, Any] = {f"{prefix}{name}": ["Unknown field."] for name in sorted(set(item) - set(shape().fields))}
    incoming = shape(data=item)
    if not incoming.is_valid():
        errors.update({f"{prefix}{name}": messages for name, messages in incoming.errors.items()})
        return None, errors
    return incoming.validated_data, errors


def check_line(item: dict[str, Any], shape: type[serializers.Serializer[Any]]) -> dict[str, Any]:
    values, errors = _line(item, shape, "")
    if errors:
        raise serializers.ValidationError(errors)
    return dict(values)


def check_lines(items: list[dict[str, Any]], shape: type[serializers.Serializer[Any]]) -> list[dict[str, Any]]:
    checked, errors = [], {}
    for index, item in enumerate(items):
        values, wrong = _line(item, shape, f"lines[{index}].")
        checked.append(values)
        errors.update(wrong)
    if errors:
        raise serializers.ValidationError(errors)
    return checked


def check_invoice_size(amounts: list[Decimal], field: str) -> None:
    """Lines whose amounts, added up without their signs, stay below ``LARGEST_AMOUNT``: every total (tax included)
    then fits the money columns."""
    if sum((abs(amount) for amount in amounts), Decimal("0")) >= LARGEST_AMOUNT:
        raise serializers.ValidationError({field: ["The invoice's lines add up to more than an invoice can hold."]})


# -- fields ------------------------------------------------------------------------------------------------------------


class MoneyField(serializers.DecimalField):
    """Read-only money: two decimals, more only where a rate needs them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=16, decimal_places=4, coerce_to_string=True, read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        number = Decimal(value)
        cents = number.quantize(CENT)
        if not cents:
            return "0.00" if cents == number else format(number.normalize(), "f")  # never "-0.00"
        return f"{cents:.2f}" if cents == number else format(number.normalize(), "f")


class QuantityField(serializers.DecimalField):
    """A read-only quantity without trailing zeros: ``"2.5"``, ``"1"``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=18, decimal_places=4, coerce_to_string=True, read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        number = Decimal(value)
        return format(number.normalize(), "f") if number else "0"


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that must carry its UTC offset (a bare local time is ambiguous)."""

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                raise serializers.ValidationError("Give the UTC offset too, e.g. 2026-03-10T09:30:00+11:00.")
        result: datetime = super().to_internal_value(value)
        return result


# Statuses are plain strings rather than enums: two fields named "status" with different choice sets would give the
# schema an enum name it cannot pick well.
def _choices_help(values: list[str] | tuple[str, ...]) -> str:
    return f"One of {', '.join(values)}."


# -- contracts ---------------------------------------------------------------------------------------------------------


class TierSerializer(serializers.Serializer[Any]):
    up_to = serializers.CharField(allow_null=True, required=False, help_text="Units up to this many; null: no limit.")
    unit_price = serializers.CharField()
    flat_fee = serializers.CharField(allow_null=True, required=False)


class ContractLineSerializer(serializers.Serializer[ContractLine]):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    description = serializers.CharField()
    pricing_model = serializers.ChoiceField(choices=PricingModel.choices)
    amount = MoneyField(help_text="FLAT: per period. HOURS_BLOCK: the block's fee.")
    unit_price = MoneyField(help_text="PER_UNIT; USAGE without tiers.")
    quantity = QuantityField()
    included_quantity = QuantityField(help_text="Units (or hours) included free each period.")
    tiers = TierSerializer(many=True)
    metric = serializers.CharField(help_text="USAGE: the metric its usage records carry.")
    overage_rate = MoneyField(help_text="HOURS_BLOCK: per hour beyond the included hours.")


class ContractSerializer(serializers.Serializer[Contract]):
    id = serializers.UUIDField()
    organization = serializers.CharField(source="organization.slug")
    name = serializers.CharField()
    status = serializers.CharField(help_text=_choices_help(ContractStatus.values))
    start_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True, help_text="Exclusive: the first day not covered.")
    cycle = serializers.ChoiceField(choices=Cycle.choices)
    anchor_day = serializers.IntegerField(help_text="Day of the month periods start on; ISO weekday if weekly.")
    timing = serializers.ChoiceField(choices=Timing.choices)
    payment_terms_days = serializers.IntegerField()
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="Percent: 10.00 is 10 %.")
    tax_label = serializers.CharField()
    auto_renew = serializers.BooleanField()
    renewal_term_months = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField(source="organization.currency")
    next_period_start = serializers.DateField(allow_null=True, help_text="The next period to invoice.")
    next_invoice_on = serializers.DateField(allow_null=True, help_text="When that period will be invoiced.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    lines = ContractLineSerializer(many=True)


class TierInputSerializer(serializers.Serializer[Any]):
    up_to = serializers.DecimalField(max_digits=16, decimal_places=4, allow_null=True, required=False)
    unit_price = serializers.DecimalField(max_digits=16, decimal_places=4)
    flat_fee = serializers.DecimalField(max_digits=16, decimal_places=4, required=False)


@refuses_unknown_fields
class ContractLineInputSerializer(serializers.Serializer[Any]):
    """A contract line in a request (checked by ``billing.services.contracts.line_check``)."""

    description = serializers.CharField(max_length=200)
    pricing_model = serializers.ChoiceField(choices=PricingModel.choices, default=PricingModel.FLAT)
    amount = serializers.DecimalField(max_digits=16, decimal_places=4, required=False)
    unit_price = serializers.DecimalField(max_digits=16, decimal_places=4, required=False)
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4, required=False)
    included_quantity = serializers.DecimalField(max_digits=14, decimal_places=4, required=False)
    tiers = TierInputSerializer(many=True, required=False)
    metric = serializers.CharField(max_length=60, required=False)
    overage_rate = serializers.DecimalField(max_digits=16, decimal_places=4, required=False)


@extend_schema_field(ContractLineInputSerializer(many=True))
class ContractLinesField(serializers.ListField):
    """A list of line objects (checked one by one in the serializer's ``validate``, to name ``lines[0].amount``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.DictField(), max_length=200, **kwargs)


class ContractCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    start_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True, default=None)
    cycle = serializers.ChoiceField(choices=Cycle.choices, default=Cycle.MONTHLY)
    anchor_day = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=31,
        help_text="Default: the start date's day (weekday if weekly).",
    )
    timing = serializers.ChoiceField(choices=Timing.choices, default=Timing.ADVANCE)
    payment_terms_days = serializers.IntegerField(default=14, min_value=0, max_value=365)
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, default=Decimal("10.00"))
    tax_label = serializers.CharField(max_length=20, allow_blank=True, default="GST")
    auto_renew = serializers.BooleanField(default=False)
    renewal_term_months = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=MAX_RENEWAL_MONTHS
    )
    lines = ContractLinesField(default=list)
    activate = serializers.BooleanField(default=False, help_text="Start invoicing at once instead of a draft.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        check_lines(attrs["lines"], ContractLineInputSerializer)
        return attrs


@refuses_unknown_fields
class ContractUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False)
    payment_terms_days = serializers.IntegerField(required=False, min_value=0, max_value=365)
    tax_label = serializers.CharField(max_length=20, allow_blank=True, required=False)
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, required=False)
    end_date = serializers.DateField(required=False, allow_null=True)
    auto_renew = serializers.BooleanField(required=False)
    renewal_term_months = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_RENEWAL_MONTHS
    )


@refuses_unknown_fields
class ContractLineChangeSerializer(serializers.Serializer[Any]):
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4, required=False)
    unit_price = serializers.DecimalField(max_digits=16, decimal_places=4, required=False)
    amount = serializers.DecimalField(max_digits=16, decimal_places=4, required=False)
    effective_on = serializers.DateField(
        required=False, help_text="The first day at the new price. Default: today in the organization's time zone."
    )


class ContractAdjustmentSerializer(serializers.Serializer[ContractAdjustment]):
    id = serializers.IntegerField()
    description = serializers.CharField()
    amount = MoneyField(help_text="Positive: charged; negative: credited.")
    kind = serializers.CharField()
    effective_on = serializers.DateField()
    invoice = serializers.UUIDField(source="invoice_id", allow_null=True, help_text="The invoice that billed it.")


LINE_CHANGE_RESULT = inline_serializer(
    "ContractLineChange",
    {
        "line": ContractLineSerializer(),
        "adjustment": ContractAdjustmentSerializer(
            allow_null=True, help_text="The charge or credit for the rest of a period already invoiced, if any."
        ),
    },
)


class UsageRecordSerializer(serializers.Serializer[UsageRecord]):
    id = serializers.IntegerField()
    contract = serializers.UUIDField(source="contract_id")
    metric = serializers.CharField()
    quantity = QuantityField()
    recorded_at = serializers.DateTimeField()
    idempotency_key = serializers.CharField()
    invoice = serializers.UUIDField(source="invoice_id", allow_null=True, help_text="The invoice that billed it.")
    created_at = serializers.DateTimeField()


class UsageCreateSerializer(serializers.Serializer[Any]):
    metric = serializers.CharField(max_length=60)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=Decimal("0"))
    recorded_at = AwareDateTimeField(required=False, help_text="When it was used (with offset). Default: now.")
    idempotency_key = serializers.CharField(
        max_length=200, required=False, help_text="Required here or in the Idempotency-Key header."
    )


# -- invoices ----------------------------------------------------------------------------------------------------------


class InvoiceLineSerializer(serializers.Serializer[InvoiceLine]):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=LineKind.choices)
    quantity = QuantityField()
    unit_price = MoneyField()
    amount = MoneyField()
    period_start = serializers.DateField(allow_null=True)
    period_end = serializers.DateField(allow_null=True, help_text="Exclusive.")


class CreditNoteSerializer(serializers.Serializer[CreditNote]):
    id = serializers.UUIDField()
    number = serializers.IntegerField()
    reference = serializers.CharField(help_text="e.g. CN-00001")
    invoice = serializers.UUIDField(source="invoice_id")
    kind = serializers.ChoiceField(choices=CreditNoteKind.choices)
    reason = serializers.CharField()
    subtotal = MoneyField()
    tax = MoneyField()
    total = MoneyField()
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()


class InvoiceSerializer(serializers.Serializer[Invoice]):
    """An invoice with its totals (the list's rows)."""

    id = serializers.UUIDField()
    number = serializers.IntegerField(allow_null=True, help_text="Given when the invoice is finalized.")
    reference = serializers.CharField(help_text="INV-00042, or Draft <id> before it is finalized.")
    status = serializers.CharField(help_text=_choices_help(InvoiceStatus.values))
    overdue = serializers.SerializerMethodField(help_text="Open and past its due date in the organization's zone.")
    organization = serializers.CharField(source="organization.slug")
    contract = serializers.UUIDField(source="contract_id", allow_null=True)
    period_start = serializers.DateField(allow_null=True)
    period_end = serializers.DateField(allow_null=True, help_text="Exclusive.")
    issue_date = serializers.DateField()
    due_date = serializers.DateField()
    currency = serializers.CharField()
    subtotal = MoneyField()
    tax = MoneyField()
    total = MoneyField()
    amount_paid = MoneyField()
    amount_due = serializers.SerializerMethodField(help_text="The total less payments and credit notes.")
    tax_label = serializers.CharField()
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2)
    memo = serializers.CharField()
    finalized_at = serializers.DateTimeField(allow_null=True)
    voided_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True, help_text="When it was last emailed.")
    payment_attempts = serializers.IntegerField(help_text="Payment attempts so far.")
    next_payment_at = serializers.DateTimeField(
        allow_null=True, help_text="When the saved card is charged next (an automatic charge or a retry)."
    )
    created_at = serializers.DateTimeField()

    def get_overdue(self, invoice: Invoice) -> bool:
        now = self.context.get("now") or timezone.now()
        return invoice.is_overdue(now.astimezone(ZoneInfo(invoice.organization.timezone)).date())

    @extend_schema_field({"type": "string", "format": "decimal"})
    def get_amount_due(self, invoice: Invoice) -> str:
        return f"{amount_due(invoice):.2f}"


class PaymentAttemptSerializer(serializers.Serializer[Any]):
    """One try at collecting an invoice."""

    id = serializers.UUIDField()
    number = serializers.IntegerField()
    trigger = serializers.CharField(help_text=_choices_help(AttemptTrigger.values))
    status = serializers.CharField(help_text=_choices_help(AttemptStatus.values))
    amount = MoneyField()
    currency = serializers.CharField()
    failure_code = serializers.CharField()
    decline_code = serializers.CharField()
    failure_message = serializers.CharField()
    hard_decline = serializers.BooleanField(help_text="Retrying cannot succeed; no retry is scheduled.")
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class InvoiceDetailSerializer(InvoiceSerializer):
    """An invoice with its lines, credit notes and payment attempts."""

    lines = InvoiceLineSerializer(many=True)
    credit_notes = CreditNoteSerializer(many=True)
    attempts = PaymentAttemptSerializer(many=True)


@refuses_unknown_fields
class InvoiceLineInputSerializer(serializers.Serializer[Any]):
    """An invoice line in a request (checked by ``billing.services.invoices.line_input``)."""

    description = serializers.CharField(max_length=300)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, default=Decimal("1"))
    unit_price = serializers.DecimalField(max_digits=16, decimal_places=4, help_text="Negative for a discount.")
    kind = serializers.ChoiceField(choices=[(kind.value, kind.label) for kind in MANUAL_KINDS], default="adjustment")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        check_invoice_size([attrs["quantity"] * attrs["unit_price"]], "unit_price")
        return attrs


@extend_schema_field(InvoiceLineInputSerializer(many=True))
class InvoiceLinesField(serializers.ListField):
    """A list of line objects (checked one by one in the serializer's ``validate``, to name ``lines[0].amount``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {"min_length": "An invoice needs at least one line."})
        super().__init__(child=serializers.DictField(), min_length=1, max_length=500, **kwargs)


class InvoiceCreateSerializer(serializers.Serializer[Any]):
    lines = InvoiceLinesField()
    payment_terms_days = serializers.IntegerField(default=14, min_value=0, max_value=365)
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, default=Decimal("10.00"))
    tax_label = serializers.CharField(max_length=20, allow_blank=True, default="GST")
    memo = serializers.CharField(max_length=500, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        checked = check_lines(attrs["lines"], InvoiceLineInputSerializer)
        check_invoice_size([line["quantity"] * line["unit_price"] for line in checked], "lines")
        return attrs


class InvoiceVoidSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)


class CreditNoteCreateSerializer(serializers.Serializer[Any]):
    amount = serializers.DecimalField(
        max_digits=16, decimal_places=4, help_text="Before tax; the credit note adds the invoice's tax rate."
    )
    reason = serializers.CharField(max_length=500)


class InvoiceGenerateSerializer(serializers.Serializer[Any]):
    date = serializers.DateField(
        required=False,
        help_text="Invoice periods due on or before this day, at most a year from today. Default: today in each "
        "organization.",
    )
    dry_run = serializers.BooleanField(default=False, help_text="Report what would be invoiced; write nothing.")

    def validate_date(self, value: datetime_date) -> datetime_date:
        # Periods further ahead are not due; and a far date would have every period up to it invoiced in one request
        # (up to year 9999, where the periods' arithmetic runs out).
        if value > timezone.localdate() + timedelta(days=GENERATE_AHEAD_DAYS):
            raise serializers.ValidationError(f"At most {GENERATE_AHEAD_DAYS} days from today.")
        return value


GENERATE_RESULT = inline_serializer(
    "InvoiceGeneration",
    {
        "created": serializers.IntegerField(help_text="Invoices created (or that would be, in a dry run)."),
        "contracts": serializers.IntegerField(help_text="Contracts that were due."),
        "invoices": serializers.ListField(child=serializers.CharField(), help_text="One line per invoice."),
        "dry_run": serializers.BooleanField(),
    },
)

# -- parameters and responses ------------------------------------------------------------------------------------------

CONTRACT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The contract's id.")
INVOICE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The invoice's id.")
LINE_ID = OpenApiParameter("line_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The line's id.")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The usage's idempotency key (instead of idempotency_key in the body).",
)
CONTRACT_NOT_FOUND = OpenApiResponse(description="No such contract among the organizations the caller may see.")
INVOICE_NOT_FOUND = OpenApiResponse(description="No such invoice (or line) among the organizations the caller may see.")
FORBIDDEN = OpenApiResponse(description="The key lacks billing:write, or the caller is a customer (read only).")
ENDED = OpenApiResponse(description="The contract has ended.")
NOT_DRAFT = OpenApiResponse(description="The invoice is no longer a draft (or the line is its last).")
