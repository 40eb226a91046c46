from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing import demo as billing_demo
from billing import demo_contracts
from integrations.ninjaone import demo as ninjaone_demo
from qualification import demo as qualification_demo
from quotes import demo as quotes_demo
from sms import demo as sms_demo
from tenancy import demo
from tickets import demo as tickets_demo


class Command(BaseCommand):
    help = "Create (or refresh) the demo partner, organizations, people and staff. Safe to run repeatedly."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo creates accounts with a public password and never runs in production.")
        report = demo.seed()
        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo data ready. Sign in at {settings.SITE_URL}/login/"))
        out.write(f"Password for every demo account: {demo.DEMO_PASSWORD}")
        width = max(len(email) for email, _ in report.sign_ins)
        for email, what in report.sign_ins:
            out.write(f"  {email.ljust(width)}  {what}")
        out.write(f"Staff admin ({settings.SITE_URL}/admin/) asks for a one-time code; single-use backup codes:")
        for email, codes in report.staff_codes.items():
            out.write(f"  {email.ljust(width)}  {' '.join(codes[:3])}")
        out.write(f"Partner API key for summit (shown once): {report.api_key}")
        out.write(f"  try: curl -H 'Authorization: Bearer <key>' {settings.SITE_URL}/api/organizations/")
        out.write("Prospects (qualification questionnaires, reviewed in the admin):")
        for line in qualification_demo.seed():
            out.write(f"  {line}")
        out.write("Quotes:")
        for line in quotes_demo.seed():
            out.write(f"  {line}")
        out.write("Subscriptions (the Billing page of each organization's owner):")
        for line in billing_demo.seed():
            out.write(f"  {line}")
        out.write("Contracts and invoices (staff admin, and each owner's Billing page):")
        for line in demo_contracts.seed():
            out.write(f"  {line}")
        out.write("Support tickets:")
        for line in tickets_demo.seed():
            out.write(f"  {line}")
        out.write("NinjaOne (each owner's Devices page; alert tickets in Support):")
        for line in ninjaone_demo.seed():
            out.write(f"  {line}")
        out.write("Messaging (SMS settings, numbers, contacts and campaigns in the staff admin):")
        for line in sms_demo.seed():
            out.write(f"  {line}")
