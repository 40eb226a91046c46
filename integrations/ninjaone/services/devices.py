"""The device sync: an organization's devices as NinjaOne lists them, and the per-device lines of its contracts.

NinjaOne is asked first, outside any transaction; a failure changes nothing but the settings' ``last_sync_error``.
NinjaOne limits the calls of Keel's API client as a whole: when it asks Keel to slow down and names a wait
(``Retry-After``), no organization is synced before that time (at most ``LONGEST_PAUSE`` away), whoever asks.
Then, in one transaction holding the organization's NinjaOne lock: devices NinjaOne lists are added or updated, those
it no longer lists are marked removed (kept, no longer counted), and every per-device contract line is brought to the
device count.

A per-device line is a line priced ``PER_UNIT`` with the metric ``devices``, on an ACTIVE contract running today (in
the organization's time zone). Its quantity is revised from today through
``billing.services.contract_updates.contract_line_revise``: the rest of a period already invoiced is charged or
credited on the next invoice, and the change is audited. A line already at the count is left alone, so a sync that
finds nothing new writes nothing to billing. A line billing refuses to change is reported and the rest still follow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import ContractLine, ContractStatus, PricingModel
from billing.services.contract_updates import contract_line_revise
from integrations.ninjaone.base import ProviderError, RemoteDevice
from integrations.ninjaone.models import Device, NinjaOneSettings
from integrations.ninjaone.providers import get_provider
from integrations.ninjaone.services import settings_for, settings_locked
from msp import pauses
from msp.retry_after import wait_before_retry
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization

logger = logging.getLogger(__name__)

DEVICE_METRIC = "devices"
# NinjaOne's limit is on Keel's client, not on an organization, so the pause is one shared cache entry that expires
# by itself; losing it costs at most one more refused call.
PAUSE_KEY = "ninjaone:paused-until"
# The longest Keel holds back for NinjaOne's advice: the hourly sync then skips a few runs at most, rather than
# leaving device counts (and per-device billing) stale for a day.
LONGEST_PAUSE = timedelta(hours=6)
FIELDS = ("display_name", "system_name", "node_class", "os_name", "offline", "last_contact_at")


@dataclass(frozen=True)
class SyncResult:
    count: int
    added: int = 0
    updated: int = 0
    removed: int = 0
    lines_revised: int = 0
    line_problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.count} devices ({self.added} new, {self.updated} changed, {self.removed} removed)"
        if self.lines_revised:
            text += f"; {self.lines_revised} contract line(s) set to {self.count}"
        if self.line_problems:
            text += "; not changed: " + "; ".join(self.line_problems)
        return text


def paused_until(now: datetime) -> datetime | None:
    """When NinjaOne may be asked again, while it has asked Keel to wait."""
    return pauses.paused_until(PAUSE_KEY, now)


def _pause(error: ProviderError, now: datetime) -> None:
    wait = wait_before_retry(timedelta(0), error.retry_after, longest=LONGEST_PAUSE)
    if not error.rate_limited or wait <= timedelta(0):
        return  # no wait named: stopping this run is enough, the next one is an hour away
    until = pauses.pause(PAUSE_KEY, now + wait, now)
    logger.warning("NinjaOne asked Keel to slow down: no device sync before %s", until.isoformat())


def devices_sync(*, organization: Organization, now: datetime | None = None) -> SyncResult:
    """Bring the organization's devices (and its per-device contract lines) up to date with NinjaOne.

    Raises ServiceValidationError when the organization is not linked to NinjaOne, and ProviderError when NinjaOne
    cannot list its devices (recorded in the settings' ``last_sync_error``; nothing else changes) or asked Keel to
    wait and the time it named has not come (``rate_limited``; NinjaOne is not asked)."""
    ninjaone_org_id = organization.ninjaone_org_id.strip()
    if not ninjaone_org_id:
        raise ServiceValidationError({"ninjaone_org_id": ["This organization is not linked to NinjaOne."]})
    asked_at = timezone.now()
    until = paused_until(asked_at)
    if until is not None:
        raise ProviderError(f"NinjaOne asked Keel to wait until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}.",
                            rate_limited=True, retry_after=until - asked_at)  # fmt: skip
    settings_for(organization)
    try:
        listed = get_provider().devices(ninjaone_org_id)
    except ProviderError as error:
        NinjaOneSettings.objects.filter(organization=organization).update(
            last_sync_error=str(error)[:1000], updated_at=timezone.now()
        )
        _pause(error, timezone.now())
        raise
    now = now or timezone.now()
    remote = {device.ninja_id: device for device in listed}
    with transaction.atomic():
        settings_row = settings_locked(organization)
        added, updated, removed = _devices_apply(organization, remote, now)
        count = len(remote)
        settings_row.device_count, settings_row.last_synced_at, settings_row.last_sync_error = count, now, ""
        settings_row.save(update_fields=["device_count", "last_synced_at", "last_sync_error", "updated_at"])
        revised, problems = _contract_lines_follow(organization, count, now)
    result = SyncResult(count, added, updated, removed, revised, problems)
    logger.info("ninjaone devices of %s: %s", organization.slug, result.summary())
    return result


def _devices_apply(organization: Organization, remote: dict[str, RemoteDevice], now: datetime) -> tuple[int, int, int]:
    known = {device.ninja_id: device for device in Device.objects.for_org(organization)}
    new = [
        Device(
            organization=organization,
            ninja_id=ninja_id,
            first_seen_at=now,
            synced_at=now,
            **{name: getattr(listed, name) for name in FIELDS},
        )
        for ninja_id, listed in remote.items()
        if ninja_id not in known
    ]
    changed = []
    for ninja_id, listed in remote.items():
        device = known.get(ninja_id)
        if device is None:
            continue
        values = {name: getattr(listed, name) for name in FIELDS}
        if device.removed_at is not None or any(getattr(device, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(device, name, value)
            device.removed_at = None
            changed.append(device)
    Device.objects.bulk_create(new)
    Device.objects.bulk_update(changed, [*FIELDS, "removed_at"])
    present = Device.objects.for_org(organization).filter(removed_at__isnull=True)
    removed = present.exclude(ninja_id__in=list(remote)).update(removed_at=now, synced_at=now)
    present.filter(ninja_id__in=list(remote)).update(synced_at=now)
    return len(new), len(changed), removed


def device_lines(organization: Organization, today: date) -> list[ContractLine]:
    """The organization's per-device contract lines on contracts running ``today``."""
    return list(
        ContractLine.objects.for_org(organization)
        .filter(
            pricing_model=PricingModel.PER_UNIT,
            metric__iexact=DEVICE_METRIC,
            contract__status=ContractStatus.ACTIVE,
            contract__start_date__lte=today,
        )
        .filter(Q(contract__end_date__isnull=True) | Q(contract__end_date__gt=today))
        .select_related("contract")
        .order_by("contract__name", "position", "id")
    )


def _contract_lines_follow(organization: Organization, count: int, now: datetime) -> tuple[int, list[str]]:
    today = timezone.localtime(now, ZoneInfo(organization.timezone)).date()
    quantity = Decimal(count)
    revised, problems = 0, []
    for line in device_lines(organization, today):
        if line.quantity == quantity:
            continue
        try:
            contract_line_revise(line=line, effective_on=today, quantity=quantity)
        except (ServiceValidationError, ConflictError) as refused:
            reason = "; ".join(refused.messages) if isinstance(refused, ServiceValidationError) else refused.message
            problems.append(f"{line.contract.name}, {line.description}: {reason}")
            logger.warning("ninjaone sync of %s left line %s at %s: %s", organization.slug, line.pk, line.quantity,
                           reason)  # fmt: skip
            continue
        revised += 1
    return revised, problems
