"""Reading the NinjaOne side of an organization, for the portal and the admin."""

from __future__ import annotations

from django.db.models import QuerySet

from integrations.ninjaone.models import Device, NinjaOneSettings
from tenancy.models import Organization


def is_linked(organization: Organization) -> bool:
    return bool(organization.ninjaone_org_id.strip())


def present_devices(organization: Organization) -> QuerySet[Device]:
    """The devices NinjaOne listed for the organization at the last sync, by name."""
    return (
        Device.objects.for_org(organization)
        .filter(removed_at__isnull=True)
        .order_by("display_name", "system_name", "ninja_id")
    )


def device_count(organization: Organization) -> int | None:
    """How many devices NinjaOne manages for the organization; None when it is not linked to NinjaOne (one query
    when it is, none when it is not)."""
    if not is_linked(organization):
        return None
    return present_devices(organization).count()


def sync_state(organization: Organization) -> NinjaOneSettings | None:
    return NinjaOneSettings.objects.filter(organization=organization).first()
