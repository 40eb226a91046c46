"""Send a simulated NinjaOne alert, or its reset, for an organization, through the webhook's own code path.

For local runs with the sandbox provider: ``manage.py ninjaone_alert acme`` opens a ticket as a real NinjaOne alert
would, ``manage.py ninjaone_alert acme --reset`` resets it again (the same device and condition name the same
alert)."""

from __future__ import annotations

import json
import zlib
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.ninjaone import sandbox
from integrations.ninjaone.activities import PRIORITY_BY_SEVERITY
from integrations.ninjaone.services.alerts import activity_receive
from tenancy.errors import ServiceValidationError
from tenancy.models import Organization


class Command(BaseCommand):
    help = "Send a simulated NinjaOne alert (or --reset it) for an organization. Sandbox provider only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="The organization's slug; it must be linked to NinjaOne.")
        parser.add_argument("--reset", action="store_true", help="Reset the alert instead of triggering it.")
        parser.add_argument("--severity", default="MAJOR", choices=sorted(PRIORITY_BY_SEVERITY))
        parser.add_argument("--device", type=int, default=0, help="Which of the sandbox's devices (0 is the first).")
        parser.add_argument("--condition", default="Disk free space", help="The condition's name.")
        parser.add_argument("--message", default="", help="The alert's message.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.NINJAONE_PROVIDER != "sandbox":
            raise CommandError("Simulated alerts open real tickets: they are only sent with NINJAONE_PROVIDER=sandbox.")
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            raise CommandError(f"No organization has the slug {options['organization']!r}.")
        ninjaone_id = organization.ninjaone_org_id.strip()
        if not ninjaone_id:
            raise CommandError(f"{organization} is not linked to NinjaOne: set its NinjaOne organization id first.")
        devices = sandbox.SandboxNinjaOne().devices(ninjaone_id)
        if not 0 <= options["device"] < len(devices):
            raise CommandError(f"--device must be from 0 to {len(devices) - 1}.")
        device = devices[options["device"]]
        condition = options["condition"]
        payload = sandbox.activity(
            organization_id=ninjaone_id,
            device=device,
            status="RESET" if options["reset"] else "TRIGGERED",
            severity=options["severity"],
            series_uid=f"sandbox-{ninjaone_id}-{device.ninja_id}-{zlib.crc32(condition.encode()):08x}",
            condition=condition,
            message=options["message"],
        )
        try:
            receipt = activity_receive(body=json.dumps(payload).encode())
        except ServiceValidationError as bad:
            raise CommandError(f"Refused: {bad.message_dict}") from None
        where = f" {receipt.ticket}" if receipt.ticket else ""
        self.stdout.write(f"{device.display_name}: {receipt.outcome}{where}. {receipt.detail}")
