"""QuickBooks providers: ``quickbooks`` (Intuit's real endpoints) and ``sandbox`` (local, no network).

``get_provider()`` returns the one ``settings.QBO_PROVIDER`` names. Services and views call it; nothing else imports
an adapter directly, so tests swap the provider by changing the setting.
"""

from __future__ import annotations

from integrations.quickbooks.providers.base import QuickBooksProvider
from msp.providers import ProviderChoice

ADAPTERS = {
    "quickbooks": "integrations.quickbooks.providers.quickbooks.QuickBooksProvider",
    "sandbox": "integrations.quickbooks.providers.sandbox.SandboxProvider",
}

# One instance per provider name and process: the real adapter keeps one HTTP session (connection pool).
get_provider: ProviderChoice[QuickBooksProvider] = ProviderChoice("QBO_PROVIDER", ADAPTERS)
