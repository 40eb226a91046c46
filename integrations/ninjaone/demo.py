"""NinjaOne for the demo organizations, for ``manage.py seed_demo`` (idempotent).

Acme and Initech are linked to NinjaOne organizations 1001 and 1002 (unless already linked); with the sandbox
provider their devices are synced at once, and Acme gets one critical alert, which opens a ticket as a real alert
would (only the first time).
"""

from __future__ import annotations

import json

from django.conf import settings

from integrations.ninjaone import sandbox
from integrations.ninjaone.models import Alert
from integrations.ninjaone.services.alerts import activity_receive
from integrations.ninjaone.services.devices import devices_sync
from tenancy.models import Organization

LINKS = {"acme": "1001", "initech": "1002"}


def seed() -> list[str]:
    report = []
    for slug, ninjaone_id in LINKS.items():
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            continue
        if not organization.ninjaone_org_id:
            Organization.objects.filter(pk=organization.pk).update(ninjaone_org_id=ninjaone_id)
            organization.ninjaone_org_id = ninjaone_id
        if settings.NINJAONE_PROVIDER != "sandbox":
            report.append(f"{organization}: NinjaOne organization {organization.ninjaone_org_id} (devices sync hourly)")
            continue
        result = devices_sync(organization=organization)
        report.append(f"{organization}: NinjaOne organization {organization.ninjaone_org_id}, {result.summary()}")
        if slug == "acme" and not Alert.objects.for_org(organization).exists():
            server = next((d for d in sandbox.SandboxNinjaOne().devices(organization.ninjaone_org_id)
                           if d.node_class.endswith("SERVER")), None)  # fmt: skip
            if server is not None:
                payload = sandbox.activity(
                    organization_id=organization.ninjaone_org_id,
                    device=server,
                    severity="CRITICAL",
                    series_uid=f"demo-{organization.ninjaone_org_id}-{server.ninja_id}-disk",
                    condition="Disk free space",
                    message="Volume C: has 3% free space (1.9 GB of 64 GB)",
                )
                receipt = activity_receive(body=json.dumps(payload).encode())
                report.append(f"{organization}: a critical disk alert on {server.display_name} opened {receipt.ticket}")
    report.append("Try: manage.py ninjaone_alert acme --severity MINOR, then manage.py ninjaone_alert acme --reset")
    return report
