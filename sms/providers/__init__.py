"""SMS providers: ``twilio`` (the real one, on Twilio's SDK) and ``sandbox`` (local, no network).

``get_provider()`` returns the one ``settings.SMS_PROVIDER`` names. Services call it; nothing else imports an adapter
directly, so tests swap the provider by changing the setting.
"""

from __future__ import annotations

from msp.providers import ProviderChoice
from sms.providers.base import MessageProvider

ADAPTERS = {
    "twilio": "sms.providers.twilio.TwilioProvider",
    "sandbox": "sms.providers.sandbox.SandboxProvider",
}


# One instance per provider name and process: the Twilio adapter keeps one HTTP session (connection pool).
get_provider: ProviderChoice[MessageProvider] = ProviderChoice("SMS_PROVIDER", ADAPTERS)
