"""Payment providers: ``stripe`` (the real one, on Stripe's SDK) and ``sandbox`` (local, no network).

``get_provider()`` returns the one ``settings.STRIPE_PROVIDER`` names. Services call it; nothing else imports an
adapter directly, so tests swap the provider by changing the setting.
"""

from __future__ import annotations

from billing.providers.base import PaymentProvider
from msp.providers import ProviderChoice

ADAPTERS = {
    "stripe": "billing.providers.stripe.StripeProvider",
    "sandbox": "billing.providers.sandbox.SandboxProvider",
}


# One instance per provider name and process: the Stripe adapter caches which products exist.
get_provider: ProviderChoice[PaymentProvider] = ProviderChoice("STRIPE_PROVIDER", ADAPTERS)
