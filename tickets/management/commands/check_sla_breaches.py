from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tickets.escalation import sla_check


class Command(BaseCommand):
    help = "Update SLA states, warn about clocks at risk and escalate breaches (beat runs it every 15 minutes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Print what would happen; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = sla_check(dry_run=options["dry_run"])
        prefix = "Would: " if options["dry_run"] else ""
        for action in report.actions:
            self.stdout.write(f"{prefix}{action}")
        verb = "would be acted on" if options["dry_run"] else "checked"
        self.stdout.write(self.style.SUCCESS(f"{report.checked} ticket(s) {verb}, {len(report.actions)} action(s)."))
