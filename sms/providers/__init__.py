"""SMS providers: ``twilio`` (the real one, on Twilio's SDK) and ``sandbox`` (local, no network).

``get_provider()`` returns the one ``settings.SMS_PROVIDER`` names. Services call it; nothing else imports an adapter
directly, so tests swap the provider by changing the setting.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from sms.providers.base import MessageProvider

ADAPTERS = {
    "twilio": "sms.providers.twilio.TwilioProvider",
    "sandbox": "sms.providers.sandbox.SandboxProvider",
}


_instances: dict[str, MessageProvider] = {}


def get_provider() -> MessageProvider:
    """One instance per provider name and process: the Twilio adapter keeps one HTTP session (connection pool)."""
    name = settings.SMS_PROVIDER
    if name not in ADAPTERS:
        raise LookupError(f"unknown SMS_PROVIDER {name!r}; expected one of {', '.join(ADAPTERS)}")
    if name not in _instances:
        adapter: type[MessageProvider] = import_string(ADAPTERS[name])
        _instances[name] = adapter()
    return _instances[name]
