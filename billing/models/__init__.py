"""Billing's data: Stripe's side (events, subscriptions, SMS credits), contracts and the invoices Keel issues."""

from billing.models.contracts import (
    BilledTime,
    BillingSettings,
    Contract,
    ContractAdjustment,
    ContractLine,
    ContractStatus,
    Cycle,
    PricingModel,
    Timing,
    UsageRecord,
)
from billing.models.invoices import (
    CreditNote,
    CreditNoteKind,
    DocumentCounter,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from billing.models.payments import AttemptStatus, AttemptTrigger, PaymentAttempt
from billing.models.stripe import (
    ItemKind,
    SmsCreditEntry,
    StripeEvent,
    StripeEventStatus,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)

__all__ = [
    "AttemptStatus",
    "AttemptTrigger",
    "BilledTime",
    "BillingSettings",
    "Contract",
    "ContractAdjustment",
    "ContractLine",
    "ContractStatus",
    "CreditNote",
    "CreditNoteKind",
    "Cycle",
    "DocumentCounter",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "ItemKind",
    "LineKind",
    "PaymentAttempt",
    "PricingModel",
    "SmsCreditEntry",
    "StripeEvent",
    "StripeEventStatus",
    "Subscription",
    "SubscriptionItem",
    "SubscriptionStatus",
    "Timing",
    "UsageRecord",
]
