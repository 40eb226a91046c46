"""Every app picks its provider adapter the same way: the adapter its setting names, one instance per name and
process, and an unknown name refused with the setting and the names it takes."""

from __future__ import annotations

from typing import Any

import pytest

from billing import providers as payments
from integrations.ninjaone import providers as devices
from integrations.quickbooks import providers as books
from msp.providers import ProviderChoice
from sms import providers as messages

CHOICES = [
    (messages.get_provider, "SMS_PROVIDER", "twilio, sandbox"),
    (payments.get_provider, "STRIPE_PROVIDER", "stripe, sandbox"),
    (books.get_provider, "QBO_PROVIDER", "quickbooks, sandbox"),
    (devices.get_provider, "NINJAONE_PROVIDER", "ninjaone, sandbox"),
]


@pytest.mark.parametrize(("choice", "setting", "names"), CHOICES)
def test_the_sandbox_is_built_once_per_process(choice: ProviderChoice[Any], setting: str, names: str, settings,
                                                monkeypatch) -> None:  # fmt: skip
    monkeypatch.setattr(choice, "instances", {})
    setattr(settings, setting, "sandbox")
    first = choice()
    assert type(first).__module__.endswith("sandbox")
    assert choice() is first


@pytest.mark.parametrize(("choice", "setting", "names"), CHOICES)
def test_an_unknown_name_is_refused_naming_the_setting(choice: ProviderChoice[Any], setting: str, names: str,
                                                       settings) -> None:  # fmt: skip
    setattr(settings, setting, "carrier-pigeon")
    with pytest.raises(LookupError) as refused:
        choice()
    assert str(refused.value) == f"unknown {setting} 'carrier-pigeon'; expected one of {names}"
