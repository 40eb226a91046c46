"""NinjaOne's background work: the hourly device sync (beat ``ninjaone-sync-devices``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from integrations.ninjaone.base import ProviderError
from integrations.ninjaone.services.devices import devices_sync, paused_until
from tenancy.models import Organization

logger = logging.getLogger(__name__)

SYNCED, FAILED, RATE_LIMITED = "synced", "failed", "rate_limited"


@shared_task
def sync_devices() -> dict[str, int]:
    """Beat, hourly: sync every organization linked to NinjaOne. One organization failing (NinjaOne refusing, a
    contract line billing will not change) is logged and does not stop the others; the next run tries it again.

    NinjaOne asking Keel to slow down (429) stops the run: it would refuse the others too. They are left for the next
    run (``deferred``), and while the wait NinjaOne named has not passed, a run asks it nothing."""
    synced = failed = deferred = 0
    linked = [
        str(pk) for pk in Organization.objects.exclude(ninjaone_org_id="").order_by("pk").values_list("pk", flat=True)
    ]
    for position, organization_id in enumerate(linked):
        if paused_until(timezone.now()) is not None:
            deferred = len(linked) - position
            break
        outcome = _sync(organization_id)
        if outcome == SYNCED:
            synced += 1
            continue
        failed += 1
        if outcome == RATE_LIMITED:
            deferred = len(linked) - position - 1
            break
    return {"synced": synced, "failed": failed, "deferred": deferred}


@shared_task
def sync_organization_devices(organization_id: str) -> bool:
    """Sync one organization's devices; True when it worked. Safe to run twice: the second finds nothing to do."""
    return _sync(organization_id) == SYNCED


def _sync(organization_id: str) -> str:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or not organization.ninjaone_org_id.strip():
        return FAILED
    try:
        devices_sync(organization=organization)
    except ProviderError as error:
        if not error.rate_limited:
            logger.exception("ninjaone device sync failed for %s", organization.slug)
            return FAILED
        logger.warning("ninjaone device sync of %s held back: %s", organization.slug, error)
        return RATE_LIMITED
    except Exception:
        logger.exception("ninjaone device sync failed for %s", organization.slug)
        return FAILED
    return SYNCED
