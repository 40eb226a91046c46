"""Which NinjaOne answers: ``ninjaone`` (the real API, ``adapter.NinjaOneClient``) or ``sandbox`` (local, no
network), as ``settings.NINJAONE_PROVIDER`` says. Services call ``get_provider()``; nothing else picks an
implementation, so tests swap it by changing the setting."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from integrations.ninjaone.base import DeviceSource

ADAPTERS = {
    "ninjaone": "integrations.ninjaone.adapter.NinjaOneClient",
    "sandbox": "integrations.ninjaone.sandbox.SandboxNinjaOne",
}

_instances: dict[str, DeviceSource] = {}


def get_provider() -> DeviceSource:
    """One instance per provider name and process: the real client keeps its token and HTTP session."""
    name = settings.NINJAONE_PROVIDER
    if name not in ADAPTERS:
        raise LookupError(f"unknown NINJAONE_PROVIDER {name!r}; expected one of {', '.join(ADAPTERS)}")
    if name not in _instances:
        _instances[name] = import_string(ADAPTERS[name])()
    return _instances[name]
