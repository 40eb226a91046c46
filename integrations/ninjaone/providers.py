"""Which NinjaOne answers: ``ninjaone`` (the real API, ``adapter.NinjaOneClient``) or ``sandbox`` (local, no
network), as ``settings.NINJAONE_PROVIDER`` says. Services call ``get_provider()``; nothing else picks an
implementation, so tests swap it by changing the setting."""

from __future__ import annotations

from integrations.ninjaone.base import DeviceSource
from msp.providers import ProviderChoice

ADAPTERS = {
    "ninjaone": "integrations.ninjaone.adapter.NinjaOneClient",
    "sandbox": "integrations.ninjaone.sandbox.SandboxNinjaOne",
}

# One instance per provider name and process: the real client keeps its token and HTTP session.
get_provider: ProviderChoice[DeviceSource] = ProviderChoice("NINJAONE_PROVIDER", ADAPTERS)
