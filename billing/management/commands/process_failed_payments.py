from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from billing.services.dunning import process_failed_payments


class Command(BaseCommand):
    help = "Charge and retry invoice payments that are due, send reminders and late fees, apply suspensions (hourly)."

    def handle(self, *args: Any, **options: Any) -> None:
        report = process_failed_payments()
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.charged} charge(s): {report.paid} paid, {report.failed} failed; "
                f"{report.reminded} reminder(s); {report.late_fees} late fee(s); "
                f"{len(report.suspended)} organization(s) suspended."
            )
        )
