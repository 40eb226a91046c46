"""The NinjaOne sandbox, for local runs: no network, no credentials.

Devices: each NinjaOne organization id has a fixed list (the same id always gives the same devices), so the portal,
the dashboard count and per-device contract lines have something real-looking to show. ``DEVICES`` replaces the list
of an organization id when a local run (or a test) wants other devices.

Alerts: ``activity`` builds the webhook body NinjaOne would send for an alert triggering or resetting; the
``ninjaone_alert`` management command posts it through the same code path as a real delivery.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from integrations.ninjaone.base import RemoteDevice

# organization id -> the devices the sandbox lists for it instead of its fixed list.
DEVICES: dict[str, list[RemoteDevice]] = {}

_MODELS = (
    ("WS", "WINDOWS_WORKSTATION", "Windows 11 Pro"),
    ("WS", "WINDOWS_WORKSTATION", "Windows 10 Pro"),
    ("MAC", "MAC", "macOS 14 Sonoma"),
    ("WS", "WINDOWS_WORKSTATION", "Windows 11 Pro"),
    ("SRV", "WINDOWS_SERVER", "Windows Server 2022 Standard"),
    ("LNX", "LINUX_SERVER", "Ubuntu 22.04 LTS"),
)


class SandboxNinjaOne:
    name = "sandbox"

    def devices(self, organization_id: str) -> list[RemoteDevice]:
        if organization_id in DEVICES:
            return list(DEVICES[organization_id])
        return fixed_devices(organization_id, now=timezone.now())


def _seed(organization_id: str) -> int:
    return int(organization_id) if organization_id.isdigit() else zlib.crc32(organization_id.encode())


def fixed_devices(organization_id: str, *, now: datetime) -> list[RemoteDevice]:
    """Between 4 and 15 devices, numbered from the organization id; every fifth one is offline."""
    seed = _seed(organization_id)
    count = 4 + seed % 12
    devices = []
    for index in range(count):
        prefix, node_class, os_name = _MODELS[(seed + index) % len(_MODELS)]
        offline = index % 5 == 4
        devices.append(
            RemoteDevice(
                ninja_id=str(seed * 1000 + index + 1),
                display_name=f"{prefix}-{organization_id[:8].upper()}-{index + 1:02d}",
                system_name=f"{prefix.lower()}{index + 1:02d}",
                node_class=node_class,
                os_name=os_name,
                offline=offline,
                last_contact_at=now - (timedelta(days=3 + index) if offline else timedelta(minutes=2 + index)),
            )
        )
    return devices


def activity(
    *,
    organization_id: str,
    device: RemoteDevice,
    status: str = "TRIGGERED",
    severity: str = "MAJOR",
    series_uid: str,
    condition: str = "Disk free space",
    message: str = "",
    activity_id: int | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The webhook body NinjaOne sends when a condition triggers (or resets) on ``device``."""
    at = at or timezone.now()
    return {
        "id": activity_id if activity_id is not None else int(at.timestamp() * 1000) % 10**12,
        "activityTime": at.timestamp(),
        "activityType": "CONDITION",
        "statusCode": status,
        "status": status,
        "activityResult": "SUCCESS",
        "severity": severity,
        "priority": {"CRITICAL": "HIGH", "MAJOR": "HIGH", "MODERATE": "MEDIUM"}.get(severity, "LOW"),
        "seriesUid": series_uid,
        "sourceConfigUid": f"sandbox-{zlib.crc32(condition.encode()):08x}",
        "sourceName": condition,
        "deviceId": int(device.ninja_id) if device.ninja_id.isdigit() else device.ninja_id,
        "organizationId": int(organization_id) if organization_id.isdigit() else organization_id,
        "message": message or f"{condition} on {device.display_name or device.system_name}",
        "type": "Condition",
        "device": {
            "id": int(device.ninja_id) if device.ninja_id.isdigit() else device.ninja_id,
            "organizationId": int(organization_id) if organization_id.isdigit() else organization_id,
            "displayName": device.display_name,
            "systemName": device.system_name,
            "nodeClass": device.node_class,
        },
    }
