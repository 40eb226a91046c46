"""Payment providers: ``stripe`` (the real one, on Stripe's SDK) and ``sandbox`` (local, no network).

``get_provider()`` returns the one ``settings.STRIPE_PROVIDER`` names. Services call it; nothing else imports an
adapter directly, so tests swap the provider by changing the setting.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from billing.providers.base import PaymentProvider

ADAPTERS = {
    "stripe": "billing.providers.stripe.StripeProvider",
    "sandbox": "billing.providers.sandbox.SandboxProvider",
}


_instances: dict[str, PaymentProvider] = {}


def get_provider() -> PaymentProvider:
    """One instance per provider name and process (the Stripe adapter caches which products exist)."""
    name = settings.STRIPE_PROVIDER
    if name not in ADAPTERS:
        raise LookupError(f"unknown STRIPE_PROVIDER {name!r}; expected one of {', '.join(ADAPTERS)}")
    if name not in _instances:
        adapter: type[PaymentProvider] = import_string(ADAPTERS[name])
        _instances[name] = adapter()
    return _instances[name]
