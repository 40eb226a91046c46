"""Every write to billing data. Importing this package registers the Stripe event handlers."""

from billing.services import handlers  # noqa: F401 - registers the handlers
from billing.services.provisioning import checkout_sign_in_claim
from billing.services.subscriptions import (
    PaymentProviderError,
    QuoteNotFoundError,
    billing_portal_url,
    checkout_start,
    subscription_cancel,
    subscription_change_plan,
    subscription_resume,
)
from billing.services.webhooks import (
    WebhookSignatureError,
    stripe_event_process,
    stripe_event_receive,
    stripe_event_requeue,
    stripe_events_due,
)

__all__ = [
    "PaymentProviderError",
    "QuoteNotFoundError",
    "WebhookSignatureError",
    "billing_portal_url",
    "checkout_sign_in_claim",
    "checkout_start",
    "stripe_event_process",
    "stripe_event_receive",
    "stripe_event_requeue",
    "stripe_events_due",
    "subscription_cancel",
    "subscription_change_plan",
    "subscription_resume",
]
