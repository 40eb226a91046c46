from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services.invoicing import invoices_generate


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = "Invoice every contract period due on or before a date (beat runs it daily at 00:30)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=_date, help="YYYY-MM-DD; default: today in each organization's zone.")
        parser.add_argument("--dry-run", action="store_true", help="Print the invoices it would create; write none.")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        report = invoices_generate(through=options["date"], dry_run=dry_run)
        for line in report.lines:
            self.stdout.write(f"{'Would create ' if dry_run else ''}{line}")
        verb = "would be created" if dry_run else "created"
        self.stdout.write(self.style.SUCCESS(f"{report.created} invoice(s) {verb} for {report.contracts} contract(s)."))
