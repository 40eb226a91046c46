"""NinjaOne's background work: the hourly device sync (beat ``ninjaone-sync-devices``)."""

from __future__ import annotations

import logging

from celery import shared_task

from integrations.ninjaone.services.devices import devices_sync
from tenancy.models import Organization

logger = logging.getLogger(__name__)


@shared_task
def sync_devices() -> dict[str, int]:
    """Beat, hourly: sync every organization linked to NinjaOne. One organization failing (NinjaOne refusing, a
    contract line billing will not change) is logged and does not stop the others; the next run tries it again."""
    synced = failed = 0
    for organization_id in Organization.objects.exclude(ninjaone_org_id="").order_by("pk").values_list("pk", flat=True):
        if sync_organization_devices(str(organization_id)):
            synced += 1
        else:
            failed += 1
    return {"synced": synced, "failed": failed}


@shared_task
def sync_organization_devices(organization_id: str) -> bool:
    """Sync one organization's devices; True when it worked. Safe to run twice: the second finds nothing to do."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or not organization.ninjaone_org_id.strip():
        return False
    try:
        devices_sync(organization=organization)
    except Exception:
        logger.exception("ninjaone device sync failed for %s", organization.slug)
        return False
    return True
