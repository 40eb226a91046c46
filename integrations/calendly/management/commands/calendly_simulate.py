from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from integrations.calendly import sandbox
from integrations.calendly.services import CANCELED, CREATED
from qualification.models import Qualification


class Command(BaseCommand):
    help = (
        "Post a signed, simulated Calendly delivery for a qualification (id or email) through the real webhook: "
        "a booking by default, --cancel or --reschedule an earlier one by its invitee URI. Not in production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("qualification", help="The qualification's id, or the prospect's email.")
        parser.add_argument("--at", help="The call's start, ISO 8601 (default: tomorrow 10:00 in --zone).")
        parser.add_argument("--zone", default=settings.TIME_ZONE, help="The invitee's time zone.")
        earlier = parser.add_mutually_exclusive_group()
        earlier.add_argument("--cancel", metavar="INVITEE_URI", help="Cancel this booking.")
        earlier.add_argument("--reschedule", metavar="INVITEE_URI", help="Move this booking to --at.")

    def handle(self, *args: Any, **options: Any) -> None:
        qualification = self._qualification(options["qualification"])
        try:
            zone = ZoneInfo(options["zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise CommandError(f"Unknown time zone {options['zone']!r}.") from None
        start = self._start(options["at"], zone)
        old = options["cancel"] or options["reschedule"]
        if old:
            self._post(sandbox.invitee_event(qualification, event=CANCELED, start=start, invitee_uri=old,
                                             rescheduled=bool(options["reschedule"]), zone=zone.key))  # fmt: skip
        if not options["cancel"]:
            self._post(sandbox.invitee_event(qualification, event=CREATED, start=start, zone=zone.key))
        qualification.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(f"Qualification {qualification.id} is {qualification.status}."))

    def _qualification(self, key: str) -> Qualification:
        try:
            found = Qualification.objects.filter(pk=uuid.UUID(key)).first()
        except ValueError:
            found = Qualification.objects.filter(customer_email__iexact=key).order_by("-created_at").first()
        if found is None:
            raise CommandError(f"No qualification {key!r}.")
        return found

    def _start(self, value: str | None, zone: ZoneInfo) -> datetime:
        if not value:
            tomorrow = timezone.now().astimezone(zone).date() + timedelta(days=1)
            return datetime.combine(tomorrow, time(10), tzinfo=zone)
        try:
            start = datetime.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--at must be ISO 8601, got {value!r}.") from None
        return start if start.tzinfo else start.replace(tzinfo=zone)

    def _post(self, document: dict[str, Any]) -> None:
        response = sandbox.deliver(document)
        if response.status_code != 200:
            raise CommandError(f"The webhook answered {response.status_code}: {response.content.decode()}")
        self.stdout.write(f"{document['event']} {document['payload']['uri']}: {json.loads(response.content)}")
