"""What Keel needs from NinjaOne's API, whichever implementation answers: the devices of one NinjaOne
organization. Pure: the real adapter (``integrations.ninjaone.adapter``) and the sandbox both return these values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

# NinjaOne's device classes, as people say them.
NODE_CLASSES = {
    "WINDOWS_WORKSTATION": "Windows workstation",
    "WINDOWS_SERVER": "Windows server",
    "MAC": "Mac",
    "LINUX_WORKSTATION": "Linux workstation",
    "LINUX_SERVER": "Linux server",
    "VMWARE_VM_HOST": "VMware host",
    "VMWARE_VM_GUEST": "VMware virtual machine",
    "HYPERV_VMM_HOST": "Hyper-V host",
    "HYPERV_VMM_GUEST": "Hyper-V virtual machine",
    "CLOUD_MONITOR_TARGET": "Cloud monitor",
}


class ProviderError(Exception):
    """NinjaOne could not be asked, refused, or answered something Keel cannot read. Nothing was changed.

    ``retryable``: the same request may work later (a rate limit, an outage, a timeout). ``rate_limited``: NinjaOne
    asked Keel to hold off (429, or a 503 naming a wait), so any other call now would be refused too; ``retry_after``
    is the wait it named (``Retry-After``), if it did."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        rate_limited: bool = False,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable or rate_limited
        self.rate_limited = rate_limited
        self.retry_after = retry_after


@dataclass(frozen=True)
class RemoteDevice:
    ninja_id: str
    display_name: str = ""
    system_name: str = ""
    node_class: str = ""
    os_name: str = ""
    offline: bool = False
    last_contact_at: datetime | None = None


class DeviceSource(Protocol):
    name: str

    def devices(self, organization_id: str) -> list[RemoteDevice]:
        """Every device NinjaOne manages for the organization ``organization_id`` (NinjaOne's id), all pages read."""
        ...
