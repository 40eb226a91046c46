"""Every write of the NinjaOne integration: alerts from its webhook (``alerts``) and the device sync (``devices``).
Each service is one transaction, serialised per organization by its ``NinjaOneSettings`` row."""

from __future__ import annotations

from integrations.ninjaone.models import NinjaOneSettings
from tenancy.models import Organization


def settings_for(organization: Organization) -> NinjaOneSettings:
    """The organization's NinjaOne settings, created with the defaults the first time they are needed."""
    row, _ = NinjaOneSettings.objects.get_or_create(organization=organization)
    return row


def settings_locked(organization: Organization) -> NinjaOneSettings:
    """The settings row, locked until the current transaction ends: the organization's NinjaOne lock."""
    settings_for(organization)
    return NinjaOneSettings.objects.select_for_update().get(organization=organization)
