"""QuickBooks providers: ``quickbooks`` (Intuit's real endpoints) and ``sandbox`` (local, no network).

``get_provider()`` returns the one ``settings.QBO_PROVIDER`` names. Services and views call it; nothing else imports
an adapter directly, so tests swap the provider by changing the setting.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from integrations.quickbooks.providers.base import QuickBooksProvider

ADAPTERS = {
    "quickbooks": "integrations.quickbooks.providers.quickbooks.QuickBooksProvider",
    "sandbox": "integrations.quickbooks.providers.sandbox.SandboxProvider",
}

_instances: dict[str, QuickBooksProvider] = {}


def get_provider() -> QuickBooksProvider:
    """One instance per provider name and process: the real adapter keeps one HTTP session (connection pool)."""
    name = settings.QBO_PROVIDER
    if name not in ADAPTERS:
        raise LookupError(f"unknown QBO_PROVIDER {name!r}; expected one of {', '.join(ADAPTERS)}")
    if name not in _instances:
        adapter: type[QuickBooksProvider] = import_string(ADAPTERS[name])
        _instances[name] = adapter()
    return _instances[name]
